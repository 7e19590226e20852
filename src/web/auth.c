/* See auth.h. */
#include "auth.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/macro.h"

#define HASH_MAX CRYPT_OUTPUT_SIZE

struct auth {
	char hash[HASH_MAX];
	struct auth_session sessions[AUTH_SESSIONS_MAX];
	size_t n_sessions;
	uint64_t fail_minute;
	unsigned fails;
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 32 random bytes as 43 base64url characters. */
static int random_id(char out[AUTH_ID_LEN + 1])
{
	uint8_t b[33] = {0};
	size_t o = 0;

	if (getrandom(b, 32, 0) != 32)
		return -EIO;
	for (size_t i = 0; i < 33; i += 3) {
		uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];

		for (int k = 0; k < 4 && o < AUTH_ID_LEN; k++)
			out[o++] = b64url[(v >> (18 - 6 * k)) & 63];
	}
	out[AUTH_ID_LEN] = '\0';
	return 0;
}

bool auth_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static int write_hash(const char *path, const char *hash, struct mv_error *err)
{
	_cleanup_free_ char *tmp = NULL, *line = NULL;
	int fd, r = 0;
	ssize_t n;

	if (asprintf(&tmp, "%s.tmp", path) < 0 || asprintf(&line, "%s\n", hash) < 0) {
		tmp = line = NULL;
		return mv_err_oom(err);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return mv_err_internal(err, -errno, "cannot write %s: %m", tmp);
	n = write(fd, line, strlen(line));
	if (n != (ssize_t)strlen(line))
		r = n < 0 ? -errno : -EIO;
	else if (fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp);
		return mv_err_internal(err, r, "cannot write %s: %s", path, strerror(-r));
	}
	return 0;
}

static int new_token(struct auth *a, const char *path, char **ret_token, struct mv_error *err)
{
	char token[AUTH_ID_LEN + 1], salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd = {0};
	const char *h;
	int r;

	if (random_id(token) < 0)
		return mv_err_internal(err, -EIO, "cannot read random bytes: %m");
	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)))
		return mv_err_internal(err, -errno, "crypt_gensalt: %m");
	h = crypt_rn(token, salt, &cd, sizeof(cd));
	if (!h || h[0] == '*')
		return mv_err_internal(err, -EINVAL, "crypt: cannot hash the token");
	snprintf(a->hash, sizeof(a->hash), "%s", h);
	r = write_hash(path, a->hash, err);
	if (r < 0)
		return r;
	*ret_token = strdup(token);
	return *ret_token ? 0 : mv_err_oom(err);
}

int auth_open(const char *path, bool reset, char **ret_token, struct auth **ret,
	      struct mv_error *err)
{
	_cleanup_free_ struct auth *a = calloc(1, sizeof(*a));
	_cleanup_fclose_ FILE *f = NULL;
	int r;

	*ret_token = NULL;
	if (!a)
		return mv_err_oom(err);
	f = reset ? NULL : fopen(path, "re");
	if (!f && !reset && errno != ENOENT)
		return mv_err_internal(err, -errno, "cannot read %s: %m", path);
	if (f) {
		size_t n;

		if (!fgets(a->hash, sizeof(a->hash), f))
			return mv_err_invalid(err,
					      "%s: empty; remove it (or run with --reset-token)"
					      " to make a new token",
					      path);
		n = strcspn(a->hash, "\n");
		a->hash[n] = '\0';
		if (a->hash[0] != '$')
			return mv_err_invalid(err,
					      "%s: not a crypt(3) hash; remove it (or run with "
					      "--reset-token) to make a new token",
					      path);
	} else if ((r = new_token(a, path, ret_token, err)) < 0)
		return r;
	*ret = TAKE_PTR(a);
	return 0;
}

void auth_free(struct auth *a)
{
	if (a)
		explicit_bzero(a, sizeof(*a));
	free(a);
}

bool auth_throttled(const struct auth *a, uint64_t now_s)
{
	return a->fail_minute == now_s / 60 && a->fails >= AUTH_FAILURES_PER_MIN;
}

bool auth_login(struct auth *a, const char *token, uint64_t now_s)
{
	struct crypt_data cd = {0};
	const char *h;

	if (auth_throttled(a, now_s))
		return false;
	h = crypt_rn(token, a->hash, &cd, sizeof(cd));
	if (h && h[0] != '*' && auth_equal(h, a->hash))
		return true;
	if (a->fail_minute != now_s / 60) {
		a->fail_minute = now_s / 60;
		a->fails = 0;
	}
	a->fails++;
	return false;
}

const struct auth_session *auth_session_new(struct auth *a, uint64_t now_s)
{
	struct auth_session *s;

	if (a->n_sessions < AUTH_SESSIONS_MAX)
		s = &a->sessions[a->n_sessions++];
	else {
		s = &a->sessions[0];
		for (size_t i = 1; i < a->n_sessions; i++)
			if (a->sessions[i].last_used_s < s->last_used_s)
				s = &a->sessions[i];
	}
	if (random_id(s->id) < 0 || random_id(s->csrf) < 0) {
		*s = a->sessions[--a->n_sessions];
		return NULL;
	}
	s->last_used_s = now_s;
	return s;
}

static ssize_t session_index(const struct auth *a, const char *id)
{
	if (strlen(id) != AUTH_ID_LEN)
		return -1;
	for (size_t i = 0; i < a->n_sessions; i++)
		if (auth_equal(a->sessions[i].id, id))
			return (ssize_t)i;
	return -1;
}

static void session_drop(struct auth *a, size_t i)
{
	a->sessions[i] = a->sessions[--a->n_sessions];
	explicit_bzero(&a->sessions[a->n_sessions], sizeof(a->sessions[0]));
}

const struct auth_session *auth_session_find(struct auth *a, const char *id, uint64_t now_s)
{
	ssize_t i = session_index(a, id);

	if (i < 0)
		return NULL;
	if (a->sessions[i].last_used_s + AUTH_SESSION_TTL_S < now_s) {
		session_drop(a, (size_t)i);
		return NULL;
	}
	a->sessions[i].last_used_s = now_s;
	return &a->sessions[i];
}

void auth_session_end(struct auth *a, const char *id)
{
	ssize_t i = session_index(a, id);

	if (i >= 0)
		session_drop(a, (size_t)i);
}

/* mvirt-web's login: one access token, stored only as a crypt(3) hash (yescrypt, libxcrypt),
 * and the sessions it opens, kept in memory (a restart of mvirt-web logs everyone out).
 *
 * A session has two random ids: its cookie value (HttpOnly, SameSite=Strict, never readable by
 * page scripts) and its CSRF token, which the page gets once from the login answer (or GET
 * /api/session) and sends in X-CSRF-Token with every mutating request. Sessions expire
 * AUTH_SESSION_TTL_S after their last use; at most AUTH_SESSIONS_MAX exist (the least recently
 * used goes first). Failed logins are limited to AUTH_FAILURES_PER_MIN a minute in all. Pure
 * bookkeeping plus the token file; silent. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define AUTH_ID_LEN 43 /* 32 random bytes in base64url, without padding */
#define AUTH_SESSION_TTL_S (12 * 3600)
#define AUTH_SESSIONS_MAX 256
#define AUTH_FAILURES_PER_MIN 10

struct auth;

struct auth_session {
	char id[AUTH_ID_LEN + 1];
	char csrf[AUTH_ID_LEN + 1];
	uint64_t last_used_s;
};

/* Reads the token hash from path. When there is none (or reset is set), makes a new token,
 * stores its hash there (0600, written whole or not at all) and returns the token in
 * *ret_token (caller frees) for the one time it is shown; else *ret_token is NULL. */
int auth_open(const char *path, bool reset, char **ret_token, struct auth **ret,
	      struct mv_error *err);
void auth_free(struct auth *a);

/* The token's check against the stored hash (constant time in the comparison). false also
 * when too many attempts failed this minute (auth_throttled). */
bool auth_login(struct auth *a, const char *token, uint64_t now_s);
bool auth_throttled(const struct auth *a, uint64_t now_s);

/* A new session (evicting the least recently used one when full); NULL on ENOMEM. */
const struct auth_session *auth_session_new(struct auth *a, uint64_t now_s);
/* The live session with this cookie value, its use noted; NULL if none or expired. */
const struct auth_session *auth_session_find(struct auth *a, const char *id, uint64_t now_s);
void auth_session_end(struct auth *a, const char *id);

/* Constant-time string equality (for CSRF tokens). */
bool auth_equal(const char *a, const char *b);

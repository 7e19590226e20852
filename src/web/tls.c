/* See tls.h. OpenSSL 3's libcrypto: libwebsockets links it already for its TLS, so the X.509
 * work here adds no library to mvirt-web. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"

#define PEM_MAX (1024 * 1024) /* a certificate chain or a key is a few KiB */
#define VALID_DAYS 3652       /* 10 years, leap days included */
#define SERIAL_BYTES 16

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(GENERAL_NAMES *, GENERAL_NAMES_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free);

struct pem {
	char *data;
	size_t len;
};

/* Frees a PEM buffer that may hold a private key, wiping it first. */
static void pem_erase(struct pem *p)
{
	if (p->data)
		explicit_bzero(p->data, p->len);
	free(p->data);
	*p = (struct pem){0};
}

/* The reason of OpenSSL's latest error ("no start line", "key values mismatch"), and the
 * error queue emptied. */
static const char *ssl_cause(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return s ? s : "unknown cause";
}

/* Refuses to ask for a passphrase (OpenSSL's default would prompt on the terminal). */
static int no_passphrase(_unused_ char *buf, _unused_ int size, _unused_ int rwflag,
			 _unused_ void *u)
{
	return -1;
}

/* The whole of a (regular, at most PEM_MAX bytes) file; what names it in messages. Opened
 * non-blocking, so that a FIFO is refused rather than waited on. */
static int pem_read(const char *what, const char *path, struct pem *ret, struct mv_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct pem p = {0};
	struct stat st;

	if (fd < 0)
		return mv_err_precondition(err, -errno, "%s %s: cannot read it: %m", what, path);
	if (fstat(fd, &st) < 0)
		return mv_err_internal(err, -errno, "%s %s: %m", what, path);
	if (!S_ISREG(st.st_mode))
		return mv_err_invalid(err, "%s %s: not a regular file", what, path);
	if (st.st_size > PEM_MAX)
		return mv_err_invalid(err, "%s %s: larger than %d KiB, not a PEM file", what, path,
				      PEM_MAX / 1024);
	p.data = malloc((size_t)st.st_size + 1);
	if (!p.data)
		return mv_err_oom(err);
	while (p.len < (size_t)st.st_size) {
		ssize_t n = read(fd, p.data + p.len, (size_t)st.st_size - p.len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int r = n < 0 ? -errno : -EIO;

			pem_erase(&p);
			return mv_err_internal(err, r, "%s %s: cannot read it: %m", what, path);
		}
		p.len += (size_t)n;
	}
	p.data[p.len] = '\0';
	*ret = p;
	return 0;
}

int tls_check(const char *cert_path, const char *key_path,
	      char ret_fingerprint[TLS_FINGERPRINT_LEN + 1], struct mv_error *err)
{
	_cleanup_(pem_erase) struct pem cert_pem = {0}, key_pem = {0};
	_cleanup_(X509_freep) X509 *x = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
	_cleanup_(BIO_free_allp) BIO *cb = NULL, *kb = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	int r;

	ERR_clear_error();
	if ((r = pem_read("certificate", cert_path, &cert_pem, err)) < 0)
		return r;
	cb = BIO_new_mem_buf(cert_pem.data, (int)cert_pem.len);
	if (!cb)
		return mv_err_oom(err);
	x = PEM_read_bio_X509(cb, NULL, no_passphrase, NULL);
	if (!x)
		return mv_err_invalid(err, "certificate %s: not a PEM certificate (%s)", cert_path,
				      strstr(cert_pem.data, "-----BEGIN CERTIFICATE-----")
					      ? ssl_cause()
					      : "no -----BEGIN CERTIFICATE----- block");
	if ((r = pem_read("private key", key_path, &key_pem, err)) < 0)
		return r;
	if (strstr(key_pem.data, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
	    strstr(key_pem.data, "Proc-Type: 4,ENCRYPTED"))
		return mv_err_invalid(err,
				      "private key %s: encrypted with a passphrase; give it "
				      "unencrypted (readable only by mvirt-web's user)",
				      key_path);
	kb = BIO_new_mem_buf(key_pem.data, (int)key_pem.len);
	if (!kb)
		return mv_err_oom(err);
	pkey = PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL);
	if (!pkey)
		return mv_err_invalid(err, "private key %s: not a PEM private key (%s)", key_path,
				      strstr(key_pem.data, "PRIVATE KEY-----")
					      ? ssl_cause()
					      : "no -----BEGIN PRIVATE KEY----- block");
	if (X509_check_private_key(x, pkey) != 1)
		return mv_err_invalid(err, "private key %s does not match the certificate %s (%s)",
				      key_path, cert_path, ssl_cause());
	if (X509_digest(x, EVP_sha256(), md, &md_len) != 1 || md_len != 32)
		return mv_err_internal(err, -EIO, "certificate %s: cannot hash it (%s)", cert_path,
				       ssl_cause());
	for (unsigned i = 0; i < md_len; i++)
		snprintf(ret_fingerprint + 3 * i, 4, "%02X%s", md[i], i + 1 < md_len ? ":" : "");
	return 0;
}

/* This host's name when it can stand in a certificate (letters, digits, '-' and '.', at most
 * 64 characters: the bound of a CN), else "localhost". */
static void cert_host(char buf[HOST_NAME_MAX + 1])
{
	bool ok = gethostname(buf, HOST_NAME_MAX + 1) == 0;

	buf[HOST_NAME_MAX] = '\0';
	ok = ok && buf[0] && buf[0] != '-' && buf[0] != '.' && strlen(buf) <= 64;
	for (const char *p = buf; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.';
	if (!ok)
		snprintf(buf, HOST_NAME_MAX + 1, "localhost");
}

/* Whether addr is an IP address a client may connect to that is not already in every
 * certificate (0.0.0.0, ::, 127.0.0.1 and ::1 are not). */
static bool extra_ip(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return a4.s_addr != htonl(INADDR_ANY) && a4.s_addr != htonl(INADDR_LOOPBACK);
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return !IN6_IS_ADDR_UNSPECIFIED(&a6) && !IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

static int san_add(GENERAL_NAMES *names, int type, const char *value)
{
	GENERAL_NAME *n = a2i_GENERAL_NAME(NULL, NULL, NULL, type, value, 0);

	if (!n)
		return -EINVAL;
	if (!sk_GENERAL_NAME_push(names, n)) {
		GENERAL_NAME_free(n);
		return -ENOMEM;
	}
	return 0;
}

/* subjectAltName: DNS host and localhost, IP 127.0.0.1 and ::1, and listen_addr if extra_ip. */
static int cert_add_names(X509 *x, const char *host, const char *listen_addr)
{
	_cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();

	if (!names)
		return -ENOMEM;
	if ((!streq(host, "localhost") && san_add(names, GEN_DNS, host) < 0) ||
	    san_add(names, GEN_DNS, "localhost") < 0 ||
	    san_add(names, GEN_IPADD, "127.0.0.1") < 0 || san_add(names, GEN_IPADD, "::1") < 0 ||
	    (extra_ip(listen_addr) && san_add(names, GEN_IPADD, listen_addr) < 0))
		return -EINVAL;
	return X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1
		       ? 0
		       : -EINVAL;
}

static int cert_add_ext(X509 *x, int nid, const char *value)
{
	_cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
	X509V3_CTX ctx;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	return ext && X509_add_ext(x, ext, -1) == 1 ? 0 : -EINVAL;
}

/* A self-signed X.509 v3 server certificate for pkey: a random 128-bit serial, CN = this
 * host, valid from an hour ago (clocks differ) for VALID_DAYS, signed with SHA-256. */
static int cert_make(EVP_PKEY *pkey, const char *listen_addr, X509 **ret)
{
	_cleanup_(X509_freep) X509 *x = X509_new();
	_cleanup_(BN_freep) BIGNUM *serial = NULL;
	unsigned char rnd[SERIAL_BYTES];
	char host[HOST_NAME_MAX + 1];
	X509_NAME *name;

	if (!x || RAND_bytes(rnd, sizeof(rnd)) != 1 ||
	    !(serial = BN_bin2bn(rnd, sizeof(rnd), NULL)) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) || X509_set_version(x, 2) != 1)
		return -EIO;
	cert_host(host);
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1,
				       -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), VALID_DAYS, 0, NULL) ||
	    X509_set_pubkey(x, pkey) != 1)
		return -EIO;
	if (cert_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    cert_add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    cert_add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    cert_add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    cert_add_names(x, host, listen_addr) < 0)
		return -EIO;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		return -EIO;
	*ret = TAKE_PTR(x);
	return 0;
}

/* The PEM text of the new key (in OpenSSL's secure heap, wiped when freed) and of its
 * certificate, each in a memory BIO. */
static int pair_make(const char *listen_addr, BIO **ret_key, BIO **ret_cert, struct mv_error *err)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
	_cleanup_(X509_freep) X509 *x = NULL;
	_cleanup_(BIO_free_allp) BIO *kb = NULL, *cb = NULL;

	ERR_clear_error();
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!pkey)
		return mv_err_internal(err, -EIO, "cannot make an ECDSA P-256 key (%s)",
				       ssl_cause());
	if (cert_make(pkey, listen_addr, &x) < 0)
		return mv_err_internal(err, -EIO, "cannot make a certificate (%s)", ssl_cause());
	kb = BIO_new(BIO_s_secmem());
	cb = BIO_new(BIO_s_mem());
	if (!kb || !cb || PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cb, x) != 1)
		return mv_err_internal(err, -EIO, "cannot encode the key and certificate (%s)",
				       ssl_cause());
	*ret_key = TAKE_PTR(kb);
	*ret_cert = TAKE_PTR(cb);
	return 0;
}

/* Writes bio's bytes to path (created or truncated, never through a symlink) with mode, and
 * syncs it. Removes path on failure. */
static int file_write_synced(const char *path, BIO *bio, mode_t mode)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) < 0)
		r = -errno;
	for (long done = 0; r == 0 && done < len;) {
		ssize_t n = write(fd, data + done, (size_t)(len - done));

		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0)
			done += n;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		(void)unlink(path);
	return r;
}

static int dir_sync(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* a followed by b, in a new string (NULL when out of memory). */
static char *path_join(const char *a, const char *b)
{
	char *s;

	return asprintf(&s, "%s%s", a, b) < 0 ? NULL : s;
}

/* 1 when path exists (a dangling symlink counts: it is the user's), 0 when not, or -errno. */
static int present(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

/* Makes dir (mode 0700, or made so) and a new pair in it: both written to .tmp files and
 * synced first, then renamed, the key first, so that a crash leaves the old state or both. */
static int pair_write(const char *state_dir, const char *dir, const char *cert, const char *key,
		      const char *listen_addr, struct mv_error *err)
{
	_cleanup_(BIO_free_allp) BIO *kb = NULL, *cb = NULL;
	_cleanup_free_ char *cert_tmp = NULL, *key_tmp = NULL;
	struct stat st;
	int r;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return mv_err_internal(err, -errno, "cannot create %s: %m", dir);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return mv_err_precondition(err, -ENOTDIR, "%s: not a directory", dir);
	if (chmod(dir, 0700) < 0 || dir_sync(state_dir) < 0)
		return mv_err_internal(err, -errno, "cannot set up %s: %m", dir);
	if ((r = pair_make(listen_addr, &kb, &cb, err)) < 0)
		return r;
	cert_tmp = path_join(cert, ".tmp");
	key_tmp = path_join(key, ".tmp");
	if (!cert_tmp || !key_tmp)
		return mv_err_oom(err);
	if ((r = file_write_synced(key_tmp, kb, 0600)) < 0)
		return mv_err_internal(err, r, "cannot write %s: %m", key_tmp);
	if ((r = file_write_synced(cert_tmp, cb, 0644)) < 0) {
		(void)unlink(key_tmp);
		return mv_err_internal(err, r, "cannot write %s: %m", cert_tmp);
	}
	if (rename(key_tmp, key) < 0) {
		r = -errno;
		(void)unlink(key_tmp);
		(void)unlink(cert_tmp);
		return mv_err_internal(err, r, "cannot write %s: %m", key);
	}
	if (rename(cert_tmp, cert) < 0) {
		r = -errno;
		(void)unlink(key);
		(void)unlink(cert_tmp);
		return mv_err_internal(err, r, "cannot write %s: %m", cert);
	}
	if ((r = dir_sync(dir)) < 0)
		return mv_err_internal(err, r, "cannot sync %s: %m", dir);
	return 0;
}

int tls_ensure(const char *state_dir, const char *listen_addr, char **ret_cert, char **ret_key,
	       bool *ret_generated, struct mv_error *err)
{
	_cleanup_free_ char *dir = NULL, *cert = NULL, *key = NULL;
	int have_cert, have_key, r;

	dir = path_join(state_dir, "/tls");
	cert = dir ? path_join(dir, "/cert.pem") : NULL;
	key = dir ? path_join(dir, "/key.pem") : NULL;
	if (!cert || !key)
		return mv_err_oom(err);
	have_cert = present(cert);
	have_key = present(key);
	if (have_cert < 0 || have_key < 0)
		return mv_err_internal(err, have_cert < 0 ? have_cert : have_key, "%s: %m",
				       have_cert < 0 ? cert : key);
	if (have_cert && !have_key)
		return mv_err_precondition(err, -ENOENT,
					   "TLS key %s is missing (its certificate %s is there): "
					   "put it back, or remove the certificate too to have a "
					   "new pair generated",
					   key, cert);
	if (!have_cert && have_key)
		return mv_err_precondition(err, -ENOENT,
					   "TLS certificate %s is missing (its key %s is there): "
					   "put it back, or remove the key too to have a new pair "
					   "generated (mvirt-web never overwrites a key)",
					   cert, key);
	if (!have_cert && (r = pair_write(state_dir, dir, cert, key, listen_addr, err)) < 0)
		return r;
	*ret_generated = !have_cert;
	*ret_cert = TAKE_PTR(cert);
	*ret_key = TAKE_PTR(key);
	return 0;
}

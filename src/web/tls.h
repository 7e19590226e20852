/* mvirt-web's TLS certificate and key: the pair it generates at first start in
 * <state-dir>/tls (an ECDSA P-256 key and a self-signed certificate for this host), and the
 * check of a pair, generated or the user's (--tls-cert/--tls-key), before libwebsockets loads
 * it, so that a bad file gets a message naming it and the cause. OpenSSL's types stay in
 * tls.c. Silent: failures fill the error object, web.c's main() prints them. */
#pragma once

#include <stdbool.h>

#include "common/err.h"

#define TLS_FINGERPRINT_LEN 95 /* SHA-256 as "AA:BB:...": 32 bytes, 3 characters each, less 1 */

/* Makes sure state_dir/tls/cert.pem and state_dir/tls/key.pem exist: both there are used as
 * they are; neither there makes a new key and certificate (the tls dir mode 0700, the key
 * 0600, the certificate 0644, each written to a temporary file, synced and renamed, so a crash
 * never leaves half a file), valid for this host name, localhost, 127.0.0.1, ::1 and
 * listen_addr when it is an IP address other than 0.0.0.0 or ::. Only one of them there is
 * refused, naming the missing one (a key is never overwritten). On success *ret_cert and
 * *ret_key are the paths (the caller frees them) and *ret_generated tells whether they were
 * just made. */
int tls_ensure(const char *state_dir, const char *listen_addr, char **ret_cert, char **ret_key,
	       bool *ret_generated, struct mv_error *err);

/* Checks that cert_path holds a PEM certificate and key_path a PEM private key (unencrypted)
 * that belongs to it, and writes the certificate's SHA-256 fingerprint (of its DER form, as
 * browsers show it) to ret_fingerprint. Errors name the file and the cause. */
int tls_check(const char *cert_path, const char *key_path,
	      char ret_fingerprint[TLS_FINGERPRINT_LEN + 1], struct mv_error *err);

/* libcurl, loaded on demand (as systemd loads its heavy optional libraries): the daemon needs
 * it only to talk to running hypervisors, and libcurl drags in a TLS stack and more whose
 * constructors and pages would cost every daemon ~8 MB of RSS from start-up. The table of
 * function pointers is filled once per process, at the first request. See ch_curl.h. */
#include "hypervisor/ch_curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/macro.h"

#define CURL_SONAME "libcurl.so.4"
/* Test hook: another library to load instead (unit tests check the failure paths). */
#define CURL_SONAME_ENV "MVIRT_LIBCURL"

/* Exactly curl.h's prototypes, so a call through a pointer is checked like a direct one (except
 * the setopt/getinfo argument checks of typecheck-gcc.h, which only work on direct calls). */
#define DLSYM_PROTOTYPE(f) __typeof__(f) *sym_##f
DLSYM_PROTOTYPE(curl_global_init);
DLSYM_PROTOTYPE(curl_easy_init);
DLSYM_PROTOTYPE(curl_easy_setopt);
DLSYM_PROTOTYPE(curl_easy_getinfo);
DLSYM_PROTOTYPE(curl_easy_strerror);
DLSYM_PROTOTYPE(curl_easy_cleanup);
DLSYM_PROTOTYPE(curl_slist_append);
DLSYM_PROTOTYPE(curl_slist_free_all);
DLSYM_PROTOTYPE(curl_multi_init);
DLSYM_PROTOTYPE(curl_multi_setopt);
DLSYM_PROTOTYPE(curl_multi_add_handle);
DLSYM_PROTOTYPE(curl_multi_remove_handle);
DLSYM_PROTOTYPE(curl_multi_socket_action);
DLSYM_PROTOTYPE(curl_multi_assign);
DLSYM_PROTOTYPE(curl_multi_info_read);
DLSYM_PROTOTYPE(curl_multi_cleanup);

#define DLSYM_ARG(f)                                                                               \
	{                                                                                          \
		(void **)&sym_##f, #f                                                              \
	}
static const struct {
	void **ptr;
	const char *name;
} curl_symbols[] = {
	DLSYM_ARG(curl_global_init),         DLSYM_ARG(curl_easy_init),
	DLSYM_ARG(curl_easy_setopt),         DLSYM_ARG(curl_easy_getinfo),
	DLSYM_ARG(curl_easy_strerror),       DLSYM_ARG(curl_easy_cleanup),
	DLSYM_ARG(curl_slist_append),        DLSYM_ARG(curl_slist_free_all),
	DLSYM_ARG(curl_multi_init),          DLSYM_ARG(curl_multi_setopt),
	DLSYM_ARG(curl_multi_add_handle),    DLSYM_ARG(curl_multi_remove_handle),
	DLSYM_ARG(curl_multi_socket_action), DLSYM_ARG(curl_multi_assign),
	DLSYM_ARG(curl_multi_info_read),     DLSYM_ARG(curl_multi_cleanup),
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_load_error;         /* 0, or -ELIBACC / -EIO once the load failed */
static char curl_load_message[512]; /* why, when curl_load_error < 0 */

_printf_(2, 3) static void curl_load_fail(int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(curl_load_message, sizeof(curl_load_message), fmt, ap);
	va_end(ap);
	/* all or nothing: no half-resolved table */
	for (size_t i = 0; i < ELEMENTSOF(curl_symbols); i++)
		*curl_symbols[i].ptr = NULL;
	curl_load_error = error;
}

/* RTLD_NODELETE: once loaded, libcurl stays mapped for the life of the process (no dlclose is
 * ever made; libcurl and its TLS stack keep global state and are not built to be unloaded). */
static void curl_load_once(void)
{
	const char *soname = secure_getenv(CURL_SONAME_ENV);
	CURLcode code;
	void *dl;

	if (isempty(soname))
		soname = CURL_SONAME;
	dl = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!dl) {
		curl_load_fail(-ELIBACC, "cannot load %s: %s", soname, strempty(dlerror()));
		return;
	}
	for (size_t i = 0; i < ELEMENTSOF(curl_symbols); i++) {
		const char *e;

		dlerror();
		*curl_symbols[i].ptr = dlsym(dl, curl_symbols[i].name);
		e = dlerror();
		if (e || !*curl_symbols[i].ptr) {
			curl_load_fail(-ELIBACC, "cannot load %s: %s", soname,
				       e ? e : curl_symbols[i].name);
			return;
		}
	}
	code = sym_curl_global_init(CURL_GLOBAL_NOTHING);
	if (code != CURLE_OK)
		curl_load_fail(-EIO, "cannot initialise %s: %s", soname,
			       sym_curl_easy_strerror(code));
}

int ch_curl_load(void)
{
	pthread_once(&curl_once, curl_load_once);
	return curl_load_error;
}

const char *ch_curl_load_message(void)
{
	return curl_load_message;
}

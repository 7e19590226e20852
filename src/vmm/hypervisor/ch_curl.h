/* libcurl's functions for the hypervisor client, through pointers resolved at the first use
 * (ch_curl.c). Include this instead of calling curl_* directly. */
#pragma once

#include <curl/curl.h>

#define DLSYM_DECLARE(f) extern __typeof__(f) *sym_##f
DLSYM_DECLARE(curl_global_init);
DLSYM_DECLARE(curl_easy_init);
DLSYM_DECLARE(curl_easy_setopt);
DLSYM_DECLARE(curl_easy_getinfo);
DLSYM_DECLARE(curl_easy_strerror);
DLSYM_DECLARE(curl_easy_cleanup);
DLSYM_DECLARE(curl_slist_append);
DLSYM_DECLARE(curl_slist_free_all);
DLSYM_DECLARE(curl_multi_init);
DLSYM_DECLARE(curl_multi_setopt);
DLSYM_DECLARE(curl_multi_add_handle);
DLSYM_DECLARE(curl_multi_remove_handle);
DLSYM_DECLARE(curl_multi_socket_action);
DLSYM_DECLARE(curl_multi_assign);
DLSYM_DECLARE(curl_multi_info_read);
DLSYM_DECLARE(curl_multi_cleanup);

/* Loads libcurl once per process (thread-safe). 0, or -ELIBACC (not found, or a symbol
 * missing) / -EIO (init failed) with ch_curl_load_message() saying why; not retried. */
int ch_curl_load(void);
const char *ch_curl_load_message(void);

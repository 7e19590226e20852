/* See api_context.h. */
#include "api/api_context.h"

#include <stdlib.h>

void api_context_host_limits(struct api_context *ctx, struct host_limits *ret)
{
	struct sysinfo_host h;

	if (sysinfo_host_read(&h) >= 0)
		ctx->host = h;
	ret->cpus = ctx->host.cpus;
	ret->memory_mb = ctx->host.memory_mb;
}

const char *api_context_hypervisor_version(struct api_context *ctx, bool *ret_found)
{
	struct stat st;
	char *v = NULL;

	if (stat(ctx->hypervisor, &st) < 0 || !S_ISREG(st.st_mode)) {
		*ret_found = false;
		return "";
	}
	*ret_found = true;
	if (ctx->hv_version && st.st_dev == ctx->hv_dev && st.st_ino == ctx->hv_ino &&
	    st.st_mtim.tv_sec == ctx->hv_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == ctx->hv_mtime.tv_nsec)
		return ctx->hv_version;
	free(ctx->hv_version);
	ctx->hv_version = NULL;
	if (sysinfo_hypervisor_version(ctx->hypervisor, &v) < 0)
		return "";
	ctx->hv_version = v;
	ctx->hv_dev = st.st_dev;
	ctx->hv_ino = st.st_ino;
	ctx->hv_mtime = st.st_mtim;
	return v;
}

void api_context_done(struct api_context *ctx)
{
	if (!ctx)
		return;
	free(ctx->hv_version);
	ctx->hv_version = NULL;
}

/* See api_volume.h. Volume info structs from the storage manager are turned into Mvirt__Volume
 * messages that borrow their strings (valid for the duration of the reply). */
#include "api/api_volume.h"

#include <inttypes.h>
#include <string.h>

#include "api/api_context.h"
#include "api/api_convert.h"
#include "common/log.h"
#include "common/strv.h"
#include "mvirt.pb-c.h"
#include "storage/storage.h"

#define IMPORT_MAX_QUEUED 16 /* progress messages waiting for a slow client; more are dropped */

static struct storage *storage_of(struct api_call *call)
{
	return api_context_of(call)->storage;
}

static char *pb_str(char *s)
{
	return s ? s : (char *)protobuf_c_empty_string;
}

/* Fills pb from v (borrowed) and ts; nothing to free. */
static void volume_to_pb(const struct storage_volume_info *v, Mvirt__Volume *pb,
			 Google__Protobuf__Timestamp *ts)
{
	api_convert_timestamp(v->created_at_us, ts);
	*pb = (Mvirt__Volume)MVIRT__VOLUME__INIT;
	pb->name = pb_str(v->name);
	pb->pool = pb_str(v->pool);
	pb->format = (Mvirt__DiskFormat)v->format;
	pb->virtual_size = v->virtual_size;
	pb->allocated_bytes = v->allocated_bytes;
	pb->backing_volume = pb_str(v->backing);
	pb->n_backing_chain = strv_len(v->backing_chain);
	pb->backing_chain = v->backing_chain;
	pb->n_used_by = strv_len(v->used_by);
	pb->used_by = v->used_by;
	pb->n_clones = strv_len(v->clones);
	pb->clones = v->clones;
	pb->path = pb_str(v->path);
	pb->created_at = ts;
	pb->status = pb_str(v->status);
}

static void reply_volume(struct api_call *call, const struct storage_volume_info *v)
{
	Google__Protobuf__Timestamp ts;
	Mvirt__Volume pb;

	volume_to_pb(v, &pb, &ts);
	api_call_reply(call, &pb.base);
}

static bool have_storage(struct api_call *call)
{
	if (storage_of(call))
		return true;
	api_call_fail(call, GRPC_STATUS_UNAVAILABLE, "the storage manager is not available");
	return false;
}

/* Unary calls that run an operation: answered from its done callback. */
static void on_op_done(void *userdata, const struct storage_volume_info *vol,
		       const struct mv_error *err)
{
	struct api_call *call = userdata;

	if (!vol) {
		log_info("api %s: %s", api_call_method(call), err->msg);
		api_call_fail_err(call, err);
		return;
	}
	log_info("volume %s: %s done (%s, %" PRIu64 " bytes, pool %s)", vol->name,
		 strrchr(api_call_method(call), '/') + 1, disk_format_name(vol->format),
		 vol->virtual_size, vol->pool);
	reply_volume(call, vol);
}

/* Fails the call if the operation could not begin (r < 0). */
static void begun(struct api_call *call, int r, struct mv_error *err)
{
	if (r >= 0)
		return;
	mv_err_ensure(err, r);
	api_call_fail_err(call, err);
}

static void handle_create(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__CreateVolumeRequest *req = (const Mvirt__CreateVolumeRequest *)msg;
	struct mv_error err = {0};

	if (!have_storage(call))
		return;
	api_call_hold(call);
	begun(call,
	      storage_volume_create(storage_of(call), req->name, req->size_bytes,
				    (enum disk_format)req->format, req->pool, on_op_done, call,
				    &err),
	      &err);
}

static void handle_clone(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__CloneVolumeRequest *req = (const Mvirt__CloneVolumeRequest *)msg;
	struct mv_error err = {0};

	if (!have_storage(call))
		return;
	api_call_hold(call);
	begun(call,
	      storage_volume_clone(storage_of(call), req->source, req->name, on_op_done, call,
				   &err),
	      &err);
}

static void handle_resize(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__ResizeVolumeRequest *req = (const Mvirt__ResizeVolumeRequest *)msg;
	struct mv_error err = {0};

	if (!have_storage(call))
		return;
	api_call_hold(call);
	begun(call,
	      storage_volume_resize(storage_of(call), req->name, req->size_bytes, on_op_done, call,
				    &err),
	      &err);
}

static void handle_delete(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__DeleteVolumeRequest *req = (const Mvirt__DeleteVolumeRequest *)msg;
	Mvirt__DeleteVolumeResponse resp = MVIRT__DELETE_VOLUME_RESPONSE__INIT;
	struct mv_error err = {0};

	if (!have_storage(call))
		return;
	if (storage_volume_delete(storage_of(call), req->name, &err) < 0) {
		api_call_fail_err(call, &err);
		return;
	}
	log_info("volume %s: deleted", req->name);
	api_call_reply(call, &resp.base);
}

static void handle_get(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__GetVolumeRequest *req = (const Mvirt__GetVolumeRequest *)msg;
	struct storage_volume_info info;
	struct mv_error err = {0};

	if (!have_storage(call))
		return;
	if (storage_volume_get(storage_of(call), req->name, &info, &err) < 0) {
		api_call_fail_err(call, &err);
		return;
	}
	reply_volume(call, &info);
	storage_volume_info_done(&info);
}

static void handle_list(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__ListVolumesRequest *req = (const Mvirt__ListVolumesRequest *)msg;
	Mvirt__ListVolumesResponse resp = MVIRT__LIST_VOLUMES_RESPONSE__INIT;
	struct storage_volume_info *infos = NULL;
	Google__Protobuf__Timestamp *ts = NULL;
	Mvirt__Volume *vols = NULL, **ptrs = NULL;
	char **unknown = NULL;
	struct mv_error err = {0};
	size_t n = 0;

	if (!have_storage(call))
		return;
	if (storage_volume_list(storage_of(call), req->pool, &infos, &n, &unknown, &err) < 0) {
		api_call_fail_err(call, &err);
		return;
	}
	if (n > 0 && (!(vols = calloc(n, sizeof(*vols))) || !(ptrs = calloc(n, sizeof(*ptrs))) ||
		      !(ts = calloc(n, sizeof(*ts))))) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		volume_to_pb(&infos[i], &vols[i], &ts[i]);
		ptrs[i] = &vols[i];
	}
	resp.n_volumes = n;
	resp.volumes = ptrs;
	resp.n_unknown_files = strv_len(unknown);
	resp.unknown_files = unknown;
	api_call_reply(call, &resp.base);
out:
	for (size_t i = 0; i < n; i++)
		storage_volume_info_done(&infos[i]);
	free(infos);
	for (size_t i = 0; unknown && unknown[i]; i++)
		free(unknown[i]);
	free(unknown);
	free(vols);
	free(ptrs);
	free(ts);
}

/* ---- ImportVolume: call data is the import while its operation runs ---- */

struct import_call {
	struct storage_job *op;
	char name[VM_NAME_MAX + 1];
};

static void on_import_progress(void *userdata, uint64_t done, uint64_t total)
{
	Mvirt__VolumeProgress p = MVIRT__VOLUME_PROGRESS__INIT;

	p.done_bytes = done;
	p.total_bytes = total;
	/* A client that does not read misses progress messages, never the end. */
	(void)api_call_send(userdata, &p.base, IMPORT_MAX_QUEUED);
}

static void on_import_done(void *userdata, const struct storage_volume_info *vol,
			   const struct mv_error *err)
{
	struct api_call *call = userdata;
	Mvirt__VolumeProgress p = MVIRT__VOLUME_PROGRESS__INIT;
	Google__Protobuf__Timestamp ts;
	Mvirt__Volume pb;

	free(api_call_get_data(call));
	api_call_set_data(call, NULL);
	if (!vol) {
		log_info("api %s: %s", api_call_method(call), err->msg);
		api_call_fail_err(call, err);
		return;
	}
	log_info("volume %s: imported (%s, %" PRIu64 " bytes, pool %s)", vol->name,
		 disk_format_name(vol->format), vol->virtual_size, vol->pool);
	volume_to_pb(vol, &pb, &ts);
	p.done_bytes = p.total_bytes = vol->virtual_size;
	p.volume = &pb;
	(void)api_call_send(call, &p.base, SIZE_MAX);
	api_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void handle_import(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__ImportVolumeRequest *req = (const Mvirt__ImportVolumeRequest *)msg;
	struct import_call *ic;
	struct mv_error err = {0};

	if (!have_storage(call))
		return;
	if (!(ic = calloc(1, sizeof(*ic)))) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	if (storage_volume_import(storage_of(call), req->name, req->source_path,
				  (enum disk_format)req->format, req->pool, on_import_progress,
				  on_import_done, call, &ic->op, &err) < 0) {
		free(ic);
		begun(call, err.code ? err.code : -EIO, &err);
		return;
	}
	snprintf(ic->name, sizeof(ic->name), "%s", req->name);
	log_info("volume %s: importing %s", ic->name, req->source_path);
	api_call_set_data(call, ic);
	api_call_begin_stream(call);
}

static void on_import_over(struct api_call *call)
{
	struct import_call *ic = api_call_get_data(call);

	if (!ic)
		return;
	api_call_set_data(call, NULL);
	log_info("volume %s: import cancelled (the client went away); partial file removed",
		 ic->name);
	storage_job_cancel(ic->op);
	free(ic);
}

#define UNARY(method, type, fn) API_UNARY("/mvirt.VolumeService/" method, type, fn)

const struct api_method api_volume_methods[] = {
	UNARY("CreateVolume", mvirt__create_volume_request, handle_create),
	{
		.path = "/mvirt.VolumeService/ImportVolume",
		.kind = API_METHOD_SERVER_STREAM,
		.request = &mvirt__import_volume_request__descriptor,
		.handle = handle_import,
		.on_cancel = on_import_over,
	},
	UNARY("CloneVolume", mvirt__clone_volume_request, handle_clone),
	UNARY("ResizeVolume", mvirt__resize_volume_request, handle_resize),
	UNARY("DeleteVolume", mvirt__delete_volume_request, handle_delete),
	UNARY("GetVolume", mvirt__get_volume_request, handle_get),
	UNARY("ListVolumes", mvirt__list_volumes_request, handle_list),
	{.path = NULL},
};

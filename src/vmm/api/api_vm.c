/* See api_vm.h. */
#include "api/api_vm.h"

#include <malloc.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api_context.h"
#include "api/api_convert.h"
#include "common/macro.h"
#include "mvirt.pb-c.h"
#include "network/network.h"
#include "os/sysinfo.h"
#include "vm/vm.h"

#define API_VERSION 1

/* The DHCP leases of all networks (for NicStatus.addresses); free *owned after use. A lease
 * file that cannot be read only leaves addresses out. */
static struct api_leases read_leases(struct api_call *call, struct dnsmasq_lease **owned)
{
	struct network_manager *nets = api_context_of(call)->networks;
	size_t n = 0;

	*owned = NULL;
	if (nets && network_leases_all(nets, owned, &n) < 0)
		n = 0;
	return (struct api_leases){.v = *owned, .n = n};
}

static void reply_vm(struct api_call *call, const struct vm_record *rec)
{
	_cleanup_free_ struct dnsmasq_lease *owned = NULL;
	struct api_leases leases = read_leases(call, &owned);
	Mvirt__Vm vm;

	if (api_convert_vm_to_pb(rec, &leases, &vm) < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	api_call_reply(call, &vm.base);
	api_convert_vm_pb_done(&vm);
}

static void handle_create(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__CreateVmRequest *req = (const Mvirt__CreateVmRequest *)msg;
	struct api_context *ctx = api_context_of(call);
	struct mv_error err = {0};
	struct vm_config config = {0};
	struct host_limits host;
	const struct vm_record *rec;
	int r;

	if (!req->config) {
		api_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "config: required");
		return;
	}
	r = api_convert_config_from_pb(req->config, &config);
	if (r < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	api_context_host_limits(ctx, &host);
	r = vm_manager_create(ctx->vms, req->name, &config, &host, &rec, &err);
	vmdef_config_done(&config);
	if (r < 0) {
		api_call_fail_err(call, &err);
		return;
	}
	log_info("vm %s: created (id %s)", rec->name, rec->id);
	reply_vm(call, rec);
}

/* UpdateVm: the whole config, or the members update_mask names (top-level VmConfig fields). */
static void handle_update(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__UpdateVmRequest *req = (const Mvirt__UpdateVmRequest *)msg;
	struct api_context *ctx = api_context_of(call);
	_cleanup_(vmdef_config_done) struct vm_config config = {0};
	uint32_t fields = VM_FIELD_ALL;
	struct mv_error err = {0};
	struct host_limits host;
	const struct vm_record *rec;

	if (!req->config) {
		api_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "config: required");
		return;
	}
	if (req->update_mask && req->update_mask->n_paths > 0) {
		fields = 0;
		for (size_t i = 0; i < req->update_mask->n_paths; i++) {
			const char *path = req->update_mask->paths[i];
			uint32_t bit = vmdef_config_field_from_name(path);

			if (!bit) {
				char q[80];

				api_call_fail(
					call, GRPC_STATUS_INVALID_ARGUMENT,
					"update_mask.paths[%zu]: '%s' is not a field of VmConfig",
					i, mv_printable(path, q, sizeof(q)));
				return;
			}
			fields |= bit;
		}
	}
	if (api_convert_config_from_pb(req->config, &config) < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	api_context_host_limits(ctx, &host);
	if (vm_manager_update(ctx->vms, req->vm, &config, fields, req->config_version, &host, &rec,
			      &err) < 0) {
		api_call_fail_err(call, &err);
		return;
	}
	reply_vm(call, rec);
}

static void handle_get(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__GetVmRequest *req = (const Mvirt__GetVmRequest *)msg;
	struct mv_error err = {0};
	const struct vm_record *rec;

	if (vm_manager_lookup(api_context_of(call)->vms, req->vm, "vm", &rec, &err) < 0)
		api_call_fail_err(call, &err);
	else
		reply_vm(call, rec);
}

static void handle_list(struct api_call *call, const ProtobufCMessage *msg)
{
	struct vm_manager *m = api_context_of(call)->vms;
	Mvirt__ListVmsResponse resp = MVIRT__LIST_VMS_RESPONSE__INIT;
	size_t n = vm_manager_count(m), done = 0;
	Mvirt__Vm *vms = NULL;
	Mvirt__Vm **ptrs = NULL;
	_cleanup_free_ struct dnsmasq_lease *owned = NULL;
	struct api_leases leases = read_leases(call, &owned);

	(void)msg;
	if (n > 0) {
		vms = calloc(n, sizeof(*vms));
		ptrs = calloc(n, sizeof(*ptrs));
		if (!vms || !ptrs)
			goto oom;
	}
	for (; done < n; done++) {
		if (api_convert_vm_to_pb(vm_manager_at(m, done), &leases, &vms[done]) < 0)
			goto oom;
		ptrs[done] = &vms[done];
	}
	resp.n_vms = n;
	resp.vms = ptrs;
	api_call_reply(call, &resp.base);
	goto out;
oom:
	api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
out:
	for (size_t i = 0; i < done; i++)
		api_convert_vm_pb_done(&vms[i]);
	free(vms);
	free(ptrs);
	/* A big answer's temporary copies would otherwise stay in the heap for good. */
	if (n >= 256)
		malloc_trim(0);
}

static void handle_delete(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__DeleteVmRequest *req = (const Mvirt__DeleteVmRequest *)msg;
	Mvirt__DeleteVmResponse resp = MVIRT__DELETE_VM_RESPONSE__INIT;
	struct api_context *ctx = api_context_of(call);
	struct mv_error err = {0};
	struct vm_record old = {0};
	Mvirt__Vm vm;

	if (vm_manager_delete(ctx->vms, req->vm, &old, &err) < 0) {
		api_call_fail_err(call, &err);
		return;
	}
	log_info("vm %s: deleted (id %s)", old.name, old.id);
	if (api_convert_vm_to_pb(&old, NULL, &vm) < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
	} else {
		resp.vm = &vm;
		api_call_reply(call, &resp.base);
		api_convert_vm_pb_done(&vm);
	}
	vmdef_record_done(&old);
}

static void on_op_done(void *userdata, const struct vm_record *rec, const struct mv_error *err)
{
	struct api_call *call = userdata;

	if (err->kind != MV_ERR_NONE)
		api_call_fail_err(call, err);
	else
		reply_vm(call, rec);
}

/* Lifecycle calls answer once the operation is over (a StopVm returns a STOPPED VM). */
static void run_op(struct api_call *call, enum vm_op_kind kind, const char *ref,
		   const struct vm_op_args *args)
{
	struct mv_error err = {0};
	int r;

	api_call_hold(call);
	r = vm_manager_op(api_context_of(call)->vms, kind, ref, args, on_op_done, call, &err);
	if (r < 0) {
		mv_err_ensure(&err, r);
		api_call_fail_err(call, &err);
	}
}

static char *nonempty(const char *s)
{
	return isempty(s) ? NULL : (char *)s;
}

static void handle_add_nic(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__AddNicRequest *req = (const Mvirt__AddNicRequest *)msg;
	struct mv_error err = {0};
	struct vm_nic nic;
	int r;

	if (!req->nic) {
		api_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "nic: required");
		return;
	}
	/* borrowed from the request: the VM manager copies what it keeps */
	nic = (struct vm_nic){.tap = nonempty(req->nic->tap),
			      .network = nonempty(req->nic->network),
			      .mac = nonempty(req->nic->mac)};
	api_call_hold(call);
	r = vm_manager_add_nic(api_context_of(call)->vms, req->vm, &nic, on_op_done, call, &err);
	if (r < 0) {
		mv_err_ensure(&err, r);
		api_call_fail_err(call, &err);
	}
}

static void handle_remove_nic(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__RemoveNicRequest *req = (const Mvirt__RemoveNicRequest *)msg;
	struct mv_error err = {0};
	int r;

	api_call_hold(call);
	r = vm_manager_remove_nic(api_context_of(call)->vms, req->vm, req->mac, on_op_done, call,
				  &err);
	if (r < 0) {
		mv_err_ensure(&err, r);
		api_call_fail_err(call, &err);
	}
}

static void handle_start(struct api_call *call, const ProtobufCMessage *msg)
{
	run_op(call, VM_OP_START, ((const Mvirt__StartVmRequest *)msg)->vm, NULL);
}

static void handle_stop(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__StopVmRequest *req = (const Mvirt__StopVmRequest *)msg;
	struct vm_op_args args = {
		.timeout_s = req->timeout_seconds ? req->timeout_seconds->value
						  : VM_STOP_DEFAULT_TIMEOUT_S,
		.force = req->force,
	};

	run_op(call, VM_OP_STOP, req->vm, &args);
}

static void handle_kill(struct api_call *call, const ProtobufCMessage *msg)
{
	run_op(call, VM_OP_KILL, ((const Mvirt__KillVmRequest *)msg)->vm, NULL);
}

static void handle_reboot(struct api_call *call, const ProtobufCMessage *msg)
{
	run_op(call, VM_OP_REBOOT, ((const Mvirt__RebootVmRequest *)msg)->vm, NULL);
}

static void handle_pause(struct api_call *call, const ProtobufCMessage *msg)
{
	run_op(call, VM_OP_PAUSE, ((const Mvirt__PauseVmRequest *)msg)->vm, NULL);
}

static void handle_resume(struct api_call *call, const ProtobufCMessage *msg)
{
	run_op(call, VM_OP_RESUME, ((const Mvirt__ResumeVmRequest *)msg)->vm, NULL);
}

static void handle_version(struct api_call *call, const ProtobufCMessage *msg)
{
	Mvirt__GetVersionResponse resp = MVIRT__GET_VERSION_RESPONSE__INIT;

	(void)msg;
	resp.version = (char *)MVIRT_VERSION;
	resp.api_version = API_VERSION;
	api_call_reply(call, &resp.base);
}

static void handle_sysinfo(struct api_call *call, const ProtobufCMessage *msg)
{
	Mvirt__SystemInfo resp = MVIRT__SYSTEM_INFO__INIT;
	struct api_context *ctx = api_context_of(call);
	struct sysinfo_host host;
	bool found;
	int r;

	(void)msg;
	r = sysinfo_host_read(&host);
	if (r < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "cannot read host information: %s",
			      strerror(-r));
		return;
	}
	resp.host_cpus = host.cpus;
	resp.host_memory_mb = host.memory_mb;
	vm_manager_totals(ctx->vms, &resp.allocated_vcpus, &resp.allocated_memory_mb);
	resp.vm_count = (uint32_t)vm_manager_count(ctx->vms);
	resp.hypervisor_path = (char *)ctx->hypervisor;
	resp.hypervisor_version = (char *)api_context_hypervisor_version(ctx, &found);
	resp.hypervisor_found = found;
	resp.hostname = host.hostname;
	resp.kernel_release = host.kernel_release;
	api_call_reply(call, &resp.base);
}

#define UNARY(method, type, fn) API_UNARY("/mvirt.VmService/" method, type, fn)

const struct api_method api_vm_methods[] = {
	UNARY("CreateVm", mvirt__create_vm_request, handle_create),
	UNARY("UpdateVm", mvirt__update_vm_request, handle_update),
	UNARY("GetVm", mvirt__get_vm_request, handle_get),
	UNARY("ListVms", mvirt__list_vms_request, handle_list),
	UNARY("DeleteVm", mvirt__delete_vm_request, handle_delete),
	UNARY("StartVm", mvirt__start_vm_request, handle_start),
	UNARY("StopVm", mvirt__stop_vm_request, handle_stop),
	UNARY("KillVm", mvirt__kill_vm_request, handle_kill),
	UNARY("RebootVm", mvirt__reboot_vm_request, handle_reboot),
	UNARY("PauseVm", mvirt__pause_vm_request, handle_pause),
	UNARY("ResumeVm", mvirt__resume_vm_request, handle_resume),
	UNARY("AddNic", mvirt__add_nic_request, handle_add_nic),
	UNARY("RemoveNic", mvirt__remove_nic_request, handle_remove_nic),
	UNARY("GetVersion", mvirt__get_version_request, handle_version),
	UNARY("GetSystemInfo", mvirt__get_system_info_request, handle_sysinfo),
	{.path = NULL},
};

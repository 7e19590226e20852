/* Typed calls of cloud-hypervisor's REST API (v54, see shared/reference and
 * tools/ch-emu/cloud-hypervisor-openapi-v54.yaml), one function per endpoint, in the manner of
 * libvirt's ch_monitor.c. Callers name what they want done; only this file knows the endpoints'
 * names, methods, bodies and how long each may take, and only it parses their answers. Every
 * call is asynchronous (ch_client.c): fn runs once on the loop, unless the request is
 * cancelled; *ret (may be NULL) is the handle to cancel it with. Silent. */
#pragma once

#include <stdint.h>

#include "hypervisor/ch_client.h"

/* A VM's state as vm.info reports it. */
enum ch_vm_state {
	CH_VM_STATE_UNKNOWN = 0, /* missing or not one of the states below */
	CH_VM_STATE_CREATED,
	CH_VM_STATE_RUNNING,
	CH_VM_STATE_SHUTDOWN,
	CH_VM_STATE_PAUSED,
};

struct ch_vm_info {
	enum ch_vm_state state;
	char state_name[32]; /* as reported ("Running"), "" when absent */
};

/* PUT vm.create with a VmConfig document (ch_config_json). */
int ch_vm_create(struct ch_client *c, const char *socket, const char *config_json, ch_reply_fn fn,
		 void *userdata, struct ch_request **ret);
/* PUT vm.boot. */
int ch_vm_boot(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
	       struct ch_request **ret);
/* GET vm.info; read the answer with ch_reply_vm_info(). */
int ch_vm_info(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
	       struct ch_request **ret);
/* PUT vm.power-button: the guest's ACPI power button. */
int ch_vm_power_button(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		       struct ch_request **ret);
/* PUT vm.pause, vm.resume, vm.reboot, vm.shutdown (the VM, not the process). */
int ch_vm_pause(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		struct ch_request **ret);
int ch_vm_resume(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		 struct ch_request **ret);
int ch_vm_reboot(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		 struct ch_request **ret);
int ch_vm_shutdown(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		   struct ch_request **ret);
/* PUT vmm.shutdown: the hypervisor process ends. */
int ch_vmm_shutdown(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		    struct ch_request **ret);
/* PUT vm.add-disk / vm.add-net with a DiskConfig / NetConfig document, and vm.remove-device
 * of the device named id (-EINVAL for an empty id or one that needs escaping). */
int ch_vm_add_disk(struct ch_client *c, const char *socket, const char *disk_json, ch_reply_fn fn,
		   void *userdata, struct ch_request **ret);
int ch_vm_add_net(struct ch_client *c, const char *socket, const char *net_json, ch_reply_fn fn,
		  void *userdata, struct ch_request **ret);
/* vm.add-net of a device backed by tap fds (one per queue pair), passed with SCM_RIGHTS:
 * cloud-hypervisor takes every fd of the request for the device; the caller keeps its own. */
int ch_vm_add_net_fds(struct ch_client *c, const char *socket, const char *net_json, const int *fds,
		      size_t n_fds, ch_reply_fn fn, void *userdata, struct ch_request **ret);
int ch_vm_remove_device(struct ch_client *c, const char *socket, const char *id, ch_reply_fn fn,
			void *userdata, struct ch_request **ret);

/* GET vm.counters within timeout_ms (a scrape must not wait on a hung hypervisor); read the
 * answer with ch_vm_counters_parse(). */
int ch_vm_counters(struct ch_client *c, const char *socket, uint64_t timeout_ms, ch_reply_fn fn,
		   void *userdata, struct ch_request **ret);

/* One counter of a VmCounters reply: device id ("_disk0", "net525400..."), counter name
 * ("read_bytes", "rx_frames"), value. The strings are valid during the call only. Returns 0 to
 * go on, < 0 to stop the parse with that error. */
typedef int (*ch_counter_fn)(void *userdata, const char *device, const char *name, uint64_t value);
/* Pure: walks a VmCounters JSON body ({"device": {"counter": N, ...}, ...}), calling fn for
 * every integer counter in document order; members of other types are skipped (the spec has
 * only int64 counters), negative values count as 0. At most CH_COUNTERS_MAX counters:
 * -E2BIG beyond. -EBADMSG when the body is not a JSON object, or fn's error. */
#define CH_COUNTERS_MAX 4096
int ch_vm_counters_parse(const char *body, ch_counter_fn fn, void *userdata);

/* The state in a vm.info reply: 0 with *ret filled, -EIO when the call failed (see
 * ch_reply_ok), -EBADMSG when the body is not a VmInfo (state UNKNOWN then). */
int ch_reply_vm_info(const struct ch_reply *reply, struct ch_vm_info *ret);
/* Pure: parses a VmInfo JSON body. */
int ch_vm_info_parse(const char *body, struct ch_vm_info *ret);
const char *ch_vm_state_name(enum ch_vm_state state);

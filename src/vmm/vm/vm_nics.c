/* NIC hotplug, the add-nic and remove-nic operations of vm_manager_op (see vm.h,
 * vm_manager_add_nic): vm.c has checked the request and made the config after the change; this
 * file puts the device into a running VM, or takes it out, and only then adopts that config. */
#include "vm/vm_lifecycle.h"

#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "hypervisor/ch_config.h"
#include "hypervisor/ch_vm.h"
#include "network/network.h"
#include "vm/vm_registry.h"

/* The op's config becomes the VM's. Returns the store's verdict; the swap is undone on failure
 * when undo is set (nothing happened yet), kept otherwise (the device changed already: memory
 * stays authoritative for this run, the store failure is logged by vm_save). */
static int adopt_config(struct vm *vm, bool undo, struct mv_error *err)
{
	struct vm_config old = vm->rec.config;
	int r;

	vm->rec.config = vm->op->new_config;
	vm->op->new_config = old;
	r = undo ? store_vm_save(vm->m->store, &vm->rec, err) : vm_save(vm);
	if (r < 0 && undo) {
		vm->op->new_config = vm->rec.config;
		vm->rec.config = old;
		return mv_err_prefix(err, "vm '%s': cannot save: ", vm->rec.name), r;
	}
	log_info("vm %s: %s %s", vm->rec.name,
		 vm->op->kind == VM_OP_ADD_NIC ? "added NIC" : "removed NIC",
		 vm->op->kind == VM_OP_ADD_NIC ? vm->rec.config.nics[vm->op->nic_index].mac
					       : old.nics[vm->op->nic_index].mac);
	vm_emit(vm, VM_EVENT_CONFIG_CHANGED);
	return 0;
}

static void on_nic_reply(void *userdata, const struct ch_reply *reply)
{
	struct vm *vm = userdata;
	struct vm_op *op = vm->op;
	struct mv_error err = {0};

	vm_op_replied(op);
	if (!ch_reply_ok(reply)) {
		vm_op_reply_error(vm, op->kind == VM_OP_ADD_NIC ? "vm.add-net" : "vm.remove-device",
				  reply, &err);
		vm_op_finish(vm, &err);
		return;
	}
	(void)adopt_config(vm, false, NULL);
	vm_op_finish(vm, NULL);
}

/* vm.add-net of the op's new NIC: with the tap the daemon makes (a NIC on a network; the tap
 * then lives as long as the hypervisor's fd of it) or by the name of the user's tap. */
static int add_net(struct vm *vm, struct mv_error *err)
{
	struct vm_op *op = vm->op;
	const struct vm_nic *nic = &op->new_config.nics[op->nic_index];
	_cleanup_free_ char *json = NULL;
	char tap[16];
	int fd, r;

	r = ch_config_net_json(nic, &json);
	if (r < 0)
		return mv_err_oom(err);
	if (isempty(nic->network))
		return ch_vm_add_net(vm->m->ch, vm->run.api_socket, json, on_nic_reply, vm,
				     &op->req);
	fd = network_tap_open(vm->m->networks, nic->network, vm_nic_tap_name(nic->mac, tap), err);
	if (fd < 0)
		return mv_err_prefix(err, "nic.network: "), fd;
	op->tap_fds[0] = fd; /* closed when the op ends: the hypervisor has its own by then */
	op->tap_nic[0] = op->nic_index;
	op->n_taps = 1;
	return ch_vm_add_net_fds(vm->m->ch, vm->run.api_socket, json, &op->tap_fds[0], 1,
				 on_nic_reply, vm, &op->req);
}

int vm_nics_begin(struct vm *vm, struct mv_error *err)
{
	struct vm_op *op = vm->op;
	char id[16];
	int r;

	if (!vm->proc) {
		/* stopped: the config is all there is */
		r = adopt_config(vm, true, err);
		if (r >= 0)
			vm_op_finish(vm, NULL);
		return r;
	}
	vm_op_calling(vm);
	if (op->kind == VM_OP_ADD_NIC)
		r = add_net(vm, err);
	else
		r = ch_vm_remove_device(
			vm->m->ch, vm->run.api_socket,
			vm_nic_device_id(vm->rec.config.nics[op->nic_index].mac, id), on_nic_reply,
			vm, &op->req);
	/* (a tap that could not be made has said why already: the first message stays) */
	if (r < 0)
		return mv_err_internal(err, r, "vm '%s': cannot talk to cloud-hypervisor: %m",
				       vm->rec.name);
	return 0;
}

/* The VM manager's vocabulary: the names of operations and events, and the state table (which
 * lifecycle operation may begin in which state). Pure; see vm.h. The state names themselves
 * belong to the data model (model/vmdef.c). The table is tested exhaustively
 * (tests/unit/test_vm_state.c). */
#include "vm/vm.h"

const char *vm_op_kind_name(enum vm_op_kind kind)
{
	switch (kind) {
	case VM_OP_START:
		return "start";
	case VM_OP_STOP:
		return "stop";
	case VM_OP_KILL:
		return "kill";
	case VM_OP_REBOOT:
		return "reboot";
	case VM_OP_PAUSE:
		return "pause";
	case VM_OP_RESUME:
		return "resume";
	case VM_OP_ADD_NIC:
		return "add-nic";
	case VM_OP_REMOVE_NIC:
		return "remove-nic";
	}
	return "operation";
}

const char *vm_event_type_name(enum vm_event_type type)
{
	static const char *const names[] = {
		[VM_EVENT_CREATED] = "created",
		[VM_EVENT_STARTED] = "started",
		[VM_EVENT_STOPPED] = "stopped",
		[VM_EVENT_CRASHED] = "crashed",
		[VM_EVENT_PAUSED] = "paused",
		[VM_EVENT_RESUMED] = "resumed",
		[VM_EVENT_REBOOTED] = "rebooted",
		[VM_EVENT_DELETED] = "deleted",
		[VM_EVENT_CONFIG_CHANGED] = "config-changed",
		[VM_EVENT_STATE_CHANGED] = "state-changed",
	};

	return (size_t)type < ELEMENTSOF(names) && names[type] ? names[type] : "unknown";
}

bool vm_op_allowed(enum vm_state state, bool has_process, enum vm_op_kind kind)
{
	switch (kind) {
	case VM_OP_START:
		return (state == VM_STATE_STOPPED || state == VM_STATE_CRASHED) && !has_process;
	case VM_OP_STOP:
	case VM_OP_REBOOT:
		return (state == VM_STATE_RUNNING || state == VM_STATE_PAUSED) && has_process;
	case VM_OP_KILL:
		return has_process;
	case VM_OP_PAUSE:
		return state == VM_STATE_RUNNING && has_process;
	case VM_OP_RESUME:
		return state == VM_STATE_PAUSED && has_process;
	case VM_OP_ADD_NIC:
	case VM_OP_REMOVE_NIC:
		return (state == VM_STATE_RUNNING && has_process) ||
		       ((state == VM_STATE_STOPPED || state == VM_STATE_CRASHED) && !has_process);
	}
	return false;
}

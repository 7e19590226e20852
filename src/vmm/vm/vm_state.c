/* The VM state table: which lifecycle operation may begin in which state. Pure; see vm.h. Kept
 * apart from vm_run.c so that it is tested exhaustively (tests/unit/test_vm_state.c). */
#include "vm/vm.h"

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
	}
	return false;
}

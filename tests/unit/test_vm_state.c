/* The VM state table, every state x operation x (process or not), against an explicit
 * expected table written out by hand (not derived from the code under test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "vm/vm.h"

#define NSTATES 6
#define NOPS 8

static const enum vm_state states[NSTATES] = {
	VM_STATE_STOPPED, VM_STATE_STARTING, VM_STATE_RUNNING,
	VM_STATE_PAUSED,  VM_STATE_STOPPING, VM_STATE_CRASHED,
};
static const enum vm_op_kind ops[NOPS] = {
	VM_OP_START, VM_OP_STOP,   VM_OP_KILL,    VM_OP_REBOOT,
	VM_OP_PAUSE, VM_OP_RESUME, VM_OP_ADD_NIC, VM_OP_REMOVE_NIC,
};

/* allowed[process][state][op], ops in the order above: start stop kill reboot pause resume
 * add-nic remove-nic */
static const bool allowed[2][NSTATES][NOPS] = {
	/* no hypervisor process */
	{
		/* stopped  */ {1, 0, 0, 0, 0, 0, 1, 1},
		/* starting */ {0, 0, 0, 0, 0, 0, 0, 0},
		/* running  */ {0, 0, 0, 0, 0, 0, 0, 0},
		/* paused   */ {0, 0, 0, 0, 0, 0, 0, 0},
		/* stopping */ {0, 0, 0, 0, 0, 0, 0, 0},
		/* crashed  */ {1, 0, 0, 0, 0, 0, 1, 1},
	},
	/* a hypervisor process exists */
	{
		/* stopped  */ {0, 0, 1, 0, 0, 0, 0, 0},
		/* starting */ {0, 0, 1, 0, 0, 0, 0, 0},
		/* running  */ {0, 1, 1, 1, 1, 0, 1, 1},
		/* paused   */ {0, 1, 1, 1, 0, 1, 0, 0},
		/* stopping */ {0, 0, 1, 0, 0, 0, 0, 0},
		/* crashed  */ {0, 0, 1, 0, 0, 0, 0, 0},
	},
};

static void test_every_state_and_operation(void **state)
{
	(void)state;
	for (int p = 0; p < 2; p++)
		for (int s = 0; s < NSTATES; s++)
			for (int o = 0; o < NOPS; o++) {
				bool got = vm_op_allowed(states[s], p, ops[o]);
				if (got != allowed[p][s][o])
					fail_msg("%s a %s VM (%s process): got %s, want %s",
						 vm_op_kind_name(ops[o]), vm_state_name(states[s]),
						 p ? "with" : "no", got ? "allowed" : "refused",
						 allowed[p][s][o] ? "allowed" : "refused");
			}
}

static void test_unknown_values_are_refused(void **state)
{
	(void)state;
	assert_false(vm_op_allowed((enum vm_state)0, false, VM_OP_START));
	assert_false(vm_op_allowed((enum vm_state)42, true, VM_OP_STOP));
	assert_false(vm_op_allowed(VM_STATE_RUNNING, true, (enum vm_op_kind)99));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_state_and_operation),
		cmocka_unit_test(test_unknown_values_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

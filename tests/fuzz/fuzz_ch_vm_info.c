/* Fuzzes the vm.info answer parser (hypervisor/ch_vm.c) with arbitrary bodies, as a broken or
 * hostile hypervisor could send them: the state is one of the enum's, and a known state comes
 * with its name.
 * fuzz-dict: json.dict */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "fuzz.h"
#include "hypervisor/ch_vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = strndup((const char *)data, size);
	if (!body)
		return 0;

	struct ch_vm_info info;
	int r = ch_vm_info_parse(body, &info);
	FUZZ_ASSERT(r == 0 || r == -EBADMSG);
	FUZZ_ASSERT(memchr(info.state_name, '\0', sizeof(info.state_name)));
	FUZZ_ASSERT(info.state >= CH_VM_STATE_UNKNOWN && info.state <= CH_VM_STATE_PAUSED);
	if (r < 0)
		FUZZ_ASSERT(info.state == CH_VM_STATE_UNKNOWN && !info.state_name[0]);
	if (info.state != CH_VM_STATE_UNKNOWN)
		FUZZ_ASSERT(streq(info.state_name, ch_vm_state_name(info.state)));
	free(body);
	return 0;
}

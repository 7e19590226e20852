/* Fuzzes the vm.counters answer parser (hypervisor/ch_vm.c) with arbitrary bodies, as a broken
 * or hostile hypervisor could send them (GetMetrics shows what it returns): only 0, -EBADMSG or
 * -E2BIG come back, at most CH_COUNTERS_MAX counters are handed out, every one with a device
 * and a name that are C strings of the body, and -E2BIG only after the cap was reached.
 * fuzz-dict: json.dict */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "hypervisor/ch_vm.h"

static int each(void *userdata, const char *device, const char *name, uint64_t value)
{
	size_t *n = userdata;

	(void)value;
	FUZZ_ASSERT(device && name);
	/* both are read in full (strlen), so ASan sees any overrun */
	FUZZ_ASSERT(strlen(device) < (1u << 20) && strlen(name) < (1u << 20));
	(*n)++;
	FUZZ_ASSERT(*n <= CH_COUNTERS_MAX);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = strndup((const char *)data, size);
	size_t n = 0;
	int r;

	if (!body)
		return 0;
	r = ch_vm_counters_parse(body, each, &n);
	FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -E2BIG);
	if (r == -E2BIG)
		FUZZ_ASSERT(n == CH_COUNTERS_MAX);
	if (r == -EBADMSG)
		FUZZ_ASSERT(n == 0);
	free(body);
	return 0;
}

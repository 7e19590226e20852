/* mvirt-bench-api: drives one mvirt-vmm from one client and prints call rates and latencies.
 *
 *   mvirt-bench-api TARGET N_VMS KERNEL DISK
 *
 * Creates N_VMS VMs (bench-00000 ...), then times GetVm (by name, spread over all VMs) and
 * ListVms, and deletes the VMs again. Unary calls, one at a time, as a CLI or a script would
 * make them. Used by bench/api, which also measures the daemon's memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "mvirt.pb-c.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *lat, size_t n, double total_ms)
{
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("%-24s %8.0f calls/s   p50 %7.3f ms   p99 %7.3f ms   (%zu calls)\n", what,
	       n / (total_ms / 1e3), lat[n / 2], lat[(n * 99) / 100], n);
}

static int call(struct client *c, const char *method, const ProtobufCMessage *req)
{
	ProtobufCMessage *resp = NULL;
	struct client_status st;
	int r = client_call(c, &mvirt__vm_service__descriptor, method, req, &resp, &st);

	if (r < 0) {
		fprintf(stderr, "mvirt-bench-api: %s: %s\n", method, st.message);
		return r;
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct client *c;
	size_t n_vms, n_get, n_list = 200;
	double *lat, t0, t;
	char name[32];

	if (argc != 5) {
		fprintf(stderr, "usage: %s TARGET N_VMS KERNEL DISK\n", argv[0]);
		return 2;
	}
	n_vms = strtoul(argv[2], NULL, 10);
	n_get = n_vms * 5 > 5000 ? n_vms * 5 : 5000;
	lat = calloc(n_get > n_vms ? n_get : n_vms, sizeof(*lat));
	if (!lat || client_new(argv[1], &c) < 0)
		return 1;

	Mvirt__VmConfig cfg = MVIRT__VM_CONFIG__INIT;
	Mvirt__CreateVmRequest creq = MVIRT__CREATE_VM_REQUEST__INIT;
	cfg.vcpus = 1;
	cfg.memory_mb = 64;
	cfg.kernel = argv[3];
	cfg.disk = argv[4];
	creq.config = &cfg;
	creq.name = name;
	t0 = now_ms();
	for (size_t i = 0; i < n_vms; i++) {
		snprintf(name, sizeof(name), "bench-%05zu", i);
		t = now_ms();
		if (call(c, "CreateVm", &creq.base) < 0)
			return 1;
		lat[i] = now_ms() - t;
	}
	report("CreateVm", lat, n_vms, now_ms() - t0);

	Mvirt__GetVmRequest greq = MVIRT__GET_VM_REQUEST__INIT;
	greq.vm = name;
	t0 = now_ms();
	for (size_t i = 0; i < n_get; i++) {
		snprintf(name, sizeof(name), "bench-%05zu", (i * 7919) % n_vms);
		t = now_ms();
		if (call(c, "GetVm", &greq.base) < 0)
			return 1;
		lat[i] = now_ms() - t;
	}
	report("GetVm", lat, n_get, now_ms() - t0);

	Mvirt__ListVmsRequest lreq = MVIRT__LIST_VMS_REQUEST__INIT;
	char what[64];
	t0 = now_ms();
	for (size_t i = 0; i < n_list; i++) {
		t = now_ms();
		if (call(c, "ListVms", &lreq.base) < 0)
			return 1;
		lat[i] = now_ms() - t;
	}
	snprintf(what, sizeof(what), "ListVms (%zu VMs)", n_vms);
	report(what, lat, n_list, now_ms() - t0);

	/* Let bench/api read the daemon's memory with every VM defined. */
	if (getenv("MVIRT_BENCH_PAUSE")) {
		printf("ready\n");
		fflush(stdout);
		(void)!getchar();
	}

	Mvirt__DeleteVmRequest dreq = MVIRT__DELETE_VM_REQUEST__INIT;
	dreq.vm = name;
	t0 = now_ms();
	for (size_t i = 0; i < n_vms; i++) {
		snprintf(name, sizeof(name), "bench-%05zu", i);
		t = now_ms();
		if (call(c, "DeleteVm", &dreq.base) < 0)
			return 1;
		lat[i] = now_ms() - t;
	}
	report("DeleteVm", lat, n_vms, now_ms() - t0);
	client_free(c);
	free(lat);
	return 0;
}

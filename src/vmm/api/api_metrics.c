/* See api_metrics.h. GetMetrics holds its call while the VM manager gathers every running VM's
 * vm.counters (at most SCRAPE_TIMEOUT_MS, all at once), then renders everything in one go from
 * the loop's state as it is at that moment. Names follow Prometheus' conventions: base units in
 * the name (_seconds, _bytes), _total on counters, a gauge per enum value for states. */
#include "api/api_metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api_context.h"
#include "common/clock.h"
#include "common/macro.h"
#include "mvirt.pb-c.h"
#include "vm/vm.h"

#define SCRAPE_TIMEOUT_MS 1000
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

const uint64_t api_stats_bucket_us[API_STATS_BUCKETS] = {
	250,    500,    1000,   2500,    5000,    10000,   25000,    50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 60000000,
};

int api_stats_init(struct api_stats *s, const struct api_method *const *tables)
{
	size_t n = 0;

	*s = (struct api_stats){.start_us = clock_real_us()};
	for (const struct api_method *const *t = tables; *t; t++)
		for (const struct api_method *m = *t; m->path; m++)
			n++;
	s->methods = calloc(n ? n : 1, sizeof(*s->methods));
	s->m = calloc(n + 1, sizeof(*s->m));
	if (!s->methods || !s->m) {
		api_stats_done(s);
		return -ENOMEM;
	}
	for (const struct api_method *const *t = tables; *t; t++)
		for (const struct api_method *m = *t; m->path; m++)
			s->methods[s->n++] = m;
	return 0;
}

void api_stats_done(struct api_stats *s)
{
	free(s->methods);
	free(s->m);
	*s = (struct api_stats){0};
}

void api_metrics_write_label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '\\':
			fputs("\\\\", f);
			break;
		case '"':
			fputs("\\\"", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{vm="..."} or name{vm="...",key="..."}, without the value. */
static void sample_vm(FILE *f, const char *name, const char *vm, const char *key, const char *value)
{
	fprintf(f, "%s{vm=\"", name);
	api_metrics_write_label_value(f, vm);
	if (key) {
		fprintf(f, "\",%s=\"", key);
		api_metrics_write_label_value(f, value);
	}
	fputs("\"} ", f);
}

static void seconds(FILE *f, uint64_t us)
{
	fprintf(f, "%llu.%06llu", (unsigned long long)(us / 1000000),
		(unsigned long long)(us % 1000000));
}

/* A bucket bound as Go's client writes it (strconv 'g', shortest): "0.00025", "2.5", "60". */
static void bound(FILE *f, uint64_t us)
{
	char buf[32];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%llu.%06llu",
				    (unsigned long long)(us / 1000000),
				    (unsigned long long)(us % 1000000));

	while (n > 0 && buf[n - 1] == '0')
		n--;
	if (n > 0 && buf[n - 1] == '.')
		n--;
	fwrite(buf, 1, n, f);
}

static const char *const code_names[API_STATS_CODES] = {
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
};

/* service="mvirt.VmService",method="GetVm" of "/mvirt.VmService/GetVm". */
static void method_labels(FILE *f, const struct api_stats *s, size_t i)
{
	const char *path, *slash;

	if (i >= s->n) {
		fputs("service=\"\",method=\"unknown\"", f);
		return;
	}
	path = s->methods[i]->path + (s->methods[i]->path[0] == '/');
	slash = strrchr(path, '/');
	fputs("service=\"", f);
	if (slash) {
		fwrite(path, 1, (size_t)(slash - path), f);
		path = slash + 1;
	}
	fputs("\",method=\"", f);
	api_metrics_write_label_value(f, path);
	fputc('"', f);
}

static void render_api(FILE *f, const struct api_stats *s)
{
	family(f, "mvirt_api_calls_total", "counter",
	       "API calls ended, by method and gRPC status code (streams included).");
	for (size_t i = 0; i <= s->n; i++)
		for (size_t c = 0; c < API_STATS_CODES; c++) {
			if (!s->m[i].calls[c])
				continue;
			fputs("mvirt_api_calls_total{", f);
			method_labels(f, s, i);
			fprintf(f, ",code=\"%s\"} %llu\n", code_names[c],
				(unsigned long long)s->m[i].calls[c]);
		}
	family(f, "mvirt_api_call_duration_seconds", "histogram",
	       "Time from a unary call's arrival to its answer.");
	for (size_t i = 0; i <= s->n; i++) {
		const struct api_method_stats *m = &s->m[i];
		uint64_t cum = 0;

		if (!m->count)
			continue;
		for (size_t b = 0; b < API_STATS_BUCKETS; b++) {
			cum += m->bucket[b];
			fputs("mvirt_api_call_duration_seconds_bucket{", f);
			method_labels(f, s, i);
			fputs(",le=\"", f);
			bound(f, api_stats_bucket_us[b]);
			fprintf(f, "\"} %llu\n", (unsigned long long)cum);
		}
		fputs("mvirt_api_call_duration_seconds_bucket{", f);
		method_labels(f, s, i);
		fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)m->count);
		fputs("mvirt_api_call_duration_seconds_sum{", f);
		method_labels(f, s, i);
		fputs("} ", f);
		seconds(f, m->sum_us);
		fputs("\nmvirt_api_call_duration_seconds_count{", f);
		method_labels(f, s, i);
		fprintf(f, "} %llu\n", (unsigned long long)m->count);
	}
}

static bool vm_active(const struct vm_record *rec)
{
	return rec->state == VM_STATE_RUNNING || rec->state == VM_STATE_PAUSED ||
	       rec->state == VM_STATE_STOPPING;
}

static void render_vms(FILE *f, struct vm_manager *vms)
{
	static const enum vm_state states[] = {VM_STATE_STOPPED,  VM_STATE_STARTING,
					       VM_STATE_RUNNING,  VM_STATE_PAUSED,
					       VM_STATE_STOPPING, VM_STATE_CRASHED};
	size_t n = vm_manager_count(vms);
	int64_t now = clock_real_us();

	family(f, "mvirt_vms", "gauge", "VMs defined.");
	fprintf(f, "mvirt_vms %zu\n", n);
	family(f, "mvirt_vm_info", "gauge", "1 for every VM defined, with its id.");
	for (size_t i = 0; i < n; i++) {
		const struct vm_record *r = vm_manager_at(vms, i);
		sample_vm(f, "mvirt_vm_info", r->name, "id", r->id);
		fputs("1\n", f);
	}
	family(f, "mvirt_vm_state", "gauge",
	       "The VM's state: 1 for the state it is in, 0 for the others.");
	for (size_t i = 0; i < n; i++) {
		const struct vm_record *r = vm_manager_at(vms, i);
		for (size_t k = 0; k < ELEMENTSOF(states); k++) {
			sample_vm(f, "mvirt_vm_state", r->name, "state", vm_state_name(states[k]));
			fputs(r->state == states[k] ? "1\n" : "0\n", f);
		}
	}
	family(f, "mvirt_vm_vcpus", "gauge", "vCPUs the VM is configured with.");
	for (size_t i = 0; i < n; i++) {
		const struct vm_record *r = vm_manager_at(vms, i);
		sample_vm(f, "mvirt_vm_vcpus", r->name, NULL, NULL);
		fprintf(f, "%u\n", (unsigned)r->config.vcpus);
	}
	family(f, "mvirt_vm_memory_bytes", "gauge", "Memory the VM is configured with.");
	for (size_t i = 0; i < n; i++) {
		const struct vm_record *r = vm_manager_at(vms, i);
		sample_vm(f, "mvirt_vm_memory_bytes", r->name, NULL, NULL);
		fprintf(f, "%llu\n", (unsigned long long)r->config.memory_mb * 1024 * 1024);
	}
	family(f, "mvirt_vm_start_time_seconds", "gauge",
	       "When the running VM was started, seconds since the epoch.");
	for (size_t i = 0; i < n; i++) {
		const struct vm_record *r = vm_manager_at(vms, i);
		if (!vm_active(r) || r->started_at_us <= 0)
			continue;
		sample_vm(f, "mvirt_vm_start_time_seconds", r->name, NULL, NULL);
		seconds(f, (uint64_t)r->started_at_us);
		fputc('\n', f);
	}
	family(f, "mvirt_vm_uptime_seconds", "gauge", "How long the running VM has been up.");
	for (size_t i = 0; i < n; i++) {
		const struct vm_record *r = vm_manager_at(vms, i);
		if (!vm_active(r) || r->started_at_us <= 0)
			continue;
		sample_vm(f, "mvirt_vm_uptime_seconds", r->name, NULL, NULL);
		seconds(f, now > r->started_at_us ? (uint64_t)(now - r->started_at_us) : 0);
		fputc('\n', f);
	}
}

/* cloud-hypervisor's counter names (virtio-block, virtio-net) and the metrics they become. */
static const struct {
	const char *counter, *metric, *help;
} device_counters[] = {
	{"read_bytes", "mvirt_vm_disk_read_bytes_total", "Bytes the guest read from the disk."},
	{"write_bytes", "mvirt_vm_disk_written_bytes_total", "Bytes the guest wrote to the disk."},
	{"read_ops", "mvirt_vm_disk_reads_total", "Read requests the disk completed."},
	{"write_ops", "mvirt_vm_disk_writes_total", "Write requests the disk completed."},
	{"rx_bytes", "mvirt_vm_network_receive_bytes_total",
	 "Bytes the NIC delivered to the guest."},
	{"tx_bytes", "mvirt_vm_network_transmit_bytes_total", "Bytes the guest sent on the NIC."},
	{"rx_frames", "mvirt_vm_network_receive_packets_total",
	 "Frames the NIC delivered to the guest."},
	{"tx_frames", "mvirt_vm_network_transmit_packets_total",
	 "Frames the guest sent on the NIC."},
};

static void render_counters(FILE *f, const struct vm_counters *vms, size_t n)
{
	family(f, "mvirt_vm_counters_up", "gauge",
	       "1 if the running VM's hypervisor answered vm.counters for this scrape, 0 if not "
	       "(its device counters are then missing).");
	for (size_t i = 0; i < n; i++) {
		sample_vm(f, "mvirt_vm_counters_up", vms[i].vm, NULL, NULL);
		fputs(vms[i].up ? "1\n" : "0\n", f);
	}
	for (size_t k = 0; k < ELEMENTSOF(device_counters); k++) {
		family(f, device_counters[k].metric, "counter", device_counters[k].help);
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < vms[i].n; j++) {
				const struct vm_device_counter *d = &vms[i].v[j];
				if (!streq(d->name, device_counters[k].counter))
					continue;
				sample_vm(f, device_counters[k].metric, vms[i].vm, "device",
					  d->device);
				fprintf(f, "%llu\n", (unsigned long long)d->value);
			}
	}
}

static void render_daemon(FILE *f, const struct api_context *ctx, const struct api_stats *s)
{
	uint64_t size = 0;
	char wal[4096];
	struct stat st;

	family(f, "mvirt_up", "gauge",
	       "1: mvirt-vmm answered (an exporter that cannot reach it says 0).");
	fputs("mvirt_up 1\n", f);
	family(f, "mvirt_build_info", "gauge", "1, labelled with mvirt-vmm's version.");
	fputs("mvirt_build_info{version=\"", f);
	api_metrics_write_label_value(f, MVIRT_VERSION);
	fputs("\"} 1\n", f);
	family(f, "mvirt_start_time_seconds", "gauge",
	       "When mvirt-vmm started serving, seconds since the epoch.");
	fputs("mvirt_start_time_seconds ", f);
	seconds(f, s->start_us > 0 ? (uint64_t)s->start_us : 0);
	fputc('\n', f);
	if (!ctx->store_path)
		return;
	if (stat(ctx->store_path, &st) == 0)
		size += (uint64_t)st.st_size;
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", ctx->store_path) < sizeof(wal) &&
	    stat(wal, &st) == 0)
		size += (uint64_t)st.st_size;
	family(f, "mvirt_store_size_bytes", "gauge",
	       "Size of the state database on disk (mvirt.db and its write-ahead log).");
	fprintf(f, "mvirt_store_size_bytes %llu\n", (unsigned long long)size);
}

static void on_counters(void *userdata, const struct vm_counters *vms, size_t n)
{
	struct api_call *call = userdata;
	struct api_context *ctx = api_context_of(call);
	Mvirt__GetMetricsResponse resp = MVIRT__GET_METRICS_RESPONSE__INIT;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	render_daemon(f, ctx, api_call_stats(call));
	render_vms(f, ctx->vms);
	render_counters(f, vms, n);
	render_api(f, api_call_stats(call));
	if (fclose(f) != 0 || !text) {
		free(text);
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	resp.text = text;
	resp.content_type = (char *)CONTENT_TYPE;
	api_call_reply(call, &resp.base);
	free(text);
}

static void handle_get_metrics(struct api_call *call, const ProtobufCMessage *msg)
{
	int r;

	(void)msg;
	r = vm_manager_collect_counters(api_context_of(call)->vms, SCRAPE_TIMEOUT_MS, on_counters,
					call);
	if (r < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "cannot gather the VMs' counters: %s",
			      strerror(-r));
		return;
	}
	api_call_hold(call);
}

const struct api_method api_metrics_methods[] = {
	API_UNARY("/mvirt.VmService/GetMetrics", mvirt__get_metrics_request, handle_get_metrics),
	{.path = NULL},
};

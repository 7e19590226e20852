/* The daemon's metrics: the per-method call statistics the API server records (api.c calls
 * api_stats_record once per call, on the loop, without allocating), and GetMetrics, which
 * renders them with the VMs' state and cloud-hypervisor's device counters in the Prometheus
 * text exposition format, version 0.0.4. */
#pragma once

#include <grpc/status.h>
#include <stdint.h>
#include <stdio.h>

#include "api/api.h"

#define API_STATS_CODES 17 /* gRPC status codes OK (0) .. UNAUTHENTICATED (16) */
#define API_STATS_BUCKETS 16
/* Upper bounds of the duration histogram's buckets, in microseconds: 250 µs (a GetVm) to 60 s
 * (a StopVm that waits for its guest). */
extern const uint64_t api_stats_bucket_us[API_STATS_BUCKETS];

struct api_method_stats {
	uint64_t calls[API_STATS_CODES]; /* ended calls by status (streams included) */
	/* unary calls only (a stream's duration is how long a client watched): by bucket, not
	 * cumulative; a call over the last bound is only in count */
	uint64_t bucket[API_STATS_BUCKETS];
	uint64_t count;
	uint64_t sum_us;
};

struct api_stats {
	size_t n;                          /* methods served, in the tables' order */
	const struct api_method **methods; /* n */
	struct api_method_stats *m; /* n + 1: the last one counts calls of unserved methods */
	int64_t start_us;           /* CLOCK_REALTIME when the server started */
};

/* Lists the methods of the NULL-terminated tables (api_server_new's). 0 or -ENOMEM. */
int api_stats_init(struct api_stats *s, const struct api_method *const *tables);
void api_stats_done(struct api_stats *s);
/* Counts one ended call of method index i (n: a method not served); unary: with its duration. */
static inline void api_stats_record(struct api_stats *s, size_t i, bool unary,
				    grpc_status_code code, uint64_t duration_us)
{
	struct api_method_stats *m = &s->m[i <= s->n ? i : s->n];
	size_t b = 0;

	m->calls[(unsigned)code < API_STATS_CODES ? (unsigned)code : GRPC_STATUS_UNKNOWN]++;
	if (!unary)
		return;
	while (b < API_STATS_BUCKETS && duration_us > api_stats_bucket_us[b])
		b++;
	if (b < API_STATS_BUCKETS)
		m->bucket[b]++;
	m->count++;
	m->sum_us += duration_us;
}

/* Writes s as a label value of the text format: backslash, double quote and newline escaped
 * (\\, \", \n), everything else as it is. */
void api_metrics_write_label_value(FILE *f, const char *s);

/* GetMetrics; userdata of the API server must be a struct api_context. */
extern const struct api_method api_metrics_methods[];

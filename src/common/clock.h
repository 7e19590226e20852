/* The clocks mvirt reads, in microseconds. Header-only. */
#pragma once

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC: for durations and deadlines. */
static inline uint64_t clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* CLOCK_REALTIME: for timestamps shown to users and stored (created_at_us, event times). */
static inline int64_t clock_real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

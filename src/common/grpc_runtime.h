/* What gRPC core's runtime does that mvirt does not want, turned off before grpc_init() by the
 * daemon and the CLI alike.
 *
 * gRPC core is C++ on abseil, and Debian builds abseil without NDEBUG, which leaves abseil's
 * mutex deadlock detection on: every absl::Mutex that gRPC creates (several per connection,
 * call and timer) gets a node in a global lock-order graph, and every Lock() walks it under a
 * global lock. The graph lives in an arena that never gives memory back: 1,000 connections
 * leave 2.5 MB behind for good (bench/connections), and each lock pays for the bookkeeping.
 * Release builds of abseil (NDEBUG) have it off; so does this. The one C++ file of mvirt,
 * because the switch is a C++ function (absl::SetMutexDeadlockDetectionMode). */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

void grpc_runtime_tune(void);

#ifdef __cplusplus
}
#endif

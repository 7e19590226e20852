// See grpc_runtime.h.
#include "common/grpc_runtime.h"

#include <absl/synchronization/mutex.h>

void grpc_runtime_tune(void)
{
	absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

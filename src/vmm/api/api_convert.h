/* Conversion between the protobuf-c messages of proto/mvirt.proto and the plain structs of
 * vmdef.h. The only place besides api*.c and reflection.c that knows protobuf-c types.
 *
 * from_pb functions copy into newly allocated members (free with vmdef_*_done); to_pb functions
 * build a message tree whose every pointer is allocated here and freed with
 * api_convert_vm_pb_done() — no pointers into the source are kept, so the source may change or
 * go away afterwards. */
#pragma once

#include "model/vmdef.h"
#include "mvirt.pb-c.h"
#include "network/dnsmasq.h"

/* DHCP leases (network_leases_all): where the addresses of VM NICs come from. */
struct api_leases {
	const struct dnsmasq_lease *v;
	size_t n;
};

/* -ENOMEM only: unknown enum values are copied as they are (validation rejects them). */
int api_convert_config_from_pb(const Mvirt__VmConfig *pb, struct vm_config *ret);

/* A CLOCK_REALTIME instant in microseconds as a Timestamp. Nanos count forward from seconds,
 * so they are never negative, also before the epoch (-1 us is seconds -1, nanos 999999000). */
void api_convert_timestamp(int64_t us, Google__Protobuf__Timestamp *ts);

/* Fills *ret (initialized here) from r; the NICs of a running VM get the addresses leases
 * (may be NULL) hold for their MACs. -ENOMEM on allocation failure (*ret then empty). */
int api_convert_vm_to_pb(const struct vm_record *r, const struct api_leases *leases,
			 Mvirt__Vm *ret);
/* Frees what api_convert_vm_to_pb allocated inside vm (not vm itself). */
void api_convert_vm_pb_done(Mvirt__Vm *vm);

/* Builds the VmConfig JSON document that cloud-hypervisor's `vm.create` takes, from mvirt's
 * plain vm_config plus the per-VM runtime paths. One small function per section (cpus, memory,
 * payload, disks, net, serial, console), as libvirt's ch driver does. Pure: no I/O except
 * what the caller resolved beforehand (disk formats). Silent. */
#pragma once

#include <stdbool.h>

#include "common/err.h"
#include "model/vmdef.h"

struct ch_disk {
	const char *path;
	enum disk_format format; /* RAW or QCOW2, resolved by the caller (never UNSPECIFIED) */
	bool readonly;
	bool backing_files; /* QCOW2 only: cloud-hypervisor may open the backing file */
};

struct ch_launch {
	const struct vm_config *config;
	/* All disks in order: the `disk` shorthand first, then config->disks, then extra ones
	 * (e.g. a cloud-init seed). */
	const struct ch_disk *disks;
	size_t n_disks;
	const char *serial_socket; /* serial in Socket mode at this path */
	/* Opened in place of config's kernel, initramfs and firmware when set (and the config
	 * names them): e.g. /proc/self/fd/N for a file the manager opened and passed. */
	const char *kernel, *initramfs, *firmware;
};

/* Returns the JSON text in *ret (caller frees). -EINVAL with a message for what
 * cloud-hypervisor cannot express. NICs on mvirt networks are left out (see
 * ch_config_net_json). Memory is in
 * bytes, both boot_vcpus and max_vcpus are set, console is Off, serial is Socket, every disk
 * has an explicit image_type, qcow2 disks with backing_files set get backing_files true,
 * pvpanic is on (guest panic events). */
int ch_config_json(const struct ch_launch *launch, char **ret, struct mv_error *err);

/* The NetConfig of a NIC for vm.add-net: {"id": vm_nic_device_id(mac), "mac": ...}, and
 * "tap" for a NIC on a tap of the user's (one on an mvirt network comes with its tap fd; one
 * fd is one queue pair, cloud-hypervisor's default). The id lets vm.remove-device find it. */
int ch_config_net_json(const struct vm_nic *nic, char **ret);

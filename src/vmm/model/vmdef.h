/* The plain data model of a VM, shared by the VM manager, the state store, validation and the
 * API conversion layer. No foreign types here: protobuf-c structs stay in the API layer,
 * sqlite3 in the store.
 *
 * Ownership: every char * in these structs is owned by the struct (heap, or NULL for "unset");
 * vmdef_*_done() frees the members, vmdef_*_copy() deep-copies. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_NAME_MAX 63
#define VM_ID_LEN 36 /* UUID text, without NUL */

enum vm_state {
	VM_STATE_STOPPED = 1, /* values match mvirt.VmState */
	VM_STATE_STARTING = 2,
	VM_STATE_RUNNING = 3,
	VM_STATE_PAUSED = 4,
	VM_STATE_STOPPING = 5,
	VM_STATE_CRASHED = 6,
};

enum disk_format {
	DISK_FORMAT_UNSPECIFIED = 0, /* values match mvirt.DiskFormat */
	DISK_FORMAT_RAW = 1,
	DISK_FORMAT_QCOW2 = 2,
};

struct vm_disk {
	char *path; /* exactly one of path and volume */
	bool readonly;
	enum disk_format format;
	char *volume; /* a storage-manager volume, by name */
};

struct vm_nic {
	char *tap;
	char *network;
	char *mac;
};

struct vm_config {
	uint32_t vcpus;
	uint64_t memory_mb;
	char *kernel;
	char *initramfs;
	char *cmdline;
	char *firmware;
	char *disk;
	struct vm_disk *disks;
	size_t n_disks;
	struct vm_nic *nics;
	size_t n_nics;
	char *user_data; /* cloud-init NoCloud seed: user-data, meta-data, network-config */
	char *meta_data;
	char *network_config;
	/* The paths that were reached without any symbolic link when the VM was created
	 * (VM_PLAIN_*): they must still be at every start, so that a file swapped for a symlink
	 * (to /etc/shadow, say) is never handed to the hypervisor. Kept by the daemon, not sent
	 * by clients. */
	uint32_t plain_paths;
	bool autostart;           /* start after a host boot (vm_autostart.c) */
	uint32_t autostart_order; /* ascending, then by name */
	/* +1 at every change of the config (UpdateVm, NIC hotplug), 1 at create: Vm.config_version,
	 * for UpdateVm's optimistic concurrency. Kept by the daemon. */
	uint64_t version;
};

/* The members of a vm_config a client sets, as bits (UpdateVm's update_mask). */
enum vm_config_field {
	VM_FIELD_VCPUS = 1u << 0,
	VM_FIELD_MEMORY_MB = 1u << 1,
	VM_FIELD_KERNEL = 1u << 2,
	VM_FIELD_INITRAMFS = 1u << 3,
	VM_FIELD_CMDLINE = 1u << 4,
	VM_FIELD_FIRMWARE = 1u << 5,
	VM_FIELD_DISK = 1u << 6,
	VM_FIELD_DISKS = 1u << 7,
	VM_FIELD_NICS = 1u << 8,
	VM_FIELD_USER_DATA = 1u << 9,
	VM_FIELD_META_DATA = 1u << 10,
	VM_FIELD_NETWORK_CONFIG = 1u << 11,
	VM_FIELD_AUTOSTART = 1u << 12,
	VM_FIELD_AUTOSTART_ORDER = 1u << 13,
	VM_FIELD_ALL = (1u << 14) - 1,
};

/* The bit of the member named as in mvirt.VmConfig ("memory_mb"), or 0 when there is none. */
uint32_t vmdef_config_field_from_name(const char *name);
/* Moves the members of src that fields names into dst (their old values into src). */
void vmdef_config_swap_fields(struct vm_config *dst, struct vm_config *src, uint32_t fields);

#define VM_PLAIN_KERNEL (1u << 0)
#define VM_PLAIN_INITRAMFS (1u << 1)
#define VM_PLAIN_FIRMWARE (1u << 2)
#define VM_PLAIN_DISK (1u << 3)
#define VM_PLAIN_DISKS(i) (1u << (4 + (i))) /* i < 28 */

/* The hypervisor process of a running VM, as identified across daemon restarts: pid plus
 * its start time (clock ticks after boot) plus the boot id. pid 0: no process. */
struct vm_process {
	int32_t pid;
	uint64_t starttime;
	char boot_id[37];
};

/* A VM as stored and as returned by the API. Timestamps are microseconds since the epoch;
 * started_at_us is 0 when the VM was never started. */
struct vm_record {
	char id[VM_ID_LEN + 1];
	char *name;
	enum vm_state state;
	char *state_reason;
	struct vm_config config;
	int64_t created_at_us;
	int64_t started_at_us;
	struct vm_process process;
};

/* Names derived from a NIC's MAC address, which is unique among the VMs and stays with the NIC
 * while others come and go (hotplug), also across daemon restarts. buf: at least 16 bytes.
 * The tap the daemon makes for a NIC on an mvirt network: "mv" + the 12 hex digits of mac
 * (14 characters). */
const char *vm_nic_tap_name(const char *mac, char *buf);
/* The NIC's device id in cloud-hypervisor (vm.add-net, vm.remove-device): "net" + the 12 hex
 * digits of mac (15 characters). */
const char *vm_nic_device_id(const char *mac, char *buf);
const char *vm_state_name(enum vm_state state);        /* "running"; "unknown" if out of range */
const char *disk_format_name(enum disk_format format); /* "raw", "qcow2", "unspecified" */
int disk_format_from_name(const char *name, enum disk_format *ret); /* 0 or -EINVAL */

void vmdef_config_done(struct vm_config *c);
void vmdef_record_done(struct vm_record *r);
void vmdef_record_free(struct vm_record *r);

/* Deep copies; return 0 or -ENOMEM (dst is left zeroed on failure). */
int vmdef_config_copy(struct vm_config *dst, const struct vm_config *src);
int vmdef_record_copy(struct vm_record *dst, const struct vm_record *src);

/* True when both describe the same thing, member by member (NULL and "" are equal).
 * vmdef_config_same_settings ignores what the daemon keeps (plain_paths, version) and, with
 * autostart false, the autostart members too: does a change touch what the VM runs? */
bool vmdef_config_equal(const struct vm_config *a, const struct vm_config *b);
bool vmdef_config_same_settings(const struct vm_config *a, const struct vm_config *b,
				bool autostart);
bool vmdef_record_equal(const struct vm_record *a, const struct vm_record *b);

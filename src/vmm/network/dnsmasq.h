/* DHCP and DNS of one managed network: a dnsmasq process (Debian's dnsmasq-base) supervised
 * like the hypervisors (os/proc.h): it outlives the daemon, is re-adopted at the next start by
 * pid + start time + boot id, and is started again, with a growing delay, when it dies.
 *
 * Files: <rundir> (the network's runtime directory, 0755: dnsmasq reads the hosts file after it
 * has dropped to user nobody) holds dnsmasq.conf, hosts (dhcp-hostsfile: "MAC,name" per VM
 * NIC, so that a VM's lease carries its name and the name resolves in the network's domain) and
 * dnsmasq.proc (the process identity); <statedir> (0700) holds leases (opened by dnsmasq as
 * root before it drops privileges) and dnsmasq.log. A VM's MAC keeps its address across
 * restarts through the lease file.
 *
 * dnsmasq runs with --keep-in-foreground, so the pid spawned is dnsmasq's; it binds to the
 * bridge only (bind-interfaces), answers names of the domain itself (local=/domain/) and, on
 * isolated networks, forwards nothing (no-resolv). Runs on the loop; silent but for the log
 * lines of supervision (start, restart, exit). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/err.h"
#include "model/netdef.h"

struct dnsmasq_params {
	sd_event *event;
	const char *binary; /* absolute path of dnsmasq */
	const char *name;   /* the network's, for log lines */
	const char *rundir;
	const char *statedir;
	const char *bridge;
	const char *domain;
	const struct net_plan *plan;
	bool isolated; /* no upstream DNS */
};

struct dnsmasq_host {
	const char *mac;
	const char *name;
};

struct dnsmasq_lease {
	int64_t expires; /* seconds since the epoch; 0: never */
	char mac[18];
	char address[46];
	char hostname[64];
};

struct dnsmasq;

/* Writes the config and adopts the process of a previous daemon when it still runs with the
 * same config, else (re)starts it. The strings of p are copied. */
int dnsmasq_new(const struct dnsmasq_params *p, struct dnsmasq **ret, struct mv_error *err);
/* Stops watching; the process keeps running (a daemon restart re-adopts it). NULL-safe. */
void dnsmasq_free(struct dnsmasq *d);
/* Stops the process (SIGTERM), removes its files (leases included) and frees d. NULL-safe. */
void dnsmasq_destroy(struct dnsmasq *d);

/* Rewrites the hosts file with hosts and has dnsmasq re-read it (SIGHUP) if it changed. */
int dnsmasq_set_hosts(struct dnsmasq *d, const struct dnsmasq_host *hosts, size_t n);
/* The leases in the lease file of d, newest dnsmasq view (caller frees *ret). */
int dnsmasq_leases(const struct dnsmasq *d, struct dnsmasq_lease **ret, size_t *ret_n);
/* Pure: parses dnsmasq's lease file format ("EXPIRY MAC IP HOSTNAME CLIENTID" lines; '*' for
 * no hostname; "duid ..." lines of DHCPv6 are skipped). */
int dnsmasq_leases_parse(const char *text, struct dnsmasq_lease **ret, size_t *ret_n);
/* The pid of the running process, 0 when none. */
int dnsmasq_pid(const struct dnsmasq *d);

/* Kills dnsmasq processes whose --conf-file lies under dir (a crash between spawning one and
 * recording it) except those in keep. Returns how many were killed. */
int dnsmasq_kill_strays(const char *dir, const int *keep, size_t n_keep);

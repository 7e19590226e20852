/* See dnsmasq.h. */
#include "network/dnsmasq.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/macro.h"
#include "os/proc.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define RESTART_DELAY_MIN_USEC (1 * USEC_PER_SEC)
#define RESTART_DELAY_MAX_USEC (30 * USEC_PER_SEC)
#define STABLE_USEC (60 * USEC_PER_SEC) /* up this long: the next death restarts at once */
#define CONF_MAX 8192
#define LEASES_MAX (1024 * 1024)
#define MIN(a, b) ((a) < (b) ? (a) : (b))

struct dnsmasq {
	sd_event *event;
	char *binary, *name, *rundir, *statedir;
	char *conf_path, *conf_arg, *proc_path, *hosts_path, *leases_path, *log_path;
	struct proc *proc;
	sd_event_source *restart_timer;
	uint64_t delay_usec, started_mono;
};

static char *path_in(const char *dir, const char *file)
{
	char *p;

	return asprintf(&p, "%s/%s", dir, file) < 0 ? NULL : p;
}

void dnsmasq_free(struct dnsmasq *d)
{
	if (!d)
		return;
	proc_free(d->proc);
	sd_event_source_disable_unref(d->restart_timer);
	sd_event_unref(d->event);
	free(d->binary);
	free(d->name);
	free(d->rundir);
	free(d->statedir);
	free(d->conf_path);
	free(d->conf_arg);
	free(d->proc_path);
	free(d->hosts_path);
	free(d->leases_path);
	free(d->log_path);
	free(d);
}

void dnsmasq_destroy(struct dnsmasq *d)
{
	if (!d)
		return;
	if (d->proc && proc_signal(d->proc, SIGTERM) >= 0)
		log_info("network %s: stopped dnsmasq (pid %d)", d->name,
			 (int)proc_get_id(d->proc)->pid);
	remove_dir_files(d->rundir);
	remove_dir_files(d->statedir);
	dnsmasq_free(d);
}

int dnsmasq_pid(const struct dnsmasq *d)
{
	return d && d->proc ? (int)proc_get_id(d->proc)->pid : 0;
}

static char *conf_text(const struct dnsmasq *d, const struct dnsmasq_params *p)
{
	const struct net_plan *pl = p->plan;
	char gw[16], start[16], end[16], mask[16], v6[64] = "";
	char *text;

	if (pl->has_ipv6) {
		char a[48] = "";

		inet_ntop(AF_INET6, pl->ipv6.addr, a, sizeof(a));
		snprintf(v6, sizeof(v6), "dhcp-range=%s,ra-stateless,%u,12h\nenable-ra\n", a,
			 (unsigned)pl->ipv6.prefix);
	}
	if (asprintf(&text,
		     "# written by mvirt-vmm for network %s; rewritten at every start\n"
		     "keep-in-foreground\n"
		     "log-facility=-\n"
		     "pid-file=\n"
		     "user=nobody\n"
		     "no-hosts\n"
		     "bind-interfaces\n"
		     "interface=%s\n"
		     "except-interface=lo\n"
		     "listen-address=%s\n"
		     "dhcp-range=%s,%s,%s,12h\n"
		     "dhcp-option=option:router,%s\n"
		     "dhcp-authoritative\n"
		     "dhcp-leasefile=%s\n"
		     "dhcp-hostsfile=%s\n"
		     "domain=%s\n"
		     "local=/%s/\n"
		     "expand-hosts\n"
		     "domain-needed\n"
		     "bogus-priv\n"
		     "%s%s",
		     p->name, p->bridge, net_ipv4_format(pl->gateway, gw),
		     net_ipv4_format(pl->dhcp_start, start), net_ipv4_format(pl->dhcp_end, end),
		     net_ipv4_format(net_ipv4_mask(pl->subnet.prefix), mask), gw, d->leases_path,
		     d->hosts_path, p->domain, p->domain, p->isolated ? "no-resolv\n" : "", v6) < 0)
		return NULL;
	return text;
}

static int write_proc_file(struct dnsmasq *d)
{
	const struct proc_id *id = proc_get_id(d->proc);
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "%d %llu %s\n", (int)id->pid,
			 (unsigned long long)id->starttime, id->boot_id);

	return write_file_atomic(d->proc_path, buf, (size_t)n, 0644);
}

static void on_exit_fn(void *userdata, const struct proc_exit *e);

static int spawn(struct dnsmasq *d, struct mv_error *err)
{
	char *argv[] = {d->binary, d->conf_arg, NULL};
	struct proc_spec spec = {.path = d->binary, .argv = argv, .log_fd = -1};
	int r;

	spec.log_fd =
		open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	r = proc_spawn(d->event, &spec, on_exit_fn, d, &d->proc, err);
	if (spec.log_fd >= 0)
		close(spec.log_fd);
	if (r < 0)
		return mv_err_prefix(err, "network %s: cannot start dnsmasq: ", d->name), r;
	d->started_mono = clock_mono_us();
	if ((r = write_proc_file(d)) < 0)
		log_warning_errno(r, "network %s: cannot record dnsmasq's pid in %s: %m", d->name,
				  d->proc_path);
	log_info("network %s: dnsmasq started (pid %d)", d->name, dnsmasq_pid(d));
	return 0;
}

static int on_restart(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
	struct dnsmasq *d = userdata;
	struct mv_error err = {0};

	d->restart_timer = sd_event_source_disable_unref(d->restart_timer);
	if (spawn(d, &err) < 0) {
		log_error("%s", err.msg);
		d->delay_usec = MIN(d->delay_usec * 2, RESTART_DELAY_MAX_USEC);
		(void)sd_event_add_time_relative(d->event, &d->restart_timer, CLOCK_MONOTONIC,
						 d->delay_usec, 0, on_restart, d);
	}
	return 0;
}

static void on_exit_fn(void *userdata, const struct proc_exit *e)
{
	struct dnsmasq *d = userdata;
	char what[96];

	proc_exit_describe(e, what, sizeof(what));
	proc_free(d->proc);
	d->proc = NULL;
	(void)unlink(d->proc_path);
	if (clock_mono_us() - d->started_mono >= STABLE_USEC || d->delay_usec == 0)
		d->delay_usec = RESTART_DELAY_MIN_USEC;
	else
		d->delay_usec = MIN(d->delay_usec * 2, RESTART_DELAY_MAX_USEC);
	log_warning("network %s: dnsmasq %s; starting it again in %.1f s (log: %s)", d->name, what,
		    (double)d->delay_usec / USEC_PER_SEC, d->log_path);
	if (sd_event_add_time_relative(d->event, &d->restart_timer, CLOCK_MONOTONIC, d->delay_usec,
				       0, on_restart, d) < 0)
		log_error("network %s: cannot schedule dnsmasq's restart", d->name);
}

/* The process a previous daemon recorded, when it is still dnsmasq with this config. */
static void adopt(struct dnsmasq *d, bool conf_changed)
{
	_cleanup_free_ char *text = NULL;
	struct proc_id id = {0};
	unsigned long long st;

	if (read_file(d->proc_path, 256, &text) < 0)
		return;
	if (sscanf(text, "%d %llu %36s", &id.pid, &st, id.boot_id) != 3 || id.pid <= 0)
		return;
	id.starttime = st;
	if (proc_adopt(d->event, &id, on_exit_fn, d, &d->proc) < 0)
		return;
	if (conf_changed) {
		log_info("network %s: restarting dnsmasq (pid %d) for its new config", d->name,
			 (int)id.pid);
		(void)proc_signal(d->proc, SIGTERM);
		proc_free(d->proc);
		d->proc = NULL;
		return;
	}
	d->started_mono = clock_mono_us();
	log_info("network %s: re-adopted dnsmasq (pid %d)", d->name, (int)id.pid);
}

int dnsmasq_new(const struct dnsmasq_params *p, struct dnsmasq **ret, struct mv_error *err)
{
	_cleanup_free_ char *conf = NULL, *old = NULL;
	struct dnsmasq *d = calloc(1, sizeof(*d));
	bool changed;
	int r;

	if (!d)
		return mv_err_oom(err);
	d->event = sd_event_ref(p->event);
	if (!(d->binary = strdup(p->binary)) || !(d->name = strdup(p->name)) ||
	    !(d->rundir = strdup(p->rundir)) || !(d->statedir = strdup(p->statedir)) ||
	    !(d->conf_path = path_in(p->rundir, "dnsmasq.conf")) ||
	    !(d->proc_path = path_in(p->rundir, "dnsmasq.proc")) ||
	    !(d->hosts_path = path_in(p->rundir, "hosts")) ||
	    !(d->leases_path = path_in(p->statedir, "leases")) ||
	    !(d->log_path = path_in(p->statedir, "dnsmasq.log")) ||
	    asprintf(&d->conf_arg, "--conf-file=%s", d->conf_path) < 0 ||
	    !(conf = conf_text(d, p))) {
		dnsmasq_free(d);
		return mv_err_oom(err);
	}
	if ((r = mkdir_parents(p->rundir, 0755)) < 0 ||
	    (r = mkdir_parents(p->statedir, 0700)) < 0) {
		mv_err_internal(err, r, "network %s: cannot create %s or %s: %m", p->name,
				p->rundir, p->statedir);
		dnsmasq_free(d);
		return r;
	}
	/* Readable by dnsmasq after it has become nobody. */
	(void)chmod(p->rundir, 0755);
	changed = read_file(d->conf_path, CONF_MAX, &old) < 0 || !streq(old, conf);
	if ((changed && (r = write_file_atomic(d->conf_path, conf, strlen(conf), 0644)) < 0) ||
	    (access(d->hosts_path, F_OK) < 0 &&
	     (r = write_file_atomic(d->hosts_path, "", 0, 0644)) < 0)) {
		mv_err_internal(err, r, "network %s: cannot write %s: %m", p->name, p->rundir);
		dnsmasq_free(d);
		return r;
	}
	adopt(d, changed);
	if (!d->proc && (r = spawn(d, err)) < 0) {
		dnsmasq_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

int dnsmasq_set_hosts(struct dnsmasq *d, const struct dnsmasq_host *hosts, size_t n)
{
	_cleanup_free_ char *text = NULL, *old = NULL;
	size_t len = 0, cap = 1;
	int r;

	for (size_t i = 0; i < n; i++)
		cap += strlen(hosts[i].mac) + strlen(hosts[i].name) + 2;
	if (!(text = malloc(cap)))
		return -ENOMEM;
	text[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s,%s\n", hosts[i].mac,
					hosts[i].name);
	if (read_file(d->hosts_path, LEASES_MAX, &old) >= 0 && streq(old, text))
		return 0;
	r = write_file_atomic(d->hosts_path, text, len, 0644);
	if (r < 0)
		return r;
	if (d->proc)
		(void)proc_signal(d->proc, SIGHUP); /* re-reads dhcp-hostsfile */
	return 1;
}

int dnsmasq_leases_parse(const char *text, struct dnsmasq_lease **ret, size_t *ret_n)
{
	struct dnsmasq_lease *v = NULL;
	size_t n = 0;

	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		char buf[512];
		long long expires;
		struct dnsmasq_lease l = {0};
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		snprintf(buf, sizeof(buf), "%.*s", (int)MIN(len, sizeof(buf) - 1), line);
		line = nl ? nl + 1 : NULL;
		if (sscanf(buf, "%lld %17s %45s %63s", &expires, l.mac, l.address, l.hostname) < 3)
			continue; /* "duid ..." and anything else */
		if (streq(l.hostname, "*"))
			l.hostname[0] = '\0';
		l.expires = expires;
		struct dnsmasq_lease *nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		v[n++] = l;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int dnsmasq_leases(const struct dnsmasq *d, struct dnsmasq_lease **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file(d->leases_path, LEASES_MAX, &text);

	if (r == -ENOENT) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if (r < 0)
		return r;
	return dnsmasq_leases_parse(text, ret, ret_n);
}

int dnsmasq_kill_strays(const char *dir, const int *keep, size_t n_keep)
{
	_cleanup_free_ char *prefix = NULL;

	if (asprintf(&prefix, "--conf-file=%s/", dir) < 0)
		return -ENOMEM;
	return proc_kill_strays("dnsmasq", prefix, keep, n_keep);
}

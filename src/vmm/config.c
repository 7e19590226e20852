/* See config.h. One table describes every setting: its option, config-file key, help text and
 * where it lands; parsing, defaults and --help all read it. */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api/listener.h"
#include "model/netdef.h"

#define DEFAULT_SYSTEM_CONFIG "/etc/mvirt/mvirt-vmm.conf"
#define DEFAULT_HYPERVISOR "/usr/bin/cloud-hypervisor"
#define DEFAULT_DNSMASQ "/usr/sbin/dnsmasq"
#define DEFAULT_TCP "127.0.0.1:50051"

enum setting_type {
	SETTING_STRING,
	SETTING_LIST,
};

struct setting;

/* Checks one value of a setting; the message starts with the setting's name. */
typedef int (*setting_check_fn)(const struct setting *s, const char *value, struct mv_error *err);

struct setting {
	const char *name; /* long option and config-file key */
	int short_opt;
	enum setting_type type;
	size_t offset;
	const char *arg;
	const char *help;
	setting_check_fn check; /* NULL: any value */
	unsigned min, max;      /* for check_count */
};

static int check_absolute(const struct setting *s, const char *value, struct mv_error *err);
static int check_listen(const struct setting *s, const char *value, struct mv_error *err);
static int check_pool(const struct setting *s, const char *value, struct mv_error *err);
static int check_count(const struct setting *s, const char *value, struct mv_error *err);
static int check_default_network(const struct setting *s, const char *value, struct mv_error *err);

static const struct setting settings[] = {
	{"listen", 'l', SETTING_LIST, offsetof(struct daemon_config, listen), "ADDR",
	 "serve on ADDR: unix:/path or 127.0.0.1:PORT (repeatable; loopback only)", check_listen},
	{"state-dir", 0, SETTING_STRING, offsetof(struct daemon_config, state_dir), "DIR",
	 "where the state database lives", check_absolute},
	{"runtime-dir", 0, SETTING_STRING, offsetof(struct daemon_config, runtime_dir), "DIR",
	 "sockets and per-VM runtime files", check_absolute},
	{"hypervisor", 0, SETTING_STRING, offsetof(struct daemon_config, hypervisor), "PATH",
	 "cloud-hypervisor binary", check_absolute},
	{"dnsmasq", 0, SETTING_STRING, offsetof(struct daemon_config, dnsmasq), "PATH",
	 "dnsmasq binary for DHCP and DNS of managed networks (Debian's dnsmasq-base)",
	 check_absolute},
	{"group", 0, SETTING_STRING, offsetof(struct daemon_config, group), "NAME",
	 "group whose members may use the API besides root (\"\": root only)"},
	{"pool", 0, SETTING_LIST, offsetof(struct daemon_config, pools), "NAME:PATH",
	 "a storage pool for volumes (repeatable; \"default\" is STATE-DIR/volumes)", check_pool},
	{"max-connections", 0, SETTING_STRING, offsetof(struct daemon_config, max_connections), "N",
	 "API connections open at once, all clients together (more wait in the backlog's place: "
	 "refused with RESOURCE_EXHAUSTED)",
	 check_count, 1, 65536},
	{"max-connections-per-user", 0, SETTING_STRING,
	 offsetof(struct daemon_config, max_connections_per_user), "N",
	 "API connections open at once by one user (uid)", check_count, 1, 65536},
	{"idle-timeout", 0, SETTING_STRING, offsetof(struct daemon_config, idle_timeout), "SECONDS",
	 "close a connection that has had no call for this long (clients reconnect by themselves)",
	 check_count, 1, 86400 * 7},
	{"default-network", 0, SETTING_STRING, offsetof(struct daemon_config, default_network),
	 "auto|off|CIDR",
	 "the NAT network \"default\" made on the first start: on a free 10.77.N.0/24 (auto), on "
	 "CIDR, or none (off)",
	 check_default_network},
};

static void usage(void)
{
	printf("Usage: mvirt-vmm [OPTION]...\n"
	       "The mvirt VM manager daemon: serves the mvirt gRPC API and supervises one\n"
	       "cloud-hypervisor process per VM.\n\n");
	for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
		char left[64];

		if (settings[i].short_opt)
			snprintf(left, sizeof(left), "-%c, --%s %s", settings[i].short_opt,
				 settings[i].name, settings[i].arg);
		else
			snprintf(left, sizeof(left), "    --%s %s", settings[i].name,
				 settings[i].arg);
		printf("  %-28s %s\n", left, settings[i].help);
	}
	printf("  %-28s %s\n", "-c, --config FILE",
	       "read settings (KEY = VALUE lines, keys as the long options) from FILE");
	printf("  %-28s %s\n", "-n, --check-config",
	       "check the configuration, report every problem with FILE:LINE, and exit (0: ok)");
	printf("  %-28s %s\n", "-v, --verbose", "log debug messages");
	printf("  %-28s %s\n", "-h, --help", "show this help");
	printf("  %-28s %s\n", "    --version", "show the version");
	printf("\nDefaults as root: --state-dir /var/lib/mvirt --runtime-dir /run/mvirt\n"
	       "  --listen unix:/run/mvirt/mvirt.sock --listen " DEFAULT_TCP "\n"
	       "As another user: $XDG_STATE_HOME/mvirt and $XDG_RUNTIME_DIR/mvirt.\n"
	       "Config file: --config, else " DEFAULT_SYSTEM_CONFIG " if it exists (root).\n");
}

static int strv_push(char ***strv, const char *s)
{
	size_t n = 0;
	char **v;

	while (*strv && (*strv)[n])
		n++;
	v = realloc(*strv, (n + 2) * sizeof(char *));
	if (!v)
		return -ENOMEM;
	v[n] = strdup(s);
	if (!v[n]) {
		v[n] = NULL;
		*strv = v;
		return -ENOMEM;
	}
	v[n + 1] = NULL;
	*strv = v;
	return 0;
}

static void strv_free(char **strv)
{
	for (size_t i = 0; strv && strv[i]; i++)
		free(strv[i]);
	free(strv);
}

static int setting_apply(struct daemon_config *cfg, const struct setting *s, const char *value)
{
	void *field = (char *)cfg + s->offset;

	if (s->type == SETTING_LIST)
		return strv_push((char ***)field, value);
	free(*(char **)field);
	*(char **)field = strdup(value);
	return *(char **)field ? 0 : -ENOMEM;
}

static const struct setting *setting_find(const char *key)
{
	for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
		const char *n = settings[i].name;
		size_t j;

		/* Config-file keys may use '_' for '-'. */
		for (j = 0; n[j] && key[j]; j++)
			if (n[j] != key[j] && !(n[j] == '-' && key[j] == '_'))
				break;
		if (!n[j] && !key[j])
			return &settings[i];
	}
	return NULL;
}

static char *strip(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

#define CONFIG_LINE_MAX 4096
#define CONFIG_PROBLEMS_MAX 100 /* a file of garbage is not reported line by line forever */

/* Whether s holds a control character (a value spans one line, and names no terminal codes). */
static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Adds one problem ("WHERE: what") to cfg->problems; the first one also goes to err, so a
 * caller that reads only err learns the first. Returns -EINVAL, or -ENOMEM. */
static int problem(struct daemon_config *cfg, struct mv_error *err, const char *fmt, ...)
	_printf_(3, 4);
static int problem(struct daemon_config *cfg, struct mv_error *err, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		msg = NULL;
		return -ENOMEM;
	}
	if (cfg->n_problems == 0)
		mv_err_invalid(err, "%s", msg);
	if (cfg->n_problems < CONFIG_PROBLEMS_MAX && strv_push(&cfg->problems, msg) < 0)
		return -ENOMEM;
	cfg->n_problems++;
	return -EINVAL;
}

/* Reads KEY = VALUE lines into cfg, except settings already given on the command line. Every
 * bad line is a problem of its own ("PATH:LINE: what"); reading goes on past it. Returns 0
 * (problems or not), or -ENOMEM. */
static int config_read_file(struct daemon_config *cfg, const char *path, const bool *given,
			    struct mv_error *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *line = NULL;
	unsigned seen_at[ELEMENTSOF(settings)] = {0};
	size_t cap = 0;
	unsigned lineno = 0;
	ssize_t n;

	if (!f) {
		char cause[128];

		snprintf(cause, sizeof(cause), "%s", strerror(errno));
		return problem(cfg, err, "%s: cannot read the config file: %s", path, cause) ==
				       -ENOMEM
			       ? -ENOMEM
			       : 0;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		struct mv_error check = {0};
		char *p, *eq, *key, *value;
		const struct setting *s;
		int r = 0;

		lineno++;
		if (n > CONFIG_LINE_MAX) {
			r = problem(cfg, err, "%s:%u: line longer than %d bytes", path, lineno,
				    CONFIG_LINE_MAX);
			goto next;
		}
		if (memchr(line, '\0', (size_t)n)) {
			r = problem(cfg, err, "%s:%u: holds a NUL byte", path, lineno);
			goto next;
		}
		p = strip(line);
		if (!*p || *p == '#' || *p == ';')
			continue;
		eq = strchr(p, '=');
		if (!eq) {
			r = problem(cfg, err, "%s:%u: expected KEY = VALUE", path, lineno);
			goto next;
		}
		*eq = '\0';
		key = strip(p);
		value = strip(eq + 1);
		if (value[0] == '"' && strlen(value) >= 2 && value[strlen(value) - 1] == '"') {
			value[strlen(value) - 1] = '\0';
			value++;
		}
		s = setting_find(key);
		if (!s) {
			char shown[64];

			r = problem(cfg, err, "%s:%u: unknown key '%s'", path, lineno,
				    mv_printable(key, shown, sizeof(shown)));
			goto next;
		}
		if (has_control(value)) {
			r = problem(cfg, err, "%s:%u: the value of %s holds a control character",
				    path, lineno, s->name);
			goto next;
		}
		if (s->type == SETTING_STRING && seen_at[s - settings]) {
			r = problem(cfg, err,
				    "%s:%u: %s is set again (first at line %u); it may be "
				    "set once",
				    path, lineno, s->name, seen_at[s - settings]);
			goto next;
		}
		seen_at[s - settings] = lineno;
		if (s->check && s->check(s, value, &check) < 0) {
			r = problem(cfg, err, "%s:%u: %s", path, lineno, check.msg);
			goto next;
		}
		if (given[s - settings])
			continue;
		r = setting_apply(cfg, s, value);
	next:
		if (r == -ENOMEM)
			return r;
	}
	return 0;
}

static int set_default(char **field, const char *a, const char *b)
{
	if (*field)
		return 0;
	if (asprintf(field, "%s%s", a, b ? b : "") < 0) {
		*field = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int config_defaults(struct daemon_config *cfg)
{
	const char *home = getenv("HOME");
	const char *xdg_state = getenv("XDG_STATE_HOME");
	const char *xdg_runtime = getenv("XDG_RUNTIME_DIR");
	_cleanup_free_ char *unix_addr = NULL;
	char tmp[64];
	int r;

	if (geteuid() == 0) {
		r = set_default(&cfg->state_dir, "/var/lib/mvirt", NULL);
		if (r >= 0)
			r = set_default(&cfg->runtime_dir, "/run/mvirt", NULL);
	} else {
		if (xdg_state && *xdg_state)
			r = set_default(&cfg->state_dir, xdg_state, "/mvirt");
		else
			r = set_default(&cfg->state_dir, home ? home : "/", "/.local/state/mvirt");
		if (r >= 0 && xdg_runtime && *xdg_runtime) {
			r = set_default(&cfg->runtime_dir, xdg_runtime, "/mvirt");
		} else if (r >= 0) {
			snprintf(tmp, sizeof(tmp), "/tmp/mvirt-%u", (unsigned)geteuid());
			r = set_default(&cfg->runtime_dir, tmp, NULL);
		}
	}
	if (r >= 0)
		r = set_default(&cfg->hypervisor, DEFAULT_HYPERVISOR, NULL);
	if (r >= 0)
		r = set_default(&cfg->dnsmasq, DEFAULT_DNSMASQ, NULL);
	if (r >= 0)
		r = set_default(&cfg->group, "mvirt", NULL);
	if (r >= 0)
		r = set_default(&cfg->default_network, "auto", NULL);
	if (r >= 0)
		r = set_default(&cfg->max_connections, "512", NULL);
	if (r >= 0)
		r = set_default(&cfg->max_connections_per_user, "128", NULL);
	if (r >= 0)
		r = set_default(&cfg->idle_timeout, "300", NULL);

	if (r < 0)
		return r;
	if (!cfg->listen) {
		if (asprintf(&unix_addr, "unix:%s/mvirt.sock", cfg->runtime_dir) < 0) {
			unix_addr = NULL;
			return -ENOMEM;
		}
		r = strv_push(&cfg->listen, unix_addr);
		if (r >= 0)
			r = strv_push(&cfg->listen, DEFAULT_TCP);
	}
	return r;
}

static int check_absolute(const struct setting *s, const char *value, struct mv_error *err)
{
	if (value[0] != '/')
		return mv_err_invalid(err, "%s: '%s' must be an absolute path", s->name, value);
	return 0;
}

static int check_listen(const struct setting *s, const char *value, struct mv_error *err)
{
	(void)s;
	return listener_check_address(value, err);
}

static int check_pool(const struct setting *s, const char *value, struct mv_error *err)
{
	const char *colon = strchr(value, ':');

	if (!colon || colon == value || colon[1] != '/')
		return mv_err_invalid(err, "%s: '%s' is not NAME:PATH with an absolute PATH",
				      s->name, value);
	return 0;
}

/* A whole number min..max. */
static int parse_count(const struct setting *s, const char *value, unsigned *ret,
		       struct mv_error *err)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno || end == value || *end || value[0] == '-' || v < s->min || v > s->max)
		return mv_err_invalid(err, "%s: '%s' is not a whole number %u..%u", s->name, value,
				      s->min, s->max);
	*ret = (unsigned)v;
	return 0;
}

static int check_count(const struct setting *s, const char *value, struct mv_error *err)
{
	unsigned v;

	return parse_count(s, value, &v, err);
}

static int check_default_network(const struct setting *s, const char *value, struct mv_error *err)
{
	struct net_ipv4 net;

	if (streq(value, "auto") || streq(value, "off") || net_ipv4_cidr_parse(value, &net) >= 0)
		return 0;
	return mv_err_invalid(err, "%s: '%s' is not auto, off or an IPv4 CIDR like 10.77.0.0/24",
			      s->name, value);
}

static const struct setting *setting_named(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(settings); i++)
		if (streq(settings[i].name, name))
			return &settings[i];
	return NULL;
}

/* The counts as numbers; each value was checked where it was given (defaults are valid). */
static void config_counts(struct daemon_config *cfg)
{
	(void)parse_count(setting_named("max-connections"), cfg->max_connections,
			  &cfg->n_max_connections, NULL);
	(void)parse_count(setting_named("max-connections-per-user"), cfg->max_connections_per_user,
			  &cfg->n_max_connections_per_user, NULL);
	(void)parse_count(setting_named("idle-timeout"), cfg->idle_timeout, &cfg->idle_timeout_s,
			  NULL);
}

int config_parse(int argc, char **argv, struct daemon_config *cfg, struct mv_error *err)
{
	enum { OPT_VERSION = 0x100, OPT_FIRST_SETTING = 0x200 };
	struct option opts[ELEMENTSOF(settings) + 6];
	bool given[ELEMENTSOF(settings)] = {false};
	const char *config_file = NULL;
	size_t n = 0;
	int c, r;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < ELEMENTSOF(settings); i++)
		opts[n++] = (struct option){settings[i].name, required_argument, NULL,
					    OPT_FIRST_SETTING + (int)i};
	opts[n++] = (struct option){"config", required_argument, NULL, 'c'};
	opts[n++] = (struct option){"check-config", no_argument, NULL, 'n'};
	opts[n++] = (struct option){"verbose", no_argument, NULL, 'v'};
	opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
	opts[n++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
	opts[n] = (struct option){0};

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:c:nvh", opts, NULL)) >= 0) {
		struct mv_error check = {0};
		const struct setting *s = NULL;

		switch (c) {
		case 'h':
			usage();
			return CONFIG_EXIT;
		case OPT_VERSION:
			printf("mvirt-vmm " MVIRT_VERSION "\n");
			return CONFIG_EXIT;
		case 'v':
			cfg->verbose++;
			continue;
		case 'n':
			cfg->check_only = true;
			continue;
		case 'c':
			config_file = optarg;
			continue;
		case 'l':
			s = &settings[0];
			break;
		case ':':
			return mv_err_invalid(err, "option %s needs an argument (see --help)",
					      argv[optind - 1]);
		case '?':
			return mv_err_invalid(err, "unknown option '%s' (see --help)",
					      argv[optind - 1]);
		default:
			s = &settings[c - OPT_FIRST_SETTING];
		}
		given[s - settings] = true;
		if (s->check && s->check(s, optarg, &check) < 0) {
			if (problem(cfg, err, "--%s", check.msg) == -ENOMEM)
				return -ENOMEM;
			continue;
		}
		r = setting_apply(cfg, s, optarg);
		if (r < 0)
			return r;
	}
	if (optind < argc)
		return mv_err_invalid(err, "unexpected argument '%s' (see --help)", argv[optind]);

	if (!config_file && geteuid() == 0 && access(DEFAULT_SYSTEM_CONFIG, F_OK) == 0)
		config_file = DEFAULT_SYSTEM_CONFIG;
	if (config_file) {
		cfg->config_file = strdup(config_file);
		if (!cfg->config_file)
			return -ENOMEM;
		r = config_read_file(cfg, config_file, given, err);
		if (r < 0)
			return r;
	}
	r = config_defaults(cfg);
	if (r < 0)
		return r;
	if (cfg->n_problems > 0)
		return -EINVAL;
	config_counts(cfg);
	return CONFIG_RUN;
}

void config_done(struct daemon_config *cfg)
{
	if (!cfg)
		return;
	strv_free(cfg->listen);
	free(cfg->state_dir);
	free(cfg->runtime_dir);
	free(cfg->hypervisor);
	free(cfg->dnsmasq);
	free(cfg->max_connections);
	free(cfg->max_connections_per_user);
	free(cfg->idle_timeout);
	free(cfg->group);
	free(cfg->default_network);
	strv_free(cfg->pools);
	free(cfg->config_file);
	strv_free(cfg->problems);
	memset(cfg, 0, sizeof(*cfg));
}

/* Unit tests for the daemon's configuration: command line, config file, defaults (config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static int parse(struct daemon_config *cfg, struct mv_error *err, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"mvirt-vmm";
	va_start(ap, err);
	for (char *a; (a = va_arg(ap, char *));)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return config_parse(argc, argv, cfg, err);
}

static void test_config_cli(void **state)
{
	struct daemon_config cfg;
	struct mv_error err = {0};

	(void)state;
	assert_int_equal(parse(&cfg, &err, "--state-dir", "/s", "--runtime-dir", "/r", "-l",
			       "unix:/r/a.sock", "--listen", "127.0.0.1:7", "--hypervisor", "/h",
			       "--group", "", "-v", NULL),
			 CONFIG_RUN);
	assert_string_equal(cfg.state_dir, "/s");
	assert_string_equal(cfg.runtime_dir, "/r");
	assert_string_equal(cfg.listen[0], "unix:/r/a.sock");
	assert_string_equal(cfg.listen[1], "127.0.0.1:7");
	assert_null(cfg.listen[2]);
	assert_string_equal(cfg.hypervisor, "/h");
	assert_string_equal(cfg.group, "");
	assert_int_equal(cfg.verbose, 1);
	config_done(&cfg);

	/* Defaults: the listen list follows the runtime directory. */
	assert_int_equal(parse(&cfg, &err, "--runtime-dir", "/rt", NULL), CONFIG_RUN);
	assert_string_equal(cfg.listen[0], "unix:/rt/mvirt.sock");
	assert_string_equal(cfg.listen[1], "127.0.0.1:50051");
	assert_string_equal(cfg.hypervisor, "/usr/bin/cloud-hypervisor");
	assert_string_equal(cfg.group, "mvirt");
	assert_string_equal(cfg.default_network, "auto");
	config_done(&cfg);

	/* --default-network: auto, off or a CIDR, checked at parse time. */
	assert_int_equal(parse(&cfg, &err, "--default-network", "off", NULL), CONFIG_RUN);
	assert_string_equal(cfg.default_network, "off");
	config_done(&cfg);
	assert_int_equal(parse(&cfg, &err, "--default-network", "10.9.0.1/24", NULL), CONFIG_RUN);
	assert_string_equal(cfg.default_network, "10.9.0.1/24");
	config_done(&cfg);
	assert_int_equal(parse(&cfg, &err, "--default-network", "10.9.0.0", NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "--default-network: '10.9.0.0'"));
	config_done(&cfg);
	mv_error_clear(&err);

	assert_int_equal(parse(&cfg, &err, "--bogus", NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "--bogus"));
	config_done(&cfg);
	mv_error_clear(&err);
	assert_int_equal(parse(&cfg, &err, "--state-dir", "relative", NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "state-dir"));
	config_done(&cfg);
	mv_error_clear(&err);
	assert_int_equal(parse(&cfg, &err, "stray", NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "stray"));
	config_done(&cfg);
}

/* Writes text to path and parses "--config path" into cfg. */
static int parse_file(struct daemon_config *cfg, struct mv_error *err, const char *path,
		      const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	mv_error_clear(err);
	return parse(cfg, err, "--config", path, NULL);
}

static void test_config_file(void **state)
{
	char path[] = "/tmp/mvirt-test-config-XXXXXX";
	struct daemon_config cfg;
	struct mv_error err = {0};
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("# comment\n"
	      "state_dir = /from/file\n"
	      "runtime-dir = \"/rt/file\"\n"
	      "listen = unix:/rt/file/x.sock\n"
	      "listen = 127.0.0.1:9\n"
	      "\n"
	      "hypervisor=/bin/ch\n",
	      f);
	fclose(f);

	/* The command line wins over the file. */
	assert_int_equal(parse(&cfg, &err, "--config", path, "--hypervisor", "/cli/ch", NULL),
			 CONFIG_RUN);
	assert_string_equal(cfg.state_dir, "/from/file");
	assert_string_equal(cfg.runtime_dir, "/rt/file");
	assert_string_equal(cfg.listen[0], "unix:/rt/file/x.sock");
	assert_string_equal(cfg.listen[1], "127.0.0.1:9");
	assert_string_equal(cfg.hypervisor, "/cli/ch");
	config_done(&cfg);

	f = fopen(path, "w");
	fputs("nonsense = 1\n", f);
	fclose(f);
	assert_int_equal(parse(&cfg, &err, "--config", path, NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "unknown key 'nonsense'"));
	assert_non_null(strstr(err.msg, ":1"));
	config_done(&cfg);

	/* A line too long for the reader is refused, not cut into two lines: the rest of it
	 * ("pool = ...") would be read as a setting of its own. */
	char long_line[4200] = "# ok\nlisten = unix:/x";

	memset(long_line + strlen(long_line), 'a', 4100);
	memcpy(long_line + strlen(long_line), "pool = evil:/etc\n", sizeof("pool = evil:/etc\n"));
	assert_int_equal(parse_file(&cfg, &err, path, long_line), -EINVAL);
	assert_non_null(strstr(err.msg, ":2: line longer than"));
	config_done(&cfg);
	/* control characters inside a value (strip takes only those at its ends) */
	assert_int_equal(parse_file(&cfg, &err, path, "pool = fast:/srv\r\tfast\n"), -EINVAL);
	assert_non_null(strstr(err.msg, ":1: the value of pool holds a control character"));
	config_done(&cfg);
	/* the last line may lack its newline */
	assert_int_equal(parse_file(&cfg, &err, path, "hypervisor = /bin/ch"), CONFIG_RUN);
	assert_string_equal(cfg.hypervisor, "/bin/ch");
	config_done(&cfg);
	unlink(path);

	mv_error_clear(&err);
	assert_true(parse(&cfg, &err, "--config", "/nonexistent/mvirt.conf", NULL) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/mvirt.conf"));
	config_done(&cfg);
}

/* Every bad line is a problem of its own, in file order, and reading goes on past each; the
 * first also lands in err. Past 100, problems are counted but not kept. */
static void test_config_every_problem(void **state)
{
	char path[] = "/tmp/mvirt-test-config-XXXXXX";
	struct daemon_config cfg;
	struct mv_error err = {0};
	char many[200 * 8 + 1] = "";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(
		parse_file(&cfg, &err, path,
			   "state_dir = rel\nhypervisor = /ok\nwhat = 1\nidle_timeout = 0\n"),
		-EINVAL);
	assert_int_equal(cfg.n_problems, 3);
	assert_non_null(strstr(cfg.problems[0], ":1: state-dir: 'rel' must be an absolute path"));
	assert_non_null(strstr(cfg.problems[1], ":3: unknown key 'what'"));
	assert_non_null(strstr(cfg.problems[2], ":4: idle-timeout: '0' is not a whole number"));
	assert_null(cfg.problems[3]);
	assert_non_null(strstr(err.msg, ":1: state-dir"));
	config_done(&cfg);

	for (int i = 0; i < 200; i++)
		memcpy(many + strlen(many), "x = 1\n", sizeof("x = 1\n"));
	assert_int_equal(parse_file(&cfg, &err, path, many), -EINVAL);
	assert_int_equal(cfg.n_problems, 200);
	assert_non_null(cfg.problems[99]);
	assert_null(cfg.problems[100]);
	config_done(&cfg);

	/* --check-config alone changes nothing of the parse */
	assert_int_equal(parse_file(&cfg, &err, path, "hypervisor = /bin/ch\n"), CONFIG_RUN);
	assert_false(cfg.check_only);
	config_done(&cfg);
	mv_error_clear(&err);
	assert_int_equal(parse(&cfg, &err, "-n", "--config", path, NULL), CONFIG_RUN);
	assert_true(cfg.check_only);
	assert_int_equal(cfg.n_problems, 0);
	config_done(&cfg);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_cli),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_config_every_problem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

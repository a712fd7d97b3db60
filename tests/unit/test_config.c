/* Unit tests: option table, flags, key file, precedence, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/config.h"
#include "../../core/core.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

static int parse(core_config *cfg, char **err, ...)
{
    char *argv[32] = {"citycmd"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    memset(cfg, 0, sizeof *cfg);
    return core_config_parse(cfg, argc, argv, err);
}

static void test_defaults(void **state)
{
    core_config c;
    char *err;
    assert_int_equal(parse(&c, &err, NULL), CORE_CONFIG_RUN);
    assert_string_equal(c.http.host, "127.0.0.1");
    assert_int_equal(c.http.port, 8080);
    assert_string_equal(c.state_dir, "state");
    assert_null(c.redis_url);
    assert_int_equal(c.group_commit, 1);
    assert_int_equal(c.ws_max_message, 65536);
    assert_int_equal(c.demo, 0);
    core_config_clear(&c);
}

static void test_flags(void **state)
{
    core_config c;
    char *err;
    assert_int_equal(parse(&c, &err, "--http", "0.0.0.0:9000", "--allow-plain-http",
                           "--state=/tmp/x", "--demo", "--no-group-commit", "--workers", "4",
                           "--redis", "redis://127.0.0.1:6380/2", NULL),
                     CORE_CONFIG_RUN);
    assert_string_equal(c.http.host, "0.0.0.0");
    assert_int_equal(c.http.port, 9000);
    assert_string_equal(c.state_dir, "/tmp/x");
    assert_int_equal(c.demo, 1);
    assert_int_equal(c.group_commit, 0);
    assert_int_equal(c.workers, 4);
    assert_string_equal(c.redis_url, "redis://127.0.0.1:6380/2");
    core_config_clear(&c);
}

static void test_errors_name_the_flag(void **state)
{
    core_config c;
    char *err;
    assert_int_equal(parse(&c, &err, "--workers", "0", NULL), CORE_EINVAL);
    assert_non_null(strstr(err, "--workers"));
    assert_non_null(strstr(err, "1 to 64"));
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--workers", "3x", NULL), CORE_EINVAL);
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--bogus", NULL), CORE_EINVAL);
    assert_non_null(strstr(err, "--bogus"));
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--http", "nohost", NULL), CORE_EINVAL);
    assert_non_null(strstr(err, "HOST:PORT"));
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--state", NULL), CORE_EINVAL);
    assert_non_null(strstr(err, "needs a value"));
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "stray", NULL), CORE_EINVAL);
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--demo=maybe", NULL), CORE_EINVAL);
    g_free(err);
    core_config_clear(&c);
}

static char *write_file(const char *text)
{
    char *path = NULL;
    int fd = g_file_open_tmp("citycmd-conf-XXXXXX", &path, NULL);
    close(fd);
    g_file_set_contents(path, text, -1, NULL);
    return path;
}

/* Plain HTTP stays on loopback unless told; TLS needs both files, readable. */
static void test_transport_rules(void **state)
{
    core_config c;
    char *err;
    char *pem = write_file("not checked here: the server reports a bad certificate\n");
    assert_int_equal(parse(&c, &err, "--http", "0.0.0.0:9000", NULL), CORE_EINVAL);
    assert_non_null(strstr(err, "refusing to serve plain HTTP on 0.0.0.0"));
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--http", "192.168.1.5:80", NULL), CORE_EINVAL);
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--http", "localhost:80", NULL), CORE_CONFIG_RUN);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--tls-cert", pem, NULL), CORE_EINVAL);
    assert_non_null(strstr(err, "go together"));
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--http", "0.0.0.0:443", "--tls-cert", "/nonexistent.pem",
                           "--tls-key", pem, NULL),
                     CORE_EINVAL);
    assert_non_null(strstr(err, "--tls-cert /nonexistent.pem: not a readable file"));
    g_free(err);
    core_config_clear(&c);
    assert_int_equal(
        parse(&c, &err, "--http", "0.0.0.0:443", "--tls-cert", pem, "--tls-key", pem, NULL),
        CORE_CONFIG_RUN);
    core_config_clear(&c);
    g_unlink(pem);
    g_free(pem);
}

static void test_key_file_and_precedence(void **state)
{
    char *path = write_file("[citycmd]\nhttp = 127.0.0.1:7000\nworkers = 3\n"
                            "state = /var/tmp/st\ngroup-commit = false\n");
    core_config c;
    char *err;
    /* The flag beats the key; keys beat defaults. */
    assert_int_equal(parse(&c, &err, "--config", path, "--workers", "5", NULL), CORE_CONFIG_RUN);
    assert_int_equal(c.http.port, 7000);
    assert_int_equal(c.workers, 5);
    assert_string_equal(c.state_dir, "/var/tmp/st");
    assert_int_equal(c.group_commit, 0);
    core_config_clear(&c);
    g_unlink(path);
    g_free(path);
}

static void test_key_file_errors(void **state)
{
    core_config c;
    char *err;
    char *path = write_file("[citycmd]\nwrokers = 3\n");
    assert_int_equal(parse(&c, &err, "--config", path, NULL), CORE_ECONFIG);
    assert_non_null(strstr(err, "unknown key 'wrokers'"));
    g_free(err);
    core_config_clear(&c);
    g_unlink(path);
    g_free(path);
    path = write_file("[other]\nworkers = 3\n");
    assert_int_equal(parse(&c, &err, "--config", path, NULL), CORE_ECONFIG);
    g_free(err);
    core_config_clear(&c);
    g_unlink(path);
    g_free(path);
    path = write_file("[citycmd]\nworkers = many\n");
    assert_int_equal(parse(&c, &err, "--config", path, NULL), CORE_EINVAL);
    assert_non_null(strstr(err, "workers"));
    g_free(err);
    core_config_clear(&c);
    g_unlink(path);
    g_free(path);
    assert_int_equal(parse(&c, &err, "--config", "/nonexistent/citycmd.conf", NULL), CORE_ECONFIG);
    g_free(err);
    core_config_clear(&c);
}

static void test_help_version(void **state)
{
    core_config c;
    char *err;
    assert_int_equal(parse(&c, &err, "--help", NULL), CORE_CONFIG_HELP);
    core_config_clear(&c);
    assert_int_equal(parse(&c, &err, "--version", NULL), CORE_CONFIG_VERSION);
    core_config_clear(&c);
}

static void test_hostport(void **state)
{
    core_hostport hp = {0};
    assert_int_equal(core_hostport_parse("[::1]:8443", &hp), 0);
    assert_string_equal(hp.host, "::1");
    assert_int_equal(hp.port, 8443);
    assert_int_equal(core_hostport_parse("example:0", &hp), 0);
    assert_int_equal(hp.port, 0);
    assert_int_equal(core_hostport_parse("example:65536", &hp), CORE_EINVAL);
    assert_int_equal(core_hostport_parse(":80", &hp), CORE_EINVAL);
    assert_int_equal(core_hostport_parse("[::1]8080", &hp), CORE_EINVAL);
    assert_int_equal(core_hostport_parse("host:-1", &hp), CORE_EINVAL);
    g_free(hp.host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_transport_rules),
        cmocka_unit_test(test_errors_name_the_flag),
        cmocka_unit_test(test_key_file_and_precedence),
        cmocka_unit_test(test_key_file_errors),
        cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_hostport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests: the WebSocket JSON envelope and the HTTP error body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/core.h"
#include "../../web/envelope.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *text, web_envelope *env, const char **code)
{
    char *msg = NULL;
    int rc = web_envelope_parse(text, strlen(text), env, code, &msg);
    if (rc)
        assert_non_null(msg);
    g_free(msg);
    return rc;
}

static void test_valid(void **state)
{
    web_envelope env;
    const char *code;
    assert_int_equal(
        parse("{\"type\":\"subscribe\",\"id\":\"c1\",\"data\":{\"topics\":[\"events\"]}}", &env,
              &code),
        0);
    assert_string_equal(env.type, "subscribe");
    assert_string_equal(json_string_value(env.id), "c1");
    assert_true(json_is_array(json_object_get(env.data, "topics")));
    web_envelope_clear(&env);
    assert_int_equal(parse("{\"type\":\"ping\",\"id\":7}", &env, &code), 0);
    assert_int_equal(json_integer_value(env.id), 7);
    assert_true(json_is_object(env.data)); /* absent data becomes {} */
    web_envelope_clear(&env);
}

static void test_invalid(void **state)
{
    web_envelope env;
    const char *code;
    assert_int_equal(parse("{\"type\":", &env, &code), CORE_EPARSE);
    assert_string_equal(code, "malformed_json");
    assert_int_equal(parse("", &env, &code), CORE_EPARSE);
    assert_int_equal(parse("{\"type\":\"a\",\"type\":\"b\"}", &env, &code), CORE_EPARSE);
    const char *bad[] = {
        "[1,2]",
        "\"ping\"",
        "{}",
        "{\"type\":5}",
        "{\"type\":\"\"}",
        "{\"type\":\"Ping\"}",
        "{\"type\":\"a b\"}",
        "{\"type\":\"ping\",\"id\":1.5}",
        "{\"type\":\"ping\",\"id\":{}}",
        "{\"type\":\"ping\",\"data\":[]}",
        "{\"type\":\"ping\",\"id\":"
        "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
        "{\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(parse(bad[i], &env, &code), CORE_EINVAL);
        assert_string_equal(code, "invalid_message");
        assert_null(env.id);
        assert_null(env.data);
    }
}

static void test_replies(void **state)
{
    json_t *re = json_string("c9");
    char *s = web_envelope_reply("pong", re, json_pack("{si}", "n", 1));
    json_t *o = json_loads(s, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "pong");
    assert_string_equal(json_string_value(json_object_get(o, "re")), "c9");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "data"), "n")), 1);
    json_decref(o);
    free(s);
    s = web_envelope_error(re, "unknown_type", "no \"such\" type");
    o = json_loads(s, 0, NULL);
    json_t *err = json_object_get(o, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "unknown_type");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "no \"such\" type");
    json_decref(o);
    free(s);
    json_decref(re);
    s = web_error_body("not_found", "no such resource: /x");
    assert_string_equal(
        s, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such resource: /x\"}}");
    free(s);
}

static void test_error_codes(void **state)
{
    assert_string_equal(core_errcode(CORE_ENOTFOUND), "not_found");
    assert_string_equal(core_errcode(CORE_ESTOPPED), "store_stopped");
    assert_string_equal(core_strerror(CORE_OK), "success");
    assert_string_equal(core_strerror(-999), "unknown error");
    assert_string_equal(core_errcode(-999), "internal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_error_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

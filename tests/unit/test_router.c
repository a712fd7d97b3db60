/* Unit tests: route matching, path parameters, 404 vs 405 with Allow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/core.h"
#include "../../web/router.h"

#include <string.h>

static int h_list, h_add, h_get, h_sub;

static web_router *make(void)
{
    web_router *r = web_router_new();
    assert_int_equal(web_router_add(r, WEB_GET, "/api/v1/journal", &h_list), 0);
    assert_int_equal(web_router_add(r, WEB_POST, "/api/v1/journal", &h_add), 0);
    assert_int_equal(web_router_add(r, WEB_GET, "/api/v1/journal/{id}", &h_get), 0);
    assert_int_equal(web_router_add(r, WEB_GET, "/api/v1/incidents/{id}/units/{unit}", &h_sub), 0);
    return r;
}

static void test_exact_and_method(void **state)
{
    web_router *r = make();
    void *h = NULL;
    web_params p;
    const char *pat = NULL;
    assert_int_equal(web_router_match(r, WEB_GET, "/api/v1/journal", &h, &p, &pat, NULL, 0),
                     WEB_ROUTE_FOUND);
    assert_ptr_equal(h, &h_list);
    assert_string_equal(pat, "/api/v1/journal");
    assert_int_equal(web_router_match(r, WEB_POST, "/api/v1/journal", &h, &p, NULL, NULL, 0),
                     WEB_ROUTE_FOUND);
    assert_ptr_equal(h, &h_add);
    web_router_free(r);
}

static void test_params(void **state)
{
    web_router *r = make();
    void *h = NULL;
    web_params p;
    assert_int_equal(web_router_match(r, WEB_GET, "/api/v1/journal/42", &h, &p, NULL, NULL, 0),
                     WEB_ROUTE_FOUND);
    assert_ptr_equal(h, &h_get);
    assert_string_equal(web_param(&p, "id"), "42");
    assert_null(web_param(&p, "nope"));
    assert_int_equal(
        web_router_match(r, WEB_GET, "/api/v1/incidents/I-7/units/E12", &h, &p, NULL, NULL, 0),
        WEB_ROUTE_FOUND);
    assert_ptr_equal(h, &h_sub);
    assert_string_equal(web_param(&p, "id"), "I-7");
    assert_string_equal(web_param(&p, "unit"), "E12");
    web_router_free(r);
}

static void test_not_found(void **state)
{
    web_router *r = make();
    void *h = NULL;
    web_params p;
    const char *paths[] = {"/api/v1/journals",
                           "/api/v1",
                           "/api/v1/journal/1/extra",
                           "/api/v1/journal/",
                           "relative",
                           "",
                           "/"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        assert_int_equal(web_router_match(r, WEB_GET, paths[i], &h, &p, NULL, NULL, 0),
                         WEB_ROUTE_NOT_FOUND);
    assert_int_equal(web_router_match(r, WEB_GET, NULL, &h, &p, NULL, NULL, 0),
                     WEB_ROUTE_NOT_FOUND);
    /* A parameter longer than the limit does not match rather than being truncated. */
    char longpath[512] = "/api/v1/journal/";
    memset(longpath + strlen(longpath), '9', 300);
    assert_int_equal(web_router_match(r, WEB_GET, longpath, &h, &p, NULL, NULL, 0),
                     WEB_ROUTE_NOT_FOUND);
    web_router_free(r);
}

static void test_method_not_allowed(void **state)
{
    web_router *r = make();
    void *h = NULL;
    web_params p;
    char allow[64];
    assert_int_equal(
        web_router_match(r, WEB_DELETE, "/api/v1/journal", &h, &p, NULL, allow, sizeof allow),
        WEB_ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, POST");
    assert_int_equal(
        web_router_match(r, WEB_PUT, "/api/v1/journal/3", &h, &p, NULL, allow, sizeof allow),
        WEB_ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET");
    web_router_free(r);
}

static void test_bad_patterns(void **state)
{
    web_router *r = web_router_new();
    assert_int_equal(web_router_add(r, WEB_GET, "no-slash", &h_get), CORE_EINVAL);
    assert_int_equal(web_router_add(r, WEB_GET, NULL, &h_get), CORE_EINVAL);
    assert_int_equal(web_router_add(r, WEB_GET, "/{a}/{b}/{c}/{d}/{e}", &h_get), CORE_EINVAL);
    assert_string_equal(web_method_name(WEB_PATCH), "PATCH");
    web_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_and_method), cmocka_unit_test(test_params),
        cmocka_unit_test(test_not_found),        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_bad_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

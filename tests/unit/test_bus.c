/* Unit tests: event bus delivery, prefixes, unsubscribe during delivery; events; metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/bus.h"
#include "../../core/core.h"
#include "../../core/metrics.h"

#include <glib.h>
#include <string.h>

typedef struct {
    GPtrArray *seen; /* "name:type" strings */
    const char *name;
    core_bus *bus;
    unsigned self_id, other_id;
} rec;

static void record(core_event *ev, void *user)
{
    rec *r = user;
    g_ptr_array_add(r->seen, g_strdup_printf("%s:%s", r->name, ev->type));
}

static void record_and_unsubscribe(core_event *ev, void *user)
{
    rec *r = user;
    record(ev, user);
    core_bus_unsubscribe(r->bus, r->self_id);
    core_bus_unsubscribe(r->bus, r->other_id);
}

static void publish(core_bus *bus, const char *type, int64_t seq)
{
    core_event *ev = core_event_new(type, "tester", "x/1", NULL);
    ev->seq = seq;
    core_bus_publish(bus, ev);
    core_event_unref(ev);
}

static void test_prefix_and_order(void **state)
{
    core_bus *bus = core_bus_new();
    GPtrArray *seen = g_ptr_array_new_with_free_func(g_free);
    rec all = {seen, "all", bus, 0, 0}, journal = {seen, "journal", bus, 0, 0};
    core_bus_subscribe(bus, "", record, &all);
    core_bus_subscribe(bus, "journal.", record, &journal);
    publish(bus, "journal.created", 1);
    publish(bus, "unit.moved", 2);
    assert_int_equal(seen->len, 3);
    assert_string_equal(seen->pdata[0], "all:journal.created");
    assert_string_equal(seen->pdata[1], "journal:journal.created");
    assert_string_equal(seen->pdata[2], "all:unit.moved");
    assert_int_equal(core_bus_last_seq(bus), 2);
    g_ptr_array_free(seen, TRUE);
    core_bus_free(bus);
}

static void test_unsubscribe_during_delivery(void **state)
{
    core_bus *bus = core_bus_new();
    GPtrArray *seen = g_ptr_array_new_with_free_func(g_free);
    rec a = {seen, "a", bus, 0, 0}, b = {seen, "b", bus, 0, 0};
    a.self_id = core_bus_subscribe(bus, "", record_and_unsubscribe, &a);
    b.self_id = core_bus_subscribe(bus, "", record, &b);
    a.other_id = b.self_id;
    publish(bus, "t.one", 1);
    /* b was unsubscribed by a before its turn: it must not be called. */
    assert_int_equal(seen->len, 1);
    publish(bus, "t.two", 2);
    assert_int_equal(seen->len, 1);
    g_ptr_array_free(seen, TRUE);
    core_bus_free(bus);
}

static void test_event_json_roundtrip(void **state)
{
    core_event *ev = core_event_new("journal.created", NULL, NULL,
                                    json_pack("{ss}", "text", "line\n\"quoted\" 火警"));
    ev->seq = 17;
    ev->at_ms = 1700000000123;
    const char *s = core_event_json(ev);
    json_t *o = json_loads(s, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 17);
    assert_string_equal(json_string_value(json_object_get(o, "at")), "2023-11-14T22:13:20.123Z");
    assert_string_equal(json_string_value(json_object_get(o, "actor")), "system");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "data"), "text")),
                        "line\n\"quoted\" 火警");
    json_decref(o);
    core_event *back =
        core_event_from_row(17, ev->at_ms, "journal.created", "system", "", "{\"text\":\"a\"}");
    assert_non_null(back);
    assert_null(core_event_from_row(1, 0, "t", "a", "", "[1]"));
    assert_null(core_event_from_row(1, 0, "t", "a", "", "{bad"));
    core_event_unref(back);
    core_event_unref(core_event_ref(ev));
    core_event_unref(ev);
}

static void test_metrics_render(void **state)
{
    core_metrics_reset();
    core_metric *c = core_counter("citycmd_test_total", "A test counter.", "kind=\"a\"");
    assert_ptr_equal(c, core_counter("citycmd_test_total", "A test counter.", "kind=\"a\""));
    core_metric_add(c, 3);
    core_metric_add(core_counter("citycmd_test_total", "A test counter.", "kind=\"b\""), 1);
    core_metric *h = core_histogram("citycmd_test_seconds", "A test histogram.", "",
                                    core_latency_buckets, core_latency_nbuckets);
    core_metric_observe(h, 0.0007);
    core_metric_observe(h, 0.3);
    core_metric_observe(h, 99);
    char *text = core_metrics_render();
    assert_non_null(strstr(text, "# TYPE citycmd_test_total counter\n"));
    assert_non_null(strstr(text, "citycmd_test_total{kind=\"a\"} 3\n"));
    assert_non_null(strstr(text, "citycmd_test_total{kind=\"b\"} 1\n"));
    /* HELP/TYPE appear once per family. */
    assert_null(strstr(strstr(text, "# TYPE citycmd_test_total") + 1, "# TYPE citycmd_test_total"));
    assert_non_null(strstr(text, "citycmd_test_seconds_bucket{le=\"0.0005\"} 0\n"));
    assert_non_null(strstr(text, "citycmd_test_seconds_bucket{le=\"0.001\"} 1\n"));
    assert_non_null(strstr(text, "citycmd_test_seconds_bucket{le=\"0.5\"} 2\n"));
    assert_non_null(strstr(text, "citycmd_test_seconds_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(text, "citycmd_test_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "citycmd_test_seconds_count 3\n"));
    g_free(text);
    core_metrics_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_and_order),
        cmocka_unit_test(test_unsubscribe_during_delivery),
        cmocka_unit_test(test_event_json_roundtrip),
        cmocka_unit_test(test_metrics_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

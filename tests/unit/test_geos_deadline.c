/*
 * test_geos_deadline.c — long GEOS operations stop at their deadline, and
 * only in the thread that set it.
 */
#include "../../gis/internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>

/* A polygon with n vertices on a wobbly circle, shifted by dx: costly to overlay. */
static GEOSGeometry *big_polygon(GEOSContextHandle_t h, unsigned n, double dx)
{
    GEOSCoordSequence *seq = GEOSCoordSeq_create_r(h, n + 1, 2);
    for (unsigned i = 0; i <= n; i++) {
        double a = 2 * G_PI * (i % n) / n, r = 1000 + 50 * sin(a * 97);
        GEOSCoordSeq_setXY_r(h, seq, i, r * cos(a) + dx, r * sin(a));
    }
    return GEOSGeom_createPolygon_r(h, GEOSGeom_createLinearRing_r(h, seq), NULL, 0);
}

static void notice(const char *fmt, ...) {}

static void test_deadline_stops_a_long_operation(void **state)
{
    GEOSContextHandle_t h = GEOS_init_r();
    GEOSContext_setErrorHandler_r(h, notice);
    GEOSGeometry *g = big_polygon(h, 300000, 0), *g2 = big_polygon(h, 300000, 300);

    /* Without a deadline the overlay completes. */
    int64_t t0 = g_get_monotonic_time();
    GEOSGeometry *full = GEOSUnion_r(h, g, g2);
    int64_t full_us = g_get_monotonic_time() - t0;
    assert_non_null(full);
    assert_false(gis__deadline_end());
    GEOSGeom_destroy_r(h, full);

    /* With one a small fraction of that, it stops before the end and says so
     * (GEOS checks for interruption between phases, so not at once). */
    int ms = (int)MAX(1, full_us / 1000 / 20);
    print_message("full union %.1f ms, deadline %d ms\n", full_us / 1000.0, ms);
    gis__deadline_begin(ms);
    t0 = g_get_monotonic_time();
    GEOSGeometry *cut = GEOSUnion_r(h, g, g2);
    int64_t cut_us = g_get_monotonic_time() - t0;
    print_message("interrupted after %.1f ms\n", cut_us / 1000.0);
    assert_true(gis__deadline_end());
    assert_null(cut);
    assert_true(cut_us < full_us * 8 / 10);

    /* The next operation, with no deadline, is not disturbed. */
    GEOSGeometry *again = GEOSUnion_r(h, g, g2);
    assert_non_null(again);
    GEOSGeom_destroy_r(h, again);
    GEOSGeom_destroy_r(h, g2);
    GEOSGeom_destroy_r(h, g);
    GEOS_finish_r(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_stops_a_long_operation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

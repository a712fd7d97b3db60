/* Unit tests: the position filters (each verdict) and the viewport grid
 * against a brute-force scan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../dispatch/avl.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define NOW 1763700000000LL /* a fixed "now" */

/* Devices "dev-N" belong to unit N of agency "fire"; others to nobody. */
static int64_t lookup(const char *device, const char **agency, void *user)
{
    (void)user;
    if (!g_str_has_prefix(device, "dev-"))
        return 0;
    *agency = "fire";
    return g_ascii_strtoll(device + 4, NULL, 10);
}

static disp_gps_fix fix(const char *device, int64_t at, double lon, double lat)
{
    disp_gps_fix f;
    disp_gps_fix_init(&f);
    g_strlcpy(f.device, device, sizeof f.device);
    f.fix_ms = at;
    f.lon = lon;
    f.lat = lat;
    f.valid = 1;
    f.speed_kmh = 30;
    return f;
}

typedef struct {
    int calls;
    disp_avl_pos last;
} heard;

static void hear(const disp_avl_pos *p, void *user)
{
    heard *h = user;
    h->calls++;
    h->last = *p;
}

static void test_filters(void **state)
{
    (void)state;
    disp_avl *a = disp_avl_new(lookup, NULL);
    heard h = {0};
    disp_avl_watch(a, hear, &h);
    disp_gps_fix f = fix("dev-7", NOW - 10000, 7.42, 43.73);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_ACCEPTED);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.last.unit_id, 7);
    assert_string_equal(h.last.agency, "fire");
    assert_int_equal(h.last.recv_ms, NOW);

    /* Not newer than the last accepted one. */
    f = fix("dev-7", NOW - 10000, 7.421, 43.73);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_OUTDATED);
    f = fix("dev-7", NOW - 20000, 7.421, 43.73);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_OUTDATED);
    /* Ahead of the clock by more than a minute; older than a day. */
    f = fix("dev-7", NOW + 61000, 7.421, 43.73);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_FUTURE);
    f = fix("dev-7", NOW + 59000, 7.4201, 43.73);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_ACCEPTED);
    f = fix("dev-8", NOW - 25 * 3600 * 1000LL, 7.42, 43.73);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_STALE);
    /* No fix, or 0,0. */
    f = fix("dev-8", NOW, 7.42, 43.73);
    f.valid = 0;
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_INVALID);
    f = fix("dev-8", NOW, 0, 0);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_INVALID);
    /* Nobody's device. */
    f = fix("stranger", NOW, 7.42, 43.73);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_UNKNOWN_DEVICE);

    /* A jump: 1.1 km in 10 s is 400 km/h; 1.1 km in 30 s (132 km/h) is fine;
     * any move after a minute is plausible. */
    f = fix("dev-9", NOW - 100000, 7.40, 43.73);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_ACCEPTED);
    f = fix("dev-9", NOW - 90000, 7.40, 43.74);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_JUMP);
    f = fix("dev-9", NOW - 70000, 7.40, 43.74);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_ACCEPTED);
    f = fix("dev-9", NOW - 5000, 7.50, 43.80);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_ACCEPTED);
    /* Small moves are never jumps, however short the time. */
    f = fix("dev-9", NOW - 4990, 7.5005, 43.80);
    assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_ACCEPTED);

    assert_int_equal(disp_avl_count(a), 2);
    assert_int_equal(disp_avl_counted(a, DISP_AVL_ACCEPTED), 6);
    assert_int_equal(disp_avl_counted(a, DISP_AVL_OUTDATED), 2);
    assert_int_equal(disp_avl_counted(a, DISP_AVL_JUMP), 1);
    assert_int_equal(h.calls, 6);
    const disp_avl_pos *p = disp_avl_get(a, 9);
    assert_non_null(p);
    assert_true(fabs(p->lon - 7.5005) < 1e-12);
    assert_null(disp_avl_get(a, 8));
    assert_string_equal(disp_avl_verdict_name(DISP_AVL_JUMP), "jump");
    disp_avl_free(a);
}

typedef struct {
    GHashTable *ids;
} found;

static void collect(const disp_avl_pos *p, void *user)
{
    found *f = user;
    g_hash_table_add(f->ids, GSIZE_TO_POINTER((gsize)p->unit_id));
}

static void test_grid_matches_brute_force(void **state)
{
    (void)state;
    disp_avl *a = disp_avl_new(lookup, NULL);
    GRand *r = g_rand_new_with_seed(42);
    enum { UNITS = 2000, MOVES = 6 };
    double lon[UNITS + 1], lat[UNITS + 1];
    /* Each unit reports several times, moving between cells. */
    for (int m = 0; m < MOVES; m++) {
        for (int u = 1; u <= UNITS; u++) {
            char dev[16];
            g_snprintf(dev, sizeof dev, "dev-%d", u);
            lon[u] = g_rand_double_range(r, 7.38, 7.46);
            lat[u] = g_rand_double_range(r, 43.71, 43.76);
            disp_gps_fix f = fix(dev, NOW - (MOVES - m) * 120000LL, lon[u], lat[u]);
            assert_int_equal(disp_avl_report(a, &f, NOW), DISP_AVL_ACCEPTED);
        }
    }
    assert_int_equal(disp_avl_count(a), UNITS);
    for (int q = 0; q < 200; q++) {
        double w = g_rand_double_range(r, 7.37, 7.47), s = g_rand_double_range(r, 43.70, 43.77);
        double b[4] = {w, s, w + g_rand_double_range(r, 0, 0.03),
                       s + g_rand_double_range(r, 0, 0.03)};
        found f = {g_hash_table_new(g_direct_hash, g_direct_equal)};
        disp_avl_foreach(a, q % 50 == 0 ? NULL : b, collect, &f);
        guint expect = 0;
        for (int u = 1; u <= UNITS; u++) {
            int in = q % 50 == 0 ||
                     (lon[u] >= b[0] && lon[u] <= b[2] && lat[u] >= b[1] && lat[u] <= b[3]);
            expect += (guint)in;
            assert_int_equal(in, g_hash_table_contains(f.ids, GSIZE_TO_POINTER((gsize)u)));
        }
        assert_int_equal(g_hash_table_size(f.ids), expect);
        g_hash_table_destroy(f.ids);
    }
    /* The whole world as a viewport visits the occupied cells only. */
    double world[4] = {-180, -90, 180, 90};
    found f = {g_hash_table_new(g_direct_hash, g_direct_equal)};
    disp_avl_foreach(a, world, collect, &f);
    assert_int_equal(g_hash_table_size(f.ids), UNITS);
    g_hash_table_destroy(f.ids);
    g_rand_free(r);
    disp_avl_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_grid_matches_brute_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

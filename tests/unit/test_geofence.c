/*
 * test_geofence.c — the point-in-fence test against GEOS on a real drive:
 * a car's GPS trace through Munich (1 Hz, about 1,200 fixes) replayed
 * against a convex polygon, a concave star, a polygon with a hole and a
 * circle placed along its way. The enter/exit transitions that
 * disp_geofence_contains gives must be exactly those of GEOSContains on the
 * same lon/lat geometries (circles: the haversine distance). Also: what a
 * geometry from a client is refused for, naming the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/core.h"
#include "../../dispatch/geofence.h"

#include <geos_c.h>
#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define EARTH_M 6371008.8

typedef struct {
    double *lon, *lat;
    size_t n;
} trace;

static trace load_trace(void)
{
    const char *path = getenv("CITYCMD_GPS_TRACE");
    assert_non_null(path);
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    if (!doc)
        fail_msg("%s: %s", path, err.text);
    trace t = {g_new(double, json_array_size(doc)), g_new(double, json_array_size(doc)), 0};
    size_t i;
    json_t *fix;
    json_array_foreach(doc, i, fix)
    {
        const char *p = json_string_value(json_object_get(fix, "point"));
        assert_non_null(p);
        assert_int_equal(sscanf(p, "POINT(%lf %lf)", &t.lon[t.n], &t.lat[t.n]), 2);
        t.n++;
    }
    json_decref(doc);
    return t;
}

/* A point d metres from c at bearing a (radians from east, counter-clockwise). */
static void offset(double clon, double clat, double d, double a, double *lon, double *lat)
{
    double m_per_deg = EARTH_M * G_PI / 180;
    *lat = clat + d * sin(a) / m_per_deg;
    *lon = clon + d * cos(a) / (m_per_deg * cos(clat * G_PI / 180));
}

/* A closed ring of n vertices around c; radius r(i). */
static json_t *ring(double clon, double clat, int n, double r_even, double r_odd, double turn)
{
    json_t *ring = json_array();
    for (int i = 0; i <= n; i++) {
        double lon, lat;
        offset(clon, clat, (i % n) % 2 ? r_odd : r_even, turn + 2 * G_PI * (i % n) / n, &lon, &lat);
        json_array_append_new(ring, json_pack("[ff]", lon, lat));
    }
    return ring;
}

static double haversine(double lon1, double lat1, double lon2, double lat2)
{
    double r = G_PI / 180, dlat = (lat2 - lat1) * r, dlon = (lon2 - lon1) * r;
    double h = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * r) * cos(lat2 * r) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * EARTH_M * asin(sqrt(h));
}

/* The GeoJSON Polygon as GEOS geometry (built from its coordinates, not
 * through any code of ours). */
static GEOSGeometry *geos_polygon(GEOSContextHandle_t h, const json_t *coords)
{
    size_t nr = json_array_size(coords);
    GEOSGeometry *rings[8];
    assert_true(nr >= 1 && nr <= 8);
    for (size_t r = 0; r < nr; r++) {
        const json_t *ring = json_array_get(coords, r);
        GEOSCoordSequence *seq = GEOSCoordSeq_create_r(h, (unsigned)json_array_size(ring), 2);
        for (size_t i = 0; i < json_array_size(ring); i++) {
            const json_t *p = json_array_get(ring, i);
            GEOSCoordSeq_setX_r(h, seq, (unsigned)i, json_real_value(json_array_get(p, 0)));
            GEOSCoordSeq_setY_r(h, seq, (unsigned)i, json_real_value(json_array_get(p, 1)));
        }
        rings[r] = GEOSGeom_createLinearRing_r(h, seq);
        assert_non_null(rings[r]);
    }
    GEOSGeometry *g = GEOSGeom_createPolygon_r(h, rings[0], rings + 1, (unsigned)nr - 1);
    assert_non_null(g);
    assert_int_equal(GEOSisValid_r(h, g), 1);
    return g;
}

/* Transitions as text, "fence enter|exit at fix i" per line. */
static void note(GString *s, int fence, int inside, size_t i)
{
    g_string_append_printf(s, "%d %s %zu\n", fence, inside ? "enter" : "exit", i);
}

static void test_trace_against_geos(void **state)
{
    (void)state;
    trace t = load_trace();
    assert_true(t.n > 1000);
    /* Fences on the way: at fixes a fifth, two fifths, three fifths and four fifths in. */
    size_t at[4] = {t.n / 5, 2 * t.n / 5, 3 * t.n / 5, 4 * t.n / 5};
    json_t *geometries[4];
    geometries[0] = json_pack("{sss[o]}", "type", "Polygon", "coordinates",
                              ring(t.lon[at[0]] + 1e-4, t.lat[at[0]], 7, 140, 110, 0.3));
    /* A ten-pointed star: concave, the car crosses its arms. */
    geometries[1] = json_pack("{sss[o]}", "type", "Polygon", "coordinates",
                              ring(t.lon[at[1]], t.lat[at[1]] - 5e-5, 20, 260, 70, 0.11));
    /* A square with a square hole where the car passes. */
    geometries[2] = json_pack("{sss[oo]}", "type", "Polygon", "coordinates",
                              ring(t.lon[at[2]], t.lat[at[2]], 4, 300, 300, 0.785),
                              ring(t.lon[at[2]] + 2e-5, t.lat[at[2]], 4, 60, 60, 0.5));
    geometries[3] = json_pack("{sss[ff]sf}", "type", "Circle", "coordinates", t.lon[at[3]] - 3e-4,
                              t.lat[at[3]] + 2e-4, "radius_m", 120.0);

    disp_geofence_shape shapes[4];
    GEOSContextHandle_t h = GEOS_init_r();
    GEOSGeometry *geos[3];
    for (int f = 0; f < 4; f++) {
        char *field = NULL, *message = NULL;
        int rc = disp_geofence_shape_parse(geometries[f], &shapes[f], &field, &message);
        if (rc)
            fail_msg("fence %d: %s: %s", f, field, message);
        if (f < 3)
            geos[f] = geos_polygon(h, json_object_get(geometries[f], "coordinates"));
    }
    double clon = json_real_value(json_array_get(json_object_get(geometries[3], "coordinates"), 0));
    double clat = json_real_value(json_array_get(json_object_get(geometries[3], "coordinates"), 1));

    GString *ours = g_string_new(""), *theirs = g_string_new("");
    int in_ours[4] = {0}, in_theirs[4] = {0}, enters = 0;
    double closest = INFINITY; /* how near the circle's edge a fix came, in metres */
    for (size_t i = 0; i < t.n; i++) {
        GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(h, t.lon[i], t.lat[i]);
        for (int f = 0; f < 4; f++) {
            int a = disp_geofence_contains(&shapes[f], t.lon[i], t.lat[i]);
            int b;
            if (f < 3) {
                b = GEOSContains_r(h, geos[f], pt);
            } else {
                double d = haversine(clon, clat, t.lon[i], t.lat[i]);
                closest = fmin(closest, fabs(d - 120.0));
                b = d <= 120.0;
            }
            if (a != in_ours[f])
                note(ours, f, in_ours[f] = a, i);
            if (b != in_theirs[f]) {
                note(theirs, f, in_theirs[f] = b, i);
                enters += b;
            }
        }
        GEOSGeom_destroy_r(h, pt);
    }
    printf("# %zu fixes, %d enters; the nearest fix to the circle's edge: %.3f m\n", t.n, enters,
           closest);
    assert_string_equal(ours->str, theirs->str);
    /* Every fence is on the way, and the star's arms are crossed more than once. */
    for (int f = 0; f < 4; f++) {
        char key[8];
        g_snprintf(key, sizeof key, "%d enter", f);
        assert_non_null(strstr(theirs->str, key));
    }
    assert_true(enters >= 5);

    g_string_free(ours, TRUE);
    g_string_free(theirs, TRUE);
    for (int f = 0; f < 4; f++) {
        disp_geofence_shape_clear(&shapes[f]);
        json_decref(geometries[f]);
        if (f < 3)
            GEOSGeom_destroy_r(h, geos[f]);
    }
    GEOS_finish_r(h);
    g_free(t.lon);
    g_free(t.lat);
}

/* Every fix's containment, not only the transitions, on a dense grid. */
static void test_grid_against_geos(void **state)
{
    (void)state;
    json_t *g =
        json_pack("{sss[oo]}", "type", "Polygon", "coordinates",
                  ring(11.56, 48.16, 16, 400, 150, 0.2), ring(11.5605, 48.16, 5, 60, 60, 0));
    disp_geofence_shape s;
    char *field = NULL, *message = NULL;
    assert_int_equal(disp_geofence_shape_parse(g, &s, &field, &message), 0);
    GEOSContextHandle_t h = GEOS_init_r();
    GEOSGeometry *poly = geos_polygon(h, json_object_get(g, "coordinates"));
    int differ = 0, inside = 0;
    for (int i = 0; i < 200; i++) {
        for (int j = 0; j < 200; j++) {
            double lon = 11.553 + i * 0.0000713, lat = 48.1555 + j * 0.0000457;
            GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(h, lon, lat);
            int a = disp_geofence_contains(&s, lon, lat), b = GEOSContains_r(h, poly, pt);
            differ += a != b;
            inside += a;
            GEOSGeom_destroy_r(h, pt);
        }
    }
    assert_int_equal(differ, 0);
    assert_true(inside > 1000);
    GEOSGeom_destroy_r(h, poly);
    GEOS_finish_r(h);
    disp_geofence_shape_clear(&s);
    json_decref(g);
}

static void refused(const char *geometry, const char *field)
{
    json_error_t err;
    json_t *g = json_loads(geometry, 0, &err);
    disp_geofence_shape s;
    char *f = NULL, *message = NULL;
    int rc = disp_geofence_shape_parse(g, &s, &f, &message);
    if (rc != CORE_EINVAL || !f || strcmp(f, field) != 0)
        fail_msg("%s: rc %d field %s (%s), expected %s", geometry, rc, f ? f : "-",
                 message ? message : "-", field);
    g_free(f);
    g_free(message);
    json_decref(g);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,1]]]}", "geometry");
    refused("{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,1e300],[0,0]]]}",
            "geometry");
    refused("{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}", "geometry");
    refused("{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[null,1],[0,1],[0,0]]]}",
            "geometry");
    refused("{\"type\":\"Circle\",\"coordinates\":[11.5,48.1],\"radius_m\":0}",
            "geometry.radius_m");
    refused("{\"type\":\"Circle\",\"coordinates\":[11.5,48.1],\"radius_m\":50000.5}",
            "geometry.radius_m");
    refused("{\"type\":\"Circle\",\"coordinates\":[11.5,48.1]}", "geometry.radius_m");
    refused("{\"type\":\"Circle\",\"coordinates\":[200,48.1],\"radius_m\":5}",
            "geometry.coordinates");
    refused("{\"type\":\"Point\",\"coordinates\":[11.5,48.1]}", "geometry.type");
    refused("[1,2]", "geometry");
}

/* A circle's box holds all of it, even where the distance's mean latitude
 * narrows it, and the distance agrees with the haversine. */
static void test_circle(void **state)
{
    (void)state;
    json_t *g =
        json_pack("{sss[ff]sf}", "type", "Circle", "coordinates", 11.56, 48.16, "radius_m", 5000.0);
    disp_geofence_shape s;
    char *field = NULL, *message = NULL;
    assert_int_equal(disp_geofence_shape_parse(g, &s, &field, &message), 0);
    for (int k = 0; k < 3600; k++) {
        double lon, lat, a = k * G_PI / 1800;
        offset(11.56, 48.16, 4999.9, a, &lon, &lat);
        assert_true(lon >= s.bbox[0] && lon <= s.bbox[2] && lat >= s.bbox[1] && lat <= s.bbox[3]);
        double d = disp_geofence_distance_m(11.56, 48.16, lon, lat);
        assert_true(fabs(d - haversine(11.56, 48.16, lon, lat)) < 0.05);
    }
    disp_geofence_shape_clear(&s);
    json_decref(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_against_geos),
        cmocka_unit_test(test_grid_against_geos),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_circle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

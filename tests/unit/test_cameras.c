/* Unit tests: a camera's view cone (video/cone.c) against cases worked out
 * by hand, and the ONVIF fields of the registry (cameras_check.c,
 * cameras_import.c, cameras.c's JSON). The camera stands at 7.42 E, 43.73 N (Monaco), where a
 * degree of latitude is 111 195.08 m and a degree of longitude 80 350.15 m (R = 6 371 008.8 m,
 * times cos 43.73°), so 100 m east is 0.00124455° of longitude and 100 m north 0.00089932° of
 * latitude. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/core.h"
#include "../../video/cameras_internal.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define LON 7.42
#define LAT 43.73
#define M_PER_DEG_LAT 111195.08023353292
#define M_PER_DEG_LON 80350.154492903

static vid_cone cone(double heading, double fov, double range)
{
    vid_cone c = {LON, LAT, heading, fov, range};
    return c;
}

/* The point d metres from the camera at a bearing, worked out as above. */
static void offset(double d, double bearing, double *lon, double *lat)
{
    double b = bearing * M_PI / 180;
    *lon = LON + d * sin(b) / M_PER_DEG_LON;
    *lat = LAT + d * cos(b) / M_PER_DEG_LAT;
}

static void test_straight_ahead_and_behind(void **state)
{
    (void)state;
    vid_cone c = cone(90, 60, 150); /* looking east */
    double d, b;
    /* 100 m east: dead ahead. */
    assert_int_equal(vid_cone_locate(&c, LON + 0.0012445526786, LAT, &d, &b), 0);
    assert_true(fabs(d - 100) < 1e-6);
    assert_true(fabs(b - 90) < 1e-9);
    assert_int_equal(vid_cone_sees(&c, LON + 0.0012445526786, LAT), 1);
    /* 100 m west: behind it. */
    assert_int_equal(vid_cone_locate(&c, LON - 0.0012445526786, LAT, &d, &b), 0);
    assert_true(fabs(b - 270) < 1e-9);
    assert_int_equal(vid_cone_sees(&c, LON - 0.0012445526786, LAT), 0);
    /* 100 m north: beside it, outside a 60° cone. */
    assert_int_equal(vid_cone_locate(&c, LON, LAT + 0.0008993203637, &d, &b), 0);
    assert_true(fabs(d - 100) < 1e-6);
    assert_true(fabs(b) < 1e-9);
    assert_int_equal(vid_cone_sees(&c, LON, LAT + 0.0008993203637), 0);
    /* Where the camera stands counts as seen. */
    assert_int_equal(vid_cone_sees(&c, LON, LAT), 1);
}

static void test_edges_of_the_cone(void **state)
{
    (void)state;
    vid_cone c = cone(90, 60, 150); /* the cone spans bearings 60 to 120 */
    double lon, lat;
    /* Exactly on either edge (±fov/2): seen. */
    assert_int_equal(vid_cone_sees_at(&c, 100, 120), 1);
    assert_int_equal(vid_cone_sees_at(&c, 100, 60), 1);
    offset(100, 120, &lon, &lat);
    assert_int_equal(vid_cone_sees(&c, lon, lat), 1);
    offset(100, 60, &lon, &lat);
    assert_int_equal(vid_cone_sees(&c, lon, lat), 1);
    /* Half a degree outside: not seen. */
    assert_int_equal(vid_cone_sees_at(&c, 100, 120.5), 0);
    assert_int_equal(vid_cone_sees_at(&c, 100, 59.5), 0);
    offset(100, 120.5, &lon, &lat);
    assert_int_equal(vid_cone_sees(&c, lon, lat), 0);
    offset(100, 59.5, &lon, &lat);
    assert_int_equal(vid_cone_sees(&c, lon, lat), 0);
}

static void test_range(void **state)
{
    (void)state;
    vid_cone c = cone(90, 60, 150);
    /* 150 m is the edge (seen); 151 m east is beyond. */
    assert_int_equal(vid_cone_sees_at(&c, 150, 90), 1);
    assert_int_equal(vid_cone_sees_at(&c, 150.01, 90), 0);
    double lon, lat;
    offset(150, 90, &lon, &lat);
    assert_int_equal(vid_cone_sees(&c, lon, lat), 1);
    assert_int_equal(vid_cone_sees(&c, LON + 0.0018792745447, LAT), 0);
    /* A full circle sees all around, but no farther. */
    vid_cone all = cone(0, 360, 150);
    assert_int_equal(vid_cone_sees_at(&all, 100, 180), 1);
    assert_int_equal(vid_cone_sees_at(&all, 151, 180), 0);
}

static void test_heading_wraps_around_north(void **state)
{
    (void)state;
    vid_cone c = cone(350, 40, 150); /* from 330 through north to 10 */
    /* A point at bearing 5, 100 m away: 0.00010847° E, 0.00089590° N. */
    double d, b;
    assert_int_equal(vid_cone_locate(&c, LON + 0.0001084699131, LAT + 0.0008958981782, &d, &b), 0);
    assert_true(fabs(d - 100) < 1e-6);
    assert_true(fabs(b - 5) < 1e-7);
    assert_int_equal(vid_cone_sees(&c, LON + 0.0001084699131, LAT + 0.0008958981782), 1);
    assert_int_equal(vid_cone_sees_at(&c, 100, 10), 1);
    assert_int_equal(vid_cone_sees_at(&c, 100, 330), 1);
    assert_int_equal(vid_cone_sees_at(&c, 100, 0), 1);
    assert_int_equal(vid_cone_sees_at(&c, 100, 11), 0);
    assert_int_equal(vid_cone_sees_at(&c, 100, 329), 0);
    assert_int_equal(vid_cone_sees_at(&c, 100, 170), 0);
    /* The same cone given as heading -10 or 710. */
    vid_cone neg = cone(-10, 40, 150), big = cone(710, 40, 150);
    assert_int_equal(vid_cone_sees_at(&neg, 100, 5), 1);
    assert_int_equal(vid_cone_sees_at(&big, 100, 5), 1);
    assert_int_equal(vid_cone_sees_at(&big, 100, 20), 0);
    /* Differences fold into (-180, 180]. */
    assert_true(fabs(vid_angle_diff(350, 5) - 15) < 1e-12);
    assert_true(fabs(vid_angle_diff(5, 350) + 15) < 1e-12);
    assert_true(fabs(vid_angle_diff(0, 180) - 180) < 1e-12);
    assert_true(fabs(vid_angle_diff(0, -180) - 180) < 1e-12);
}

static void test_degenerate_inputs_refused(void **state)
{
    (void)state;
    vid_cone bad[] = {
        {NAN, LAT, 90, 60, 150},  {LON, NAN, 90, 60, 150},  {LON, LAT, NAN, 60, 150},
        {LON, LAT, 90, NAN, 150}, {LON, LAT, 90, 60, NAN},  {LON, LAT, INFINITY, 60, 150},
        {LON, LAT, 90, 0, 150},   {LON, LAT, 90, -10, 150}, {LON, LAT, 90, 360.5, 150},
        {LON, LAT, 90, 60, 0},    {LON, LAT, 90, 60, -5},   {LON, LAT, 90, 60, 1e9},
        {200, LAT, 90, 60, 150},  {LON, 89.9, 90, 60, 150}, {LON, -95, 90, 60, 150},
    };
    double d, b;
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        assert_int_equal(vid_cone_check(&bad[i]), CORE_EINVAL);
        assert_int_equal(vid_cone_sees(&bad[i], LON, LAT), CORE_EINVAL);
        assert_int_equal(vid_cone_sees_at(&bad[i], 10, 90), CORE_EINVAL);
        assert_int_equal(vid_cone_locate(&bad[i], LON, LAT, &d, &b), CORE_EINVAL);
        assert_null(vid_cone_polygon(&bad[i]));
    }
    assert_int_equal(vid_cone_check(NULL), CORE_EINVAL);
    vid_cone c = cone(90, 60, 150);
    assert_int_equal(vid_cone_check(&c), 0);
    assert_int_equal(vid_cone_sees(&c, NAN, LAT), CORE_EINVAL);
    assert_int_equal(vid_cone_sees(&c, LON, INFINITY), CORE_EINVAL);
    assert_int_equal(vid_cone_sees(&c, 1e6, LAT), CORE_EINVAL);
    assert_int_equal(vid_cone_sees_at(&c, NAN, 90), CORE_EINVAL);
    assert_int_equal(vid_cone_sees_at(&c, -1, 90), CORE_EINVAL);
    assert_int_equal(vid_cone_sees_at(&c, 10, NAN), CORE_EINVAL);
    /* 360 is the widest accepted. */
    vid_cone full = cone(90, 360, 150);
    assert_int_equal(vid_cone_check(&full), 0);
}

/* Twice the signed area of a ring in lon/lat: > 0 counter-clockwise. */
static double ring_area2(json_t *ring)
{
    double a = 0;
    for (size_t i = 0; i + 1 < json_array_size(ring); i++) {
        json_t *p = json_array_get(ring, i), *q = json_array_get(ring, i + 1);
        a += json_real_value(json_array_get(p, 0)) * json_real_value(json_array_get(q, 1)) -
             json_real_value(json_array_get(q, 0)) * json_real_value(json_array_get(p, 1));
    }
    return a;
}

static void test_cone_polygon(void **state)
{
    (void)state;
    vid_cone c = cone(350, 40, 150);
    json_t *poly = vid_cone_polygon(&c);
    assert_non_null(poly);
    assert_string_equal(json_string_value(json_object_get(poly, "type")), "Polygon");
    json_t *ring = json_array_get(json_object_get(poly, "coordinates"), 0);
    size_t n = json_array_size(ring);
    /* The camera, 9 arc points (40° in 5° steps), the camera again. */
    assert_int_equal(n, 11);
    assert_true(json_equal(json_array_get(ring, 0), json_array_get(ring, n - 1)));
    assert_true(fabs(json_real_value(json_array_get(json_array_get(ring, 0), 0)) - LON) < 1e-9);
    assert_true(fabs(json_real_value(json_array_get(json_array_get(ring, 0), 1)) - LAT) < 1e-9);
    for (size_t i = 1; i + 1 < n; i++) {
        json_t *p = json_array_get(ring, i);
        double d, b;
        assert_int_equal(vid_cone_locate(&c, json_real_value(json_array_get(p, 0)),
                                         json_real_value(json_array_get(p, 1)), &d, &b),
                         0);
        assert_true(fabs(d - 150) < 0.02); /* coordinates rounded to 1e-7° (1 cm) */
        assert_true(fabs(vid_angle_diff(350, b)) <= 20.001);
    }
    assert_true(ring_area2(ring) > 0);
    json_decref(poly);
    /* A full circle has no apex: arc points only, closed. */
    vid_cone full = cone(0, 360, 100);
    poly = vid_cone_polygon(&full);
    ring = json_array_get(json_object_get(poly, "coordinates"), 0);
    assert_int_equal(json_array_size(ring), 73);
    assert_true(ring_area2(ring) > 0);
    json_decref(poly);
}

/* ---- ONVIF fields ---- */

#define BASE                                                                                       \
    "\"name\":\"Port\",\"agency\":\"police\",\"lon\":7.42,\"lat\":43.73,\"heading\":90,"           \
    "\"fov\":60,\"rtsp_url\":\"rtsp://10.0.0.5/cam\""

/* Checks a create body: 0 and *out, or the refused field (g_free). */
static int check(vid_cameras *c, const char *text, json_t **out, char **field)
{
    json_t *body = json_loads(text, 0, NULL);
    assert_non_null(body);
    char *message = NULL;
    *field = NULL;
    int rc = vid__camera_check(c, body, 1, out, field, &message);
    if (rc)
        assert_non_null(message);
    g_free(message);
    json_decref(body);
    return rc;
}

static void test_onvif_fields_checked(void **state)
{
    vid_cameras *c = vid_cameras_new(NULL, NULL);
    json_t *out = NULL;
    char *field = NULL;
    assert_int_equal(check(c,
                           "{" BASE ",\"onvif_url\":\"http://10.0.0.5/onvif/device_service\","
                           "\"onvif_profile\":\"Profile_1\"}",
                           &out, &field),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "onvif_url")),
                        "http://10.0.0.5/onvif/device_service");
    assert_string_equal(json_string_value(json_object_get(out, "onvif_profile")), "Profile_1");
    json_decref(out);
    /* Absent or null: stored as "". */
    assert_int_equal(check(c, "{" BASE "}", &out, &field), 0);
    assert_string_equal(json_string_value(json_object_get(out, "onvif_url")), "");
    assert_string_equal(json_string_value(json_object_get(out, "onvif_profile")), "");
    json_decref(out);
    assert_int_equal(check(c, "{" BASE ",\"onvif_url\":null,\"onvif_profile\":null}", &out, &field),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "onvif_url")), "");
    json_decref(out);
    assert_int_equal(
        check(c, "{" BASE ",\"onvif_url\":\"https://[fd00::5]:8443/onvif/device\"}", &out, &field),
        0);
    json_decref(out);
    static const char *const bad_urls[] = {
        "\"rtsp://10.0.0.5/onvif\"",
        "\"ftp://10.0.0.5/\"",
        "\"http://admin:pw@10.0.0.5/onvif\"",
        "\"http:///onvif\"",
        "\"not a url\"",
        "\"http://10.0.0.5/a b\"",
        "42",
        "true",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad_urls); i++) {
        char *text = g_strdup_printf("{" BASE ",\"onvif_url\":%s}", bad_urls[i]);
        assert_int_equal(check(c, text, &out, &field), CORE_EINVAL);
        assert_string_equal(field, "onvif_url");
        g_free(field);
        g_free(text);
    }
    char *long_url = g_strnfill(2100, 'a');
    char *text = g_strdup_printf("{" BASE ",\"onvif_url\":\"http://10.0.0.5/%s\"}", long_url);
    assert_int_equal(check(c, text, &out, &field), CORE_EINVAL);
    assert_string_equal(field, "onvif_url");
    g_free(field);
    g_free(text);
    g_free(long_url);
    char *long_token = g_strnfill(65, 't');
    text = g_strdup_printf("{" BASE ",\"onvif_profile\":\"%s\"}", long_token);
    assert_int_equal(check(c, text, &out, &field), CORE_EINVAL);
    assert_string_equal(field, "onvif_profile");
    g_free(field);
    g_free(text);
    g_free(long_token);
    assert_int_equal(check(c, "{" BASE ",\"onvif_profile\":\"a\\u0001b\"}", &out, &field),
                     CORE_EINVAL);
    assert_string_equal(field, "onvif_profile");
    g_free(field);
    assert_int_equal(check(c, "{" BASE ",\"onvif_profile\":7}", &out, &field), CORE_EINVAL);
    assert_string_equal(field, "onvif_profile");
    g_free(field);
    vid_cameras_free(c);
}

static void test_onvif_fields_in_json(void **state)
{
    vid_camera cam = {.id = 3,
                      .name = "Port",
                      .agency = "police",
                      .rtsp_url = "rtsp://10.0.0.5/cam",
                      .username = "admin",
                      .password = "secret",
                      .codec = "",
                      .onvif_url = "http://10.0.0.5/onvif/device_service",
                      .onvif_profile = "",
                      .ptz = 1};
    json_t *j = vid_camera_json(&cam);
    assert_string_equal(json_string_value(json_object_get(j, "onvif_url")),
                        "http://10.0.0.5/onvif/device_service");
    assert_true(json_is_null(json_object_get(j, "onvif_profile")));
    assert_true(json_is_true(json_object_get(j, "credentials")));
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "secret"));
    assert_null(strstr(text, "admin"));
    free(text);
    json_decref(j);
    cam.onvif_url = "";
    cam.onvif_profile = "main";
    j = vid_camera_json(&cam);
    assert_true(json_is_null(json_object_get(j, "onvif_url")));
    assert_string_equal(json_string_value(json_object_get(j, "onvif_profile")), "main");
    json_decref(j);
}

static void test_onvif_import_columns(void **state)
{
    vid_cameras *c = vid_cameras_new(NULL, NULL);
    const char *csv = "name,agency,lon,lat,heading,fov,rtsp_url,ptz,onvif_url,onvif_profile\n"
                      "A,police,7.42,43.73,90,60,rtsp://10.0.0.5/a,yes,"
                      "http://10.0.0.5/onvif/device_service, main \n"
                      "B,police,7.42,43.73,90,60,rtsp://10.0.0.6/b,no,,\n";
    json_t *rows = NULL;
    char *where = NULL, *field = NULL, *message = NULL;
    assert_int_equal(vid_cameras_parse_csv(c, csv, strlen(csv), &rows, &where, &field, &message),
                     0);
    assert_int_equal(json_array_size(rows), 2);
    json_t *a = json_object_get(json_array_get(rows, 0), "camera");
    json_t *b = json_object_get(json_array_get(rows, 1), "camera");
    assert_string_equal(json_string_value(json_object_get(a, "onvif_url")),
                        "http://10.0.0.5/onvif/device_service");
    assert_string_equal(json_string_value(json_object_get(a, "onvif_profile")), "main");
    assert_string_equal(json_string_value(json_object_get(b, "onvif_url")), "");
    json_decref(rows);
    /* A bad address names its line and column. */
    const char *bad = "name,agency,lon,lat,heading,fov,rtsp_url,onvif_url\n"
                      "A,police,7.42,43.73,90,60,rtsp://10.0.0.5/a,http://10.0.0.5/x\n"
                      "B,police,7.42,43.73,90,60,rtsp://10.0.0.6/b,rtsp://10.0.0.6/onvif\n";
    assert_int_equal(vid_cameras_parse_csv(c, bad, strlen(bad), &rows, &where, &field, &message),
                     CORE_EINVAL);
    assert_string_equal(where, "line 3");
    assert_string_equal(field, "onvif_url");
    g_free(where);
    g_free(field);
    g_free(message);
    /* GeoJSON: the same fields as properties. */
    json_t *doc = json_loads(
        "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\","
        "\"geometry\":{\"type\":\"Point\",\"coordinates\":[7.42,43.73]},\"properties\":{"
        "\"name\":\"G\",\"agency\":\"fire\",\"heading\":10,\"fov\":90,"
        "\"rtsp_url\":\"rtsp://10.0.0.7/g\",\"onvif_url\":\"http://10.0.0.7/onvif/device_service\","
        "\"onvif_profile\":\"prof\"}}]}",
        0, NULL);
    assert_int_equal(vid_cameras_parse_geojson(c, doc, &rows, &where, &field, &message), 0);
    json_t *g = json_object_get(json_array_get(rows, 0), "camera");
    assert_string_equal(json_string_value(json_object_get(g, "onvif_profile")), "prof");
    json_decref(rows);
    json_decref(doc);
    vid_cameras_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_straight_ahead_and_behind),
        cmocka_unit_test(test_edges_of_the_cone),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_heading_wraps_around_north),
        cmocka_unit_test(test_degenerate_inputs_refused),
        cmocka_unit_test(test_cone_polygon),
        cmocka_unit_test(test_onvif_fields_checked),
        cmocka_unit_test(test_onvif_fields_in_json),
        cmocka_unit_test(test_onvif_import_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

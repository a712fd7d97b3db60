/*
 * Unit tests: gis — the GeoJSON input checks, and the spatial answers of the
 * loaded demo city against brute force.
 *
 * The reference answers do not use the city's code: the test reads
 * city.gpkg itself with GDAL/OGR, builds the local projection itself with
 * PROJ (the transverse Mercator on city.json's centre that docs/CITY.md
 * describes), and for each random point (fixed seed) tests every district
 * with GEOSIntersects_r and measures every road with GEOSDistance_r — no
 * index, no prepared geometry. gis_districts_at and gis_nearest_road, with
 * their STR trees, must give the same answers on every point.
 *
 * The demo city's directory comes from CITYCMD_CITY (set by ctest; the
 * build makes the package). The city is loaded once for all the tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/log.h"
#include "../../gis/gis.h"

#include <gdal.h>
#include <geos_c.h>
#include <glib.h>
#include <math.h>
#include <ogr_api.h>
#include <proj.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261121
#define DISTRICT_POINTS 5000
#define ROAD_POINTS 2000

/* A feature of city.gpkg as the test reads it: local metres. */
typedef struct {
    int64_t fid;
    char *kind, *name;
    GEOSGeometry *g;
} ref_feature;

typedef struct {
    gis_city *city;
    char *dir;
    double bbox[4]; /* w, s, e, n */
    char *local_crs;
    GEOSContextHandle_t h;
    PJ_CONTEXT *pctx;
    PJ *pj;                /* lon/lat -> local x/y */
    GPtrArray *districts;  /* ref_feature* */
    GPtrArray *roads;      /* ref_feature* */
    GPtrArray *stations;   /* ref_feature* */
    GHashTable *road_fids; /* int64 fid -> ref_feature* */
} fx;

/* ---- reading the package independently ---- */

static int to_local_xy(double *x, double *y, void *pj)
{
    PJ_COORD c = proj_trans(pj, PJ_FWD, proj_coord(*x, *y, 0, 0));
    *x = c.xy.x;
    *y = c.xy.y;
    return isfinite(*x) && isfinite(*y);
}

static GEOSGeometry *local_point(fx *f, double lon, double lat)
{
    double x = lon, y = lat;
    assert_true(to_local_xy(&x, &y, f->pj));
    return GEOSGeom_createPointFromXY_r(f->h, x, y);
}

static GEOSGeometry *ogr_to_local(fx *f, OGRGeometryH g)
{
    size_t n = (size_t)OGR_G_WkbSize(g);
    unsigned char *wkb = g_malloc(n);
    assert_int_equal(OGR_G_ExportToWkb(g, wkbNDR, wkb), OGRERR_NONE);
    GEOSWKBReader *r = GEOSWKBReader_create_r(f->h);
    GEOSGeometry *wgs84 = GEOSWKBReader_read_r(f->h, r, wkb, n);
    GEOSWKBReader_destroy_r(f->h, r);
    g_free(wkb);
    assert_non_null(wgs84);
    GEOSGeometry *local = GEOSGeom_transformXY_r(f->h, wgs84, to_local_xy, f->pj);
    GEOSGeom_destroy_r(f->h, wgs84);
    assert_non_null(local);
    return local;
}

static char *field(OGRFeatureH feat, const char *name)
{
    int i = OGR_F_GetFieldIndex(feat, name);
    return g_strdup(i >= 0 && OGR_F_IsFieldSetAndNotNull(feat, i) ? OGR_F_GetFieldAsString(feat, i)
                                                                  : "");
}

static GPtrArray *read_layer(fx *f, GDALDatasetH ds, const char *name)
{
    OGRLayerH l = GDALDatasetGetLayerByName(ds, name);
    if (!l)
        fail_msg("city.gpkg has no layer %s", name);
    GPtrArray *out = g_ptr_array_new();
    OGRFeatureH feat;
    OGR_L_ResetReading(l);
    while ((feat = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(feat);
        if (g) {
            ref_feature *r = g_new0(ref_feature, 1);
            r->fid = OGR_F_GetFID(feat);
            r->kind = field(feat, "kind");
            r->name = field(feat, "name");
            r->g = ogr_to_local(f, g);
            g_ptr_array_add(out, r);
        }
        OGR_F_Destroy(feat);
    }
    return out;
}

static void free_layer(fx *f, GPtrArray *a)
{
    for (guint i = 0; a && i < a->len; i++) {
        ref_feature *r = a->pdata[i];
        GEOSGeom_destroy_r(f->h, r->g);
        g_free(r->kind);
        g_free(r->name);
        g_free(r);
    }
    if (a)
        g_ptr_array_free(a, TRUE);
}

/* city.json's bbox and centre, and the local projection made from the centre. */
static void read_meta(fx *f)
{
    char *path = g_build_filename(f->dir, "city.json", NULL);
    json_error_t jerr;
    json_t *meta = json_load_file(path, 0, &jerr);
    if (!meta)
        fail_msg("%s: %s", path, jerr.text);
    g_free(path);
    json_t *bbox = json_object_get(meta, "bbox"), *center = json_object_get(meta, "center");
    assert_int_equal(json_array_size(bbox), 4);
    assert_int_equal(json_array_size(center), 2);
    for (size_t i = 0; i < 4; i++)
        f->bbox[i] = json_number_value(json_array_get(bbox, i));
    double lon0 = json_number_value(json_array_get(center, 0)),
           lat0 = json_number_value(json_array_get(center, 1));
    json_decref(meta);
    /* The centre to 1e-7 degree (1 cm), as the package's definition has it:
     * test_local_projection checks that the city reports this very string. */
    f->local_crs = g_strdup_printf("+proj=tmerc +lat_0=%.7f +lon_0=%.7f +k=1 +x_0=0 +y_0=0"
                                   " +datum=WGS84 +units=m +no_defs +type=crs",
                                   lat0, lon0);
    f->pctx = proj_context_create();
    PJ *p = proj_create_crs_to_crs(f->pctx, "EPSG:4326", f->local_crs, NULL);
    assert_non_null(p);
    f->pj = proj_normalize_for_visualization(f->pctx, p);
    proj_destroy(p);
    assert_non_null(f->pj);
}

static int group_setup(void **state)
{
    fx *f = g_new0(fx, 1);
    *state = f;
    core_log_set_level(CORE_LOG_WARN);
    const char *dir = g_getenv("CITYCMD_CITY");
    if (!dir) {
        print_error("CITYCMD_CITY is not set (ctest sets it to the demo city)\n");
        return -1;
    }
    f->dir = g_strdup(dir);
    char *err = NULL;
    f->city = gis_city_load(f->dir, &err);
    if (!f->city) {
        print_error("gis_city_load %s: %s\n", f->dir, err);
        g_free(err);
        return -1;
    }
    read_meta(f);
    f->h = GEOS_init_r();
    GDALAllRegister();
    char *gpkg = g_build_filename(f->dir, "city.gpkg", NULL);
    GDALDatasetH ds = GDALOpenEx(gpkg, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    g_free(gpkg);
    if (!ds) {
        print_error("cannot open city.gpkg in %s\n", f->dir);
        return -1;
    }
    f->districts = read_layer(f, ds, "districts");
    f->roads = read_layer(f, ds, "roads");
    f->stations = read_layer(f, ds, "stations");
    GDALClose(ds);
    f->road_fids = g_hash_table_new(g_int64_hash, g_int64_equal);
    for (guint i = 0; i < f->roads->len; i++) {
        ref_feature *r = f->roads->pdata[i];
        g_hash_table_insert(f->road_fids, &r->fid, r);
    }
    return 0;
}

static int group_teardown(void **state)
{
    fx *f = *state;
    if (!f)
        return 0;
    if (f->road_fids)
        g_hash_table_destroy(f->road_fids);
    if (f->h) {
        free_layer(f, f->districts);
        free_layer(f, f->roads);
        free_layer(f, f->stations);
        GEOS_finish_r(f->h);
    }
    proj_destroy(f->pj);
    if (f->pctx)
        proj_context_destroy(f->pctx);
    gis_city_free(f->city);
    g_free(f->local_crs);
    g_free(f->dir);
    g_free(f);
    return 0;
}

/* ---- GeoJSON checks ---- */

static void accepts(const char *geojson)
{
    json_t *g = json_loads(geojson, 0, NULL);
    assert_non_null(g);
    char *why = NULL;
    int rc = gis_geojson_check(g, GIS_MAX_VERTICES, &why);
    if (rc)
        fail_msg("refused %s: %s", geojson, why);
    assert_null(why);
    json_decref(g);
}

/* Refused with CORE_EINVAL and a message; returns the message (g_free). */
static char *refuses(const char *geojson, size_t max_vertices)
{
    json_t *g = json_loads(geojson, 0, NULL);
    assert_non_null(g);
    char *why = NULL;
    int rc = gis_geojson_check(g, max_vertices, &why);
    json_decref(g);
    if (rc != CORE_EINVAL)
        fail_msg("%s: got %d, expected CORE_EINVAL", geojson, rc);
    assert_non_null(why);
    assert_true(*why != '\0');
    return why;
}

static void refuses_saying(const char *geojson, size_t max_vertices, const char *word)
{
    char *why = refuses(geojson, max_vertices);
    char *lower = g_ascii_strdown(why, -1);
    if (!strstr(lower, word))
        fail_msg("%s: message \"%s\" does not mention \"%s\"", geojson, why, word);
    g_free(lower);
    g_free(why);
}

static void test_geojson_check(void **state)
{
    accepts("{\"type\":\"Point\",\"coordinates\":[7.42,43.74]}");
    accepts("{\"type\":\"Point\",\"coordinates\":[-180,-90,12.5]}");
    accepts("{\"type\":\"MultiPoint\",\"coordinates\":[[7.42,43.74]]}");
    accepts("{\"type\":\"LineString\",\"coordinates\":[[7.41,43.73],[7.42,43.74]]}");
    accepts("{\"type\":\"Polygon\",\"coordinates\":[[[7.41,43.73],[7.43,43.73],[7.43,43.75],"
            "[7.41,43.75],[7.41,43.73]]]}");
    accepts("{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],[0,10],[0,0]],"
            "[[2,2],[2,4],[4,4],[4,2],[2,2]]]}");
    accepts("{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[1,0],[1,1],[0,1],[0,0]]],"
            "[[[5,5],[6,5],[6,6],[5,6],[5,5]]]]}");

    refuses_saying("{\"type\":\"Point\",\"coordinates\":[1e308,43]}", GIS_MAX_VERTICES, "outside");
    refuses_saying("{\"type\":\"Point\",\"coordinates\":[7.42,91]}", GIS_MAX_VERTICES, "outside");
    refuses_saying("{\"type\":\"LineString\",\"coordinates\":[[7.41,43.73],[7.42,-90.5]]}",
                   GIS_MAX_VERTICES, "outside");
    refuses_saying("{\"type\":\"Point\",\"coordinates\":[\"7.42\",43.74]}", GIS_MAX_VERTICES,
                   "not a number");
    refuses_saying("{\"type\":\"Point\",\"coordinates\":[7.42,null]}", GIS_MAX_VERTICES,
                   "not a number");
    refuses_saying("{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,1],[0,0.5]]]}",
                   GIS_MAX_VERTICES, "not closed");
    refuses_saying("{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[0,0]]]}", GIS_MAX_VERTICES,
                   "four");
    refuses_saying("{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[1,0],[1,1],[0,0]]],"
                   "[[[5,5],[6,5],[5,5]]]]}",
                   GIS_MAX_VERTICES, "four");
    /* The bow-tie: closed, enough positions, but its edges cross. */
    refuses_saying("{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}",
                   GIS_MAX_VERTICES, "invalid");
    refuses_saying("{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}",
                   GIS_MAX_VERTICES, "self-intersection");
    const char *five = "{\"type\":\"LineString\",\"coordinates\":[[0,0],[1,0],[2,0],[3,0],[4,0]]}";
    refuses_saying(five, 4, "vertices");
    json_t *g = json_loads(five, 0, NULL);
    char *why = NULL;
    assert_int_equal(gis_geojson_check(g, 5, &why), 0); /* exactly at the limit */
    json_decref(g);
    refuses_saying("{\"type\":\"Circle\",\"coordinates\":[7.42,43.74]}", GIS_MAX_VERTICES,
                   "circle");
    refuses_saying("{\"type\":\"Point\"}", GIS_MAX_VERTICES, "coordinates");
    refuses_saying("{\"coordinates\":[7.42,43.74]}", GIS_MAX_VERTICES, "type");

    assert_true(gis_lonlat_valid(7.42, 43.74));
    assert_true(gis_lonlat_valid(-180, 90));
    assert_false(gis_lonlat_valid(NAN, 43.74));
    assert_false(gis_lonlat_valid(7.42, NAN));
    assert_false(gis_lonlat_valid(INFINITY, 43.74));
    assert_false(gis_lonlat_valid(7.42, -INFINITY));
    assert_false(gis_lonlat_valid(180.000001, 0));
}

/* ---- the city against brute force ---- */

static void random_point(fx *f, GRand *rnd, double *lon, double *lat)
{
    *lon = g_rand_double_range(rnd, f->bbox[0], f->bbox[2]);
    *lat = g_rand_double_range(rnd, f->bbox[1], f->bbox[3]);
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "kind:name" of each district, sorted, joined with " | " (g_free). */
static char *district_list(GPtrArray *keys)
{
    g_ptr_array_sort(keys, cmp_str);
    g_ptr_array_add(keys, NULL);
    char *s = g_strjoinv(" | ", (char **)keys->pdata);
    g_ptr_array_free(keys, TRUE);
    return s;
}

static char *brute_districts(fx *f, double lon, double lat)
{
    GEOSGeometry *pt = local_point(f, lon, lat);
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < f->districts->len; i++) {
        ref_feature *d = f->districts->pdata[i];
        char in = GEOSIntersects_r(f->h, d->g, pt);
        if (in == 2)
            fail_msg("GEOSIntersects_r failed on district %s", d->name);
        if (in)
            g_ptr_array_add(keys, g_strdup_printf("%s:%s", d->kind, d->name));
    }
    GEOSGeom_destroy_r(f->h, pt);
    return district_list(keys);
}

static char *city_districts(fx *f, double lon, double lat, guint *n)
{
    json_t *a = gis_districts_at(f->city, lon, lat, NULL);
    assert_true(json_is_array(a));
    *n = (guint)json_array_size(a);
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    size_t i;
    json_t *d;
    json_array_foreach(a, i, d)
    {
        const char *kind = json_string_value(json_object_get(d, "kind"));
        const char *name = json_string_value(json_object_get(d, "name"));
        assert_non_null(kind);
        assert_non_null(name);
        g_ptr_array_add(keys, g_strdup_printf("%s:%s", kind, name));
    }
    json_decref(a);
    return district_list(keys);
}

static void test_local_projection(void **state)
{
    fx *f = *state;
    /* The city computes in the projection this test builds, or the
     * brute-force distances below would not be comparable. */
    json_t *info = gis_city_info(f->city);
    assert_string_equal(json_string_value(json_object_get(info, "local_crs")), f->local_crs);
    json_t *counts = json_object_get(info, "layers");
    assert_int_equal(json_integer_value(json_object_get(counts, "districts")), f->districts->len);
    assert_int_equal(json_integer_value(json_object_get(counts, "roads")), f->roads->len);
    json_decref(info);
    assert_true(f->districts->len > 0);
    assert_true(f->roads->len > 0);
}

static void test_districts_match_brute_force(void **state)
{
    fx *f = *state;
    GRand *rnd = g_rand_new_with_seed(SEED);
    int wrong = 0, inside = 0, several = 0;
    for (int i = 0; i < DISTRICT_POINTS; i++) {
        double lon, lat;
        random_point(f, rnd, &lon, &lat);
        guint n;
        char *want = brute_districts(f, lon, lat);
        char *got = city_districts(f, lon, lat, &n);
        if (strcmp(want, got) != 0 && wrong++ < 10)
            print_error("point %.7f,%.7f: brute force [%s], gis_districts_at [%s]\n", lon, lat,
                        want, got);
        inside += n > 0;
        several += n > 1;
        g_free(want);
        g_free(got);
    }
    g_rand_free(rnd);
    assert_int_equal(wrong, 0);
    /* Not vacuous: many points fall in a district, many in overlapping ones. */
    assert_true(inside > DISTRICT_POINTS / 10);
    assert_true(several > DISTRICT_POINTS / 20);
}

static void test_districts_edge_cases(void **state)
{
    fx *f = *state;
    json_t *a = gis_districts_at(f->city, NAN, 43.74, NULL);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    a = gis_districts_at(f->city, 7.42, INFINITY, NULL);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    /* A kind filter keeps exactly the brute-force districts of that kind. */
    double lon = 7.4205, lat = 43.7325; /* La Condamine */
    a = gis_districts_at(f->city, lon, lat, "admin");
    guint n_admin = 0;
    size_t i;
    json_t *d;
    json_array_foreach(a, i, d)
    {
        assert_string_equal(json_string_value(json_object_get(d, "kind")), "admin");
        n_admin++;
    }
    json_decref(a);
    GEOSGeometry *pt = local_point(f, lon, lat);
    guint want = 0;
    for (guint k = 0; k < f->districts->len; k++) {
        ref_feature *r = f->districts->pdata[k];
        want += strcmp(r->kind, "admin") == 0 && GEOSIntersects_r(f->h, r->g, pt) == 1;
    }
    GEOSGeom_destroy_r(f->h, pt);
    assert_true(want > 0);
    assert_int_equal(n_admin, want);
}

/* The smallest distance from pt to any road (named ones only when named). */
static double brute_nearest(fx *f, const GEOSGeometry *pt, int named)
{
    double best = INFINITY;
    for (guint i = 0; i < f->roads->len; i++) {
        ref_feature *r = f->roads->pdata[i];
        double d;
        if (named && !*r->name)
            continue;
        assert_int_equal(GEOSDistance_r(f->h, r->g, pt, &d), 1);
        if (d < best)
            best = d;
    }
    return best;
}

/* The hit names a real road at the distance it reports, and its point is on it. */
static void check_hit(fx *f, const GEOSGeometry *pt, const gis_road_hit *hit)
{
    ref_feature *r = g_hash_table_lookup(f->road_fids, &hit->id);
    assert_non_null(r);
    assert_string_equal(hit->name, r->name);
    double d;
    assert_int_equal(GEOSDistance_r(f->h, r->g, pt, &d), 1);
    assert_true(fabs(d - hit->distance_m) <= 1e-6);
    GEOSGeometry *on = local_point(f, hit->lon, hit->lat);
    assert_int_equal(GEOSDistance_r(f->h, r->g, on, &d), 1);
    assert_true(d < 1e-3);
    assert_int_equal(GEOSDistance_r(f->h, on, pt, &d), 1);
    assert_true(fabs(d - hit->distance_m) < 1e-3);
    GEOSGeom_destroy_r(f->h, on);
}

static void test_nearest_road_matches_brute_force(void **state)
{
    fx *f = *state;
    GRand *rnd = g_rand_new_with_seed(SEED + 1);
    int wrong = 0, named_differs = 0;
    for (int i = 0; i < ROAD_POINTS; i++) {
        double lon, lat;
        random_point(f, rnd, &lon, &lat);
        GEOSGeometry *pt = local_point(f, lon, lat);
        double want_any = brute_nearest(f, pt, 0), want_named = brute_nearest(f, pt, 1);
        gis_road_hit any, named;
        assert_int_equal(gis_nearest_road(f->city, lon, lat, 1e9, 0, &any), 0);
        assert_int_equal(gis_nearest_road(f->city, lon, lat, 1e9, 1, &named), 0);
        if ((fabs(any.distance_m - want_any) > 1e-6 ||
             fabs(named.distance_m - want_named) > 1e-6) &&
            wrong++ < 10)
            print_error("point %.7f,%.7f: brute force %.9f m (named %.9f m), gis_nearest_road "
                        "%.9f m (named %.9f m)\n",
                        lon, lat, want_any, want_named, any.distance_m, named.distance_m);
        assert_true(*named.name != '\0');
        named_differs += want_named > want_any;
        check_hit(f, pt, &any);
        check_hit(f, pt, &named);
        /* max_m is a hard limit: just under the nearest distance finds nothing. */
        if (want_any > 1) {
            gis_road_hit none;
            assert_int_equal(gis_nearest_road(f->city, lon, lat, want_any - 0.5, 0, &none),
                             CORE_ENOTFOUND);
        }
        GEOSGeom_destroy_r(f->h, pt);
    }
    g_rand_free(rnd);
    assert_int_equal(wrong, 0);
    /* Not vacuous: the nearest road is often unnamed, so named_only matters. */
    assert_true(named_differs > ROAD_POINTS / 20);
    gis_road_hit hit;
    assert_int_equal(gis_nearest_road(f->city, NAN, 43.74, 1e9, 0, &hit), CORE_ENOTFOUND);
}

/* ---- search and point layers ---- */

static int has_name(const json_t *results, const char *name)
{
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r)
    {
        const char *n = json_string_value(json_object_get(r, "name"));
        if (n && strstr(n, name))
            return 1;
    }
    return 0;
}

static void test_search(void **state)
{
    fx *f = *state;
    json_t *plain = gis_search(f->city, "princesse grace", 10);
    json_t *shouted = gis_search(f->city, "PRINCESSE GRÂCE", 10);
    assert_true(json_array_size(plain) > 0);
    assert_true(has_name(plain, "Princesse Grace"));
    assert_true(has_name(shouted, "Princesse Grace"));
    assert_true(json_equal(plain, shouted));
    json_decref(plain);
    json_decref(shouted);
    json_t *none = gis_search(f->city, "zzzz no such street", 10);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
}

/* Stations within radius of a point, by brute force. */
static guint brute_stations(fx *f, double lon, double lat, double radius)
{
    GEOSGeometry *pt = local_point(f, lon, lat);
    guint n = 0;
    for (guint i = 0; i < f->stations->len; i++) {
        double d;
        ref_feature *s = f->stations->pdata[i];
        assert_int_equal(GEOSDistance_r(f->h, s->g, pt, &d), 1);
        n += d <= radius;
    }
    GEOSGeom_destroy_r(f->h, pt);
    return n;
}

static void test_points_near(void **state)
{
    fx *f = *state;
    static const struct {
        double lon, lat, radius;
    } cases[] = {
        {7.4198, 43.7425, 1000}, {7.4205, 43.7325, 400},  {7.4280, 43.7400, 800},
        {7.4100, 43.7300, 1500}, {7.4400, 43.7500, 2500},
    };
    guint found = 0;
    for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
        double lon = cases[c].lon, lat = cases[c].lat, radius = cases[c].radius;
        json_t *a = gis_points_near(f->city, "stations", lon, lat, radius, 1000);
        assert_non_null(a);
        assert_int_equal(json_array_size(a), brute_stations(f, lon, lat, radius));
        found += (guint)json_array_size(a);
        double prev = -1;
        size_t i;
        json_t *p;
        json_array_foreach(a, i, p)
        {
            json_t *d = json_object_get(p, "distance_m");
            assert_true(json_is_number(d));
            assert_true(json_number_value(d) >= prev);
            assert_true(json_number_value(d) <= radius);
            prev = json_number_value(d);
        }
        json_decref(a);
    }
    assert_true(found > G_N_ELEMENTS(cases));
    assert_null(gis_points_near(f->city, "no_such_layer", 7.4198, 43.7425, 1000, 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geojson_check),
        cmocka_unit_test(test_local_projection),
        cmocka_unit_test(test_districts_match_brute_force),
        cmocka_unit_test(test_districts_edge_cases),
        cmocka_unit_test(test_nearest_road_matches_brute_force),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_points_near),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

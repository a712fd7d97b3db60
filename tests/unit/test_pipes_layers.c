/* Unit tests: pipe networks from GIS layers, and networks in city packages.
 *
 * The ky4 network (WNTR's example data, CITYCMD_WATER_DATA) read from its
 * EPANET file and from its GeoJSON layers moved into a CGCS2000
 * Gauss-Krüger zone (via a 205° longitude shift, an exact isometry of the
 * ellipsoid) gives the same network: the same elements, valves, segments
 * and the same isolation answer for every pipe. Snapping on a hand-made
 * layer; a save/load round trip of the demo city's generated water network
 * (CITYCMD_CITY); and broken input refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../gis/pipes.h"

#include <gdal.h>
#include <gdal_utils.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHIFTED_LONLAT "+proj=longlat +ellps=GRS80 +pm=205 +no_defs"

static const char *water_data(void)
{
    const char *d = getenv("CITYCMD_WATER_DATA");
    return d ? d : "../shared/data/water";
}

static const char *city(void)
{
    const char *c = getenv("CITYCMD_CITY");
    return c ? c : "build/city/monaco";
}

static char *data_file(const char *name)
{
    return g_build_filename(water_data(), name, NULL);
}

static void rm_rf(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *e;
    while (d && (e = g_dir_read_name(d))) {
        char *p = g_build_filename(dir, e, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR))
            rm_rf(p);
        else
            g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(dir);
}

/* ogr2ogr: src to dst with the given options (NULL-terminated). */
static void translate(const char *dst, const char *src, const char *const *args)
{
    GDALDatasetH in = GDALOpenEx(src, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    assert_non_null(in);
    GDALVectorTranslateOptions *o = GDALVectorTranslateOptionsNew((char **)args, NULL);
    assert_non_null(o);
    int usage_error = 0;
    GDALDatasetH out = GDALVectorTranslate(dst, NULL, 1, &in, o, &usage_error);
    if (!out)
        fail_msg("ogr2ogr %s -> %s: %s", src, dst, CPLGetLastErrorMsg());
    GDALClose(out);
    GDALVectorTranslateOptionsFree(o);
    GDALClose(in);
}

/* A layer of ky4 (EPSG:3547) moved to the Gauss-Krüger zone of 120°E as
 * layer `layer` of gk (appended when the file exists): to WGS84, that
 * lon/lat declared as lon/lat 205° east of Greenwich, then to the zone.
 * kind: a `kind` field to add, or NULL. */
static void to_zone(const char *tmp, const char *gk, const char *src, const char *tag,
                    const char *layer, const char *kind)
{
    char *wgs = g_strdup_printf("%s/%s.geojson", tmp, tag);
    const char *a1[] = {"-t_srs", "EPSG:4326", "-f", "GeoJSON", "-nln", tag, NULL};
    translate(wgs, src, a1);
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    const char *base[] = {"-s_srs", SHIFTED_LONLAT, "-t_srs", "EPSG:4549",
                          "-f",     "GPKG",         "-nln",   layer};
    for (size_t i = 0; i < G_N_ELEMENTS(base); i++)
        g_ptr_array_add(a, g_strdup(base[i]));
    if (g_file_test(gk, G_FILE_TEST_EXISTS)) {
        g_ptr_array_add(a, g_strdup("-update"));
        g_ptr_array_add(a, g_strdup("-append"));
        g_ptr_array_add(a, g_strdup("-addfields"));
    }
    if (kind) {
        g_ptr_array_add(a, g_strdup("-dialect"));
        g_ptr_array_add(a, g_strdup("SQLite"));
        g_ptr_array_add(a, g_strdup("-sql"));
        g_ptr_array_add(a, g_strdup_printf("SELECT *, '%s' AS kind FROM \"%s\"", kind, tag));
    }
    g_ptr_array_add(a, NULL);
    translate(gk, wgs, (const char *const *)a->pdata);
    g_ptr_array_free(a, TRUE);
    g_free(wgs);
}

/* ky4's pumps are points (the pump's two nodes share a place): the same
 * as zero-length lines, kind pump, in the pipes' CRS. */
static char *pump_lines(const char *tmp)
{
    char *src = data_file("ky4_pumps.geojson"), *dst = g_build_filename(tmp, "pumps.geojson", NULL);
    json_t *fc = json_load_file(src, 0, NULL);
    assert_non_null(fc);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(fc, "features"), i, f)
    {
        json_t *c = json_object_get(json_object_get(f, "geometry"), "coordinates");
        json_object_set_new(json_object_get(f, "properties"), "kind", json_string("pump"));
        json_object_set_new(f, "geometry",
                            json_pack("{ss s[OO]}", "type", "LineString", "coordinates", c, c));
    }
    assert_int_equal(json_dump_file(fc, dst, 0), 0);
    json_decref(fc);
    g_free(src);
    return dst;
}

/* ---- the valve layer ---- */

typedef struct {
    char *link, *node;
} valve_pair;

/* Strategic 1: at a node of degree d, valves on d-1 of its links (pipes
 * only), picked with a fixed seed. */
static GArray *strategic_valves(const gis_pipenet *n)
{
    size_t nn = gis_pipenet_node_count(n);
    GArray **inc = g_new0(GArray *, nn);
    for (size_t j = 0; j < gis_pipenet_link_count(n); j++) {
        const gis_pipe_link *l = gis_pipenet_link(n, j);
        int e[2] = {l->from, l->to};
        for (int k = 0; k < 2; k++) {
            if (!inc[e[k]])
                inc[e[k]] = g_array_new(FALSE, FALSE, sizeof(int));
            int jj = (int)j;
            g_array_append_val(inc[e[k]], jj);
        }
    }
    GRand *r = g_rand_new_with_seed(1234);
    GArray *out = g_array_new(FALSE, FALSE, sizeof(valve_pair));
    for (size_t v = 0; v < nn; v++) {
        GArray *a = inc[v];
        if (!a)
            continue;
        int skip = g_rand_int_range(r, 0, (gint32)a->len);
        for (guint k = 0; k < a->len; k++) {
            const gis_pipe_link *l = gis_pipenet_link(n, (size_t)g_array_index(a, int, k));
            if ((int)k == skip || l->kind != GIS_LINK_PIPE)
                continue;
            valve_pair p = {g_strdup(l->id), g_strdup(gis_pipenet_node(n, v)->id)};
            g_array_append_val(out, p);
        }
        g_array_free(a, TRUE);
    }
    g_rand_free(r);
    g_free(inc);
    return out;
}

static void valves_free(GArray *v)
{
    for (guint i = 0; i < v->len; i++)
        g_free(g_array_index(v, valve_pair, i).link), g_free(g_array_index(v, valve_pair, i).node);
    g_array_free(v, TRUE);
}

static char *valves_csv(const char *tmp, const GArray *valves)
{
    char *path = g_build_filename(tmp, "valves.csv", NULL);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, ",link,node\n");
    for (guint i = 0; i < valves->len; i++)
        fprintf(f, "%u,%s,%s\n", i, g_array_index(valves, valve_pair, i).link,
                g_array_index(valves, valve_pair, i).node);
    fclose(f);
    return path;
}

/* The point d metres along a line from its start (or its end). */
static void along(OGRGeometryH g, int from_end, double d, double *x, double *y)
{
    int np = OGR_G_GetPointCount(g);
    for (int s = 1; s < np; s++) {
        int i0 = from_end ? np - s : s - 1, i1 = from_end ? np - s - 1 : s;
        double ax = OGR_G_GetX(g, i0), ay = OGR_G_GetY(g, i0);
        double bx = OGR_G_GetX(g, i1), by = OGR_G_GetY(g, i1), len = hypot(bx - ax, by - ay);
        if (len >= d || s + 1 == np) {
            double t = len > 0 ? fmin(d / len, 1) : 0;
            *x = ax + (bx - ax) * t, *y = ay + (by - ay) * t;
            return;
        }
        d -= len;
    }
    *x = OGR_G_GetX(g, 0), *y = OGR_G_GetY(g, 0);
}

/* The valves as points in the zone, 2 m (at most a tenth of the pipe)
 * along the pipe from their node, without link/node fields. */
static void valves_layer(const char *gk, const GArray *valves)
{
    GDALDatasetH ds = GDALOpenEx(gk, GDAL_OF_VECTOR | GDAL_OF_UPDATE, NULL, NULL, NULL);
    assert_non_null(ds);
    OGRLayerH pipes = GDALDatasetGetLayerByName(ds, "pipes");
    GHashTable *geom =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)OGR_F_Destroy);
    OGRFeatureH f;
    while ((f = OGR_L_GetNextFeature(pipes)))
        g_hash_table_insert(geom,
                            g_strdup(OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "name"))), f);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(srs, 4549);
    OGRLayerH out = GDALDatasetCreateLayer(ds, "valves", srs, wkbPoint, NULL);
    OSRDestroySpatialReference(srs);
    assert_non_null(out);
    for (guint i = 0; i < valves->len; i++) {
        const valve_pair *v = &g_array_index(valves, valve_pair, i);
        OGRFeatureH p = g_hash_table_lookup(geom, v->link);
        assert_non_null(p);
        OGRGeometryH g = OGR_F_GetGeometryRef(p);
        int start = strcmp(OGR_F_GetFieldAsString(p, OGR_F_GetFieldIndex(p, "start_node_name")),
                           v->node) == 0;
        double x, y;
        along(g, !start, fmin(2.0, OGR_G_Length(g) / 10), &x, &y);
        OGRFeatureH nf = OGR_F_Create(OGR_L_GetLayerDefn(out));
        OGRGeometryH pt = OGR_G_CreateGeometry(wkbPoint);
        OGR_G_SetPoint_2D(pt, 0, x, y);
        OGR_F_SetGeometryDirectly(nf, pt);
        assert_int_equal(OGR_L_CreateFeature(out, nf), OGRERR_NONE);
        OGR_F_Destroy(nf);
    }
    g_hash_table_destroy(geom);
    GDALClose(ds);
}

/* ---- comparing two networks by element ids ---- */

static int seg_of(const gis_pipenet *n, const char *id, int is_link)
{
    int i = is_link ? gis_pipenet_find_link(n, id) : gis_pipenet_find_node(n, id);
    assert_true(i >= 0);
    return is_link ? gis_pipenet_link_segment(n, (size_t)i)
                   : gis_pipenet_node_segment(n, (size_t)i);
}

/* Same partition: a segment of a maps to one segment of b, one to one. */
static void same_segments(const gis_pipenet *a, const gis_pipenet *b)
{
    size_t ns = gis_pipenet_segment_count(a);
    assert_int_equal(ns, gis_pipenet_segment_count(b));
    int *map = g_new(int, ns), *back = g_new(int, ns);
    for (size_t s = 0; s < ns; s++)
        map[s] = back[s] = -1;
    for (int is_link = 0; is_link < 2; is_link++) {
        size_t count = is_link ? gis_pipenet_link_count(a) : gis_pipenet_node_count(a);
        for (size_t i = 0; i < count; i++) {
            const char *id = is_link ? gis_pipenet_link(a, i)->id : gis_pipenet_node(a, i)->id;
            int sa = seg_of(a, id, is_link), sb = seg_of(b, id, is_link);
            if (map[sa] < 0 && back[sb] < 0)
                map[sa] = sb, back[sb] = sa;
            assert_int_equal(map[sa], sb);
            assert_int_equal(back[sb], sa);
        }
    }
    g_free(map);
    g_free(back);
}

static char *valve_key(const gis_pipenet *n, int v)
{
    const gis_pipe_valve *va = gis_pipenet_valve(n, (size_t)v);
    return g_strdup_printf("%s|%s", gis_pipenet_link(n, (size_t)va->link)->id,
                           gis_pipenet_node(n, (size_t)va->node)->id);
}

/* "link|node" of valves, or link ids of the links in segments. */
static GHashTable *id_set(const gis_pipenet *n, const GArray *items, int segments)
{
    GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint k = 0; k < items->len; k++) {
        int it = g_array_index(items, int, k);
        if (!segments) {
            g_hash_table_add(h, valve_key(n, it));
            continue;
        }
        for (size_t j = 0; j < gis_pipenet_link_count(n); j++)
            if (gis_pipenet_link_segment(n, j) == it)
                g_hash_table_add(h, g_strdup(gis_pipenet_link(n, j)->id));
    }
    return h;
}

static void same_set(GHashTable *a, GHashTable *b, const char *what, const char *link)
{
    GHashTableIter it;
    gpointer k;
    if (g_hash_table_size(a) != g_hash_table_size(b))
        fail_msg("burst %s: %s: %u vs %u", link, what, g_hash_table_size(a), g_hash_table_size(b));
    g_hash_table_iter_init(&it, a);
    while (g_hash_table_iter_next(&it, &k, NULL))
        if (!g_hash_table_contains(b, k))
            fail_msg("burst %s: %s: %s only in the .inp import", link, what, (char *)k);
    g_hash_table_destroy(a);
    g_hash_table_destroy(b);
}

static void same_isolation(gis_pipenet *a, gis_pipenet *b, const char *link)
{
    gis_iso_query qa = {.link = gis_pipenet_find_link(a, link), .at_x = NAN, .at_y = NAN};
    gis_iso_query qb = {.link = gis_pipenet_find_link(b, link), .at_x = NAN, .at_y = NAN};
    gis_iso_result ra = {0}, rb = {0};
    assert_int_equal(gis_pipes_isolate(a, &qa, &ra), 0);
    assert_int_equal(gis_pipes_isolate(b, &qb, &rb), 0);
    same_set(id_set(a, ra.close, 0), id_set(b, rb.close, 0), "valves to close", link);
    same_set(id_set(a, ra.isolated, 1), id_set(b, rb.isolated, 1), "isolated links", link);
    same_set(id_set(a, ra.dry, 1), id_set(b, rb.dry, 1), "dry links", link);
    assert_int_equal(ra.isolated_nodes, rb.isolated_nodes);
    assert_int_equal(ra.dry_nodes, rb.dry_nodes);
    gis_iso_result_clear(&ra);
    gis_iso_result_clear(&rb);
}

static void same_valves(const gis_pipenet *a, const gis_pipenet *b)
{
    GArray *all = g_array_new(FALSE, FALSE, sizeof(int));
    for (int v = 0; v < (int)gis_pipenet_valve_count(a); v++)
        g_array_append_val(all, v);
    GHashTable *ka = id_set(a, all, 0), *kb;
    g_array_set_size(all, 0);
    for (int v = 0; v < (int)gis_pipenet_valve_count(b); v++)
        g_array_append_val(all, v);
    kb = id_set(b, all, 0);
    g_array_free(all, TRUE);
    same_set(ka, kb, "valves (link|node)", "-");
}

/* ---- (a) layers in a Gauss-Krüger zone == the .inp ---- */

static gis_pipenet *ky4_from_inp(const char *tmp, GArray **valves)
{
    char *inp = data_file("ky4.inp"), *err = NULL;
    gis_pipenet *n = NULL;
    assert_int_equal(gis_pipenet_read_inp(inp, "ky4", "water", &n, &err), 0);
    *valves = strategic_valves(n);
    char *csv = valves_csv(tmp, *valves);
    assert_int_equal(gis_pipenet_read_valves_csv(n, csv, &err), (int)(*valves)->len);
    if (gis_pipenet_reproject(n, "EPSG:3547", &err) != 0)
        fail_msg("reproject: %s", err);
    assert_int_equal(gis_pipenet_finish(n, 1, &err), 0);
    g_free(inp);
    g_free(csv);
    return n;
}

static void check_zone(const char *gk)
{
    GDALDatasetH ds = GDALOpenEx(gk, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    OGREnvelope e;
    assert_int_equal(OGR_L_GetExtent(GDALDatasetGetLayerByName(ds, "pipes"), &e, 1), OGRERR_NONE);
    /* Kentucky at 84.5°W + 205° = 120.5°E: ~40 km east of the zone's false easting. */
    assert_true(e.MinX > 400000 && e.MaxX < 650000);
    assert_true(e.MinY > 3.9e6 && e.MaxY < 4.3e6);
    GDALClose(ds);
}

static char *ky4_zone_layers(const char *tmp, const GArray *valves)
{
    char *gk = g_build_filename(tmp, "ky4_gk.gpkg", NULL);
    char *pipes = data_file("ky4_pipes.geojson"), *junctions = data_file("ky4_junctions.geojson");
    char *res = data_file("ky4_reservoirs.geojson"), *tanks = data_file("ky4_tanks.geojson");
    char *pumps = pump_lines(tmp);
    to_zone(tmp, gk, pipes, "pipes_wgs84", "pipes", NULL);
    to_zone(tmp, gk, pumps, "pumps_wgs84", "pipes", NULL);
    to_zone(tmp, gk, junctions, "junctions_wgs84", "junctions", NULL);
    to_zone(tmp, gk, res, "reservoirs_wgs84", "sources", "reservoir");
    to_zone(tmp, gk, tanks, "tanks_wgs84", "sources", "tank");
    check_zone(gk);
    valves_layer(gk, valves);
    g_free(pipes), g_free(junctions), g_free(res), g_free(tanks), g_free(pumps);
    return gk;
}

static void test_layers_equal_inp(void **state)
{
    (void)state;
    char *tmp = g_dir_make_tmp("pipes-XXXXXX", NULL);
    GArray *valves = NULL;
    gis_pipenet *a = ky4_from_inp(tmp, &valves);
    char *gk = ky4_zone_layers(tmp, valves);
    char *sp = g_strdup_printf("%s|pipes", gk), *sj = g_strdup_printf("%s|junctions", gk);
    char *ss = g_strdup_printf("%s|sources", gk), *sv = g_strdup_printf("%s|valves", gk);
    gis_pipe_layers o = {.pipes = sp, .junctions = sj, .sources = ss, .valves = sv, .snap_m = 0.5};
    gis_pipenet *b = NULL;
    json_t *report = NULL;
    char *err = NULL;
    if (gis_pipenet_read_layers(&o, "ky4", "water", &b, &report, &err) != 0)
        fail_msg("read_layers: %s", err);
    assert_int_equal(gis_pipenet_finish(b, 1, &err), 0);
    assert_null(json_object_get(report, "unplaced_valves"));
    assert_null(json_object_get(report, "unmatched_points"));
    assert_int_equal(gis_pipenet_node_count(a), gis_pipenet_node_count(b));
    assert_int_equal(gis_pipenet_link_count(a), gis_pipenet_link_count(b));
    assert_int_equal(gis_pipenet_valve_count(a), gis_pipenet_valve_count(b));
    for (size_t i = 0; i < gis_pipenet_node_count(a); i++)
        assert_int_equal(
            gis_pipenet_node(a, i)->kind,
            gis_pipenet_node(b, (size_t)gis_pipenet_find_node(b, gis_pipenet_node(a, i)->id))
                ->kind);
    same_valves(a, b);
    same_segments(a, b);
    size_t pipes = 0;
    for (size_t j = 0; j < gis_pipenet_link_count(a); j++)
        if (gis_pipenet_link(a, j)->kind == GIS_LINK_PIPE)
            same_isolation(a, b, gis_pipenet_link(a, j)->id), pipes++;
    assert_true(pipes > 1000);
    json_decref(report);
    gis_pipenet_free(a);
    gis_pipenet_free(b);
    valves_free(valves);
    g_free(sp), g_free(sj), g_free(ss), g_free(sv), g_free(gk);
    rm_rf(tmp);
    g_free(tmp);
}

/* ---- (b) snapping ---- */

static char *write_text(const char *dir, const char *name, const char *text)
{
    char *p = g_build_filename(dir, name, NULL);
    assert_true(g_file_set_contents(p, text, -1, NULL));
    return p;
}

static int report_has(const json_t *report, const char *list, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(report, list), "first"), i, v)
    {
        if (strcmp(json_string_value(v), id) == 0)
            return 1;
    }
    return 0;
}

static void test_snapping(void **state)
{
    (void)state;
    char *tmp = g_dir_make_tmp("pipes-XXXXXX", NULL);
    /* UTM 31N metres: A ends 0.3 m from where B starts; C starts 5 m after B ends. */
    char *path = write_text(
        tmp, "snap.geojson",
        "{\"type\":\"FeatureCollection\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":"
        "\"urn:ogc:def:crs:EPSG::32631\"}},\"features\":["
        "{\"type\":\"Feature\",\"properties\":{\"id\":\"A\",\"diameter\":150},\"geometry\":"
        "{\"type\":\"LineString\",\"coordinates\":[[500000,4800000],[500100,4800000]]}},"
        "{\"type\":\"Feature\",\"properties\":{\"id\":\"B\",\"diameter\":0.15},\"geometry\":"
        "{\"type\":\"LineString\",\"coordinates\":[[500100.3,4800000],[500200,4800000]]}},"
        "{\"type\":\"Feature\",\"properties\":{\"id\":\"C\"},\"geometry\":"
        "{\"type\":\"LineString\",\"coordinates\":[[500205,4800000],[500300,4800000]]}}]}");
    gis_pipe_layers o = {.pipes = path, .snap_m = 0.5};
    gis_pipenet *n = NULL;
    json_t *report = NULL;
    char *err = NULL;
    assert_int_equal(gis_pipenet_read_layers(&o, "snap", "water", &n, &report, &err), 0);
    const gis_pipe_link *a = gis_pipenet_link(n, (size_t)gis_pipenet_find_link(n, "A"));
    const gis_pipe_link *b = gis_pipenet_link(n, (size_t)gis_pipenet_find_link(n, "B"));
    const gis_pipe_link *c = gis_pipenet_link(n, (size_t)gis_pipenet_find_link(n, "C"));
    assert_int_equal(a->to, b->from);
    assert_int_not_equal(b->to, c->from);
    assert_int_equal(gis_pipenet_node_count(n), 5);
    assert_float_equal(a->diameter_mm, 150, 1e-9);
    assert_float_equal(b->diameter_mm, 150, 1e-9); /* 0.15 m */
    assert_float_equal(a->length_m, 100, 0.1);
    assert_true(report_has(report, "dangling_ends", "C:start"));
    assert_true(report_has(report, "dangling_ends", "B:end"));
    assert_false(report_has(report, "dangling_ends", "A:end"));
    assert_int_equal(gis_pipenet_finish(n, 1, &err), 0);
    json_decref(report);
    gis_pipenet_free(n);
    g_free(path);
    rm_rf(tmp);
    g_free(tmp);
}

/* ---- (c) save and load ---- */

static void test_round_trip(void **state)
{
    (void)state;
    char *src = g_build_filename(city(), "networks", "water.gpkg", NULL), *err = NULL;
    gis_pipenet *n = NULL, *m = NULL;
    if (gis_pipenet_load(src, &n, &err) != 0)
        fail_msg("load %s: %s", src, err);
    assert_true(gis_pipenet_link_count(n) > 1000);
    assert_true(gis_pipenet_valve_count(n) > 1000);
    assert_true(gis_pipenet_customer_count(n) > 1000);
    char *tmp = g_dir_make_tmp("pipes-XXXXXX", NULL);
    json_t *rep = json_pack("{ss}", "note", "round trip");
    assert_int_equal(gis_pipenet_save(n, tmp, rep, &err), 0);
    char **names = gis_pipenet_list(tmp);
    assert_non_null(names[0]);
    assert_string_equal(names[0], "water");
    assert_null(names[1]);
    g_strfreev(names);
    char *copy = g_build_filename(tmp, "networks", "water.gpkg", NULL);
    assert_int_equal(gis_pipenet_load(copy, &m, &err), 0);
    assert_string_equal(gis_pipenet_utility(m), "water");
    assert_int_equal(gis_pipenet_node_count(n), gis_pipenet_node_count(m));
    assert_int_equal(gis_pipenet_link_count(n), gis_pipenet_link_count(m));
    assert_int_equal(gis_pipenet_valve_count(n), gis_pipenet_valve_count(m));
    assert_int_equal(gis_pipenet_customer_count(n), gis_pipenet_customer_count(m));
    assert_int_equal(gis_pipenet_segment_count(n), gis_pipenet_segment_count(m));
    json_decref(rep);
    gis_pipenet_free(n);
    gis_pipenet_free(m);
    g_free(copy);
    g_free(src);
    rm_rf(tmp);
    g_free(tmp);
}

/* ---- (d) broken input ---- */

static void expect_layers_error(const char *pipes, const char *needle)
{
    gis_pipe_layers o = {.pipes = pipes};
    gis_pipenet *n = NULL;
    json_t *report = NULL;
    char *err = NULL;
    assert_true(gis_pipenet_read_layers(&o, "bad", "water", &n, &report, &err) < 0);
    assert_null(n);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("expected '%s' in: %s", needle, err);
    g_free(err);
}

static void test_bad_input(void **state)
{
    (void)state;
    char *tmp = g_dir_make_tmp("pipes-XXXXXX", NULL);
    char *huge = write_text(tmp, "huge.geojson",
                            "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\","
                            "\"properties\":{\"id\":\"X\"},\"geometry\":{\"type\":\"LineString\","
                            "\"coordinates\":[[1e300,1e300],[7.4,43.7]]}}]}");
    expect_layers_error(huge, "X");
    char *nan = write_text(tmp, "nan.geojson",
                           "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\","
                           "\"properties\":{\"id\":\"Y\"},\"geometry\":{\"type\":\"LineString\","
                           "\"coordinates\":[[NaN,43.7],[7.4,43.7]]}}]}");
    expect_layers_error(nan, "nan.geojson");
    expect_layers_error("/nonexistent/pipes.geojson", "cannot read");

    gis_pipenet *n = gis_pipenet_new("far", "water");
    char *err = NULL;
    assert_true(gis_pipenet_add_node(n, "J1", GIS_NODE_JUNCTION, 1e30, 1e30, NULL) >= 0);
    assert_true(gis_pipenet_reproject(n, "EPSG:3547", &err) < 0);
    assert_non_null(strstr(err, "J1"));
    g_free(err), err = NULL;
    assert_true(gis_pipenet_reproject(n, "not a crs", &err) < 0);
    g_free(err), err = NULL;
    gis_pipenet_free(n);
    assert_true(gis_pipenet_load("/nonexistent/water.gpkg", &n, &err) < 0);
    assert_null(n);
    g_free(err);

    char *inp = write_text(tmp, "nocoords.inp",
                           "[JUNCTIONS]\n J1 10 0\n J2 10 0\n[RESERVOIRS]\n R1 50\n[PIPES]\n"
                           " P1 R1 J1 100 150 100 0 Open\n P2 J1 J2 100 150 100 0 Open\n[END]\n");
    char *argv[] = {"citycmd", "import-network", "--city", tmp,      "--name",
                    "x",       "--inp",          inp,      "--quiet"};
    assert_int_equal(gis_import_network_main(9, argv), 1);
    char *out = g_build_filename(tmp, "networks", "x.gpkg", NULL);
    assert_false(g_file_test(out, G_FILE_TEST_EXISTS));
    g_free(out), g_free(inp), g_free(huge), g_free(nan);
    rm_rf(tmp);
    g_free(tmp);
}

int main(void)
{
    GDALAllRegister();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapping),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_layers_equal_inp),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    GDALDestroyDriverManager();
    return rc;
}

/*
 * roads_build.c — the road graph of a city package (roads.h).
 *
 * The drivable roads are read with OGR. Two ways meet where they share a
 * vertex (OpenStreetMap ways share their nodes, so the coordinates are
 * equal to the last digit; they are compared at 1e-7 degrees, OSM's own
 * precision). Every vertex used twice, and every way's ends, is a node;
 * the ways are cut into edges between nodes, each keeping its shape.
 *
 * Speeds: maxspeed where the way has a number ("50", "30 mph"), else the
 * class's default below; times the emergency factor. Direction: oneway
 * "yes"/"1"/"true" forward only, "-1"/"reverse" backward only, motorways
 * one way unless tagged otherwise.
 *
 * Turn restrictions (the `restrictions` layer, one feature per OSM
 * relation: its members' geometries in member order) name the way driven
 * from (the first line), the via node (the point) and the way turned onto
 * (the last line). Each way is found among the edges at the via node by
 * the vertex next to it; no_* forbids that turn, only_* every other turn
 * from that edge. A restriction whose members cannot be found in the graph
 * (a via way, a way that is not drivable) is left out and counted.
 */
#include "roads_internal.h"

#include "../core/core.h"
#include "../core/log.h"
#include "geofence.h"

#include <gdal.h>
#include <math.h>
#include <ogr_api.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *klass;
    double kmh;
} class_speed;

/* Typical urban speeds by highway class (km/h). */
static const class_speed speeds[] = {
    {"motorway", 110},     {"motorway_link", 60}, {"trunk", 90},        {"trunk_link", 50},
    {"primary", 60},       {"primary_link", 40},  {"secondary", 50},    {"secondary_link", 40},
    {"tertiary", 40},      {"tertiary_link", 30}, {"unclassified", 40}, {"residential", 30},
    {"living_street", 10}, {"service", 20},       {"road", 30},
};

static double class_kmh(const char *klass)
{
    for (size_t i = 0; klass && i < G_N_ELEMENTS(speeds); i++)
        if (strcmp(speeds[i].klass, klass) == 0)
            return speeds[i].kmh;
    return 30;
}

/* A maxspeed tag's km/h, or 0 when it is not a number ("signals", "FR:urban"). */
static double maxspeed_kmh(const char *v)
{
    if (!v || !*v)
        return 0;
    char *end = NULL;
    double n = g_ascii_strtod(v, &end);
    if (end == v || !(n > 0) || n > 300)
        return 0;
    while (*end == ' ')
        end++;
    return g_str_has_prefix(end, "mph") ? n * 1.609344 : n;
}

/* 1 forward only, -1 backward only, 0 both ways. */
static int oneway_of(const char *v, const char *klass)
{
    if (v && (!strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "true")))
        return 1;
    if (v && (!strcmp(v, "-1") || !strcmp(v, "reverse")))
        return -1;
    if (v && (!strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "false")))
        return 0;
    return klass && (!strcmp(klass, "motorway") || !strcmp(klass, "motorway_link"));
}

/* ---- vertices ---- */

/* A coordinate at OSM's precision, packed in 64 bits (lon and lat each
 * shifted to be positive, in 1e-7 degrees: below 2^32). */
static guint64 vkey(double lon, double lat)
{
    guint64 x = (guint64)llround((lon + 180.0) * 1e7), y = (guint64)llround((lat + 90.0) * 1e7);
    return x << 32 | y;
}

static guint vkey_hash(gconstpointer p)
{
    guint64 k = (guint64)GPOINTER_TO_SIZE(p);
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (guint)k;
}

typedef struct {
    GArray *pts; /* lon/lat doubles */
    double kmh;
    int oneway;
    int64_t id;
} way;

/* ---- the roads ---- */

static int read_ways(GDALDatasetH ds, double factor, GPtrArray *ways, char **err)
{
    OGRLayerH l = GDALDatasetGetLayerByName(ds, "roads");
    if (!l) {
        *err = g_strdup("the package has no roads layer");
        return CORE_EINVAL;
    }
    OGR_L_SetAttributeFilter(l, "drivable = 1");
    OGR_L_ResetReading(l);
    OGRFeatureDefnH def = OGR_L_GetLayerDefn(l);
    int fclass = OGR_FD_GetFieldIndex(def, "class"), fone = OGR_FD_GetFieldIndex(def, "oneway"),
        fmax = OGR_FD_GetFieldIndex(def, "maxspeed");
    OGRFeatureH f;
    while ((f = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        const char *klass = fclass >= 0 ? OGR_F_GetFieldAsString(f, fclass) : NULL;
        const char *one = fone >= 0 && OGR_F_IsFieldSetAndNotNull(f, fone)
                              ? OGR_F_GetFieldAsString(f, fone)
                              : NULL;
        const char *max = fmax >= 0 && OGR_F_IsFieldSetAndNotNull(f, fmax)
                              ? OGR_F_GetFieldAsString(f, fmax)
                              : NULL;
        int parts = g && wkbFlatten(OGR_G_GetGeometryType(g)) == wkbMultiLineString
                        ? OGR_G_GetGeometryCount(g)
                        : 1;
        for (int k = 0; g && k < parts; k++) {
            OGRGeometryH line =
                parts > 1 || wkbFlatten(OGR_G_GetGeometryType(g)) == wkbMultiLineString
                    ? OGR_G_GetGeometryRef(g, k)
                    : g;
            if (wkbFlatten(OGR_G_GetGeometryType(line)) != wkbLineString)
                continue;
            int n = OGR_G_GetPointCount(line);
            way *w = g_new0(way, 1);
            w->pts = g_array_sized_new(FALSE, FALSE, sizeof(double), (guint)(2 * n));
            for (int i = 0; i < n; i++) {
                double x = OGR_G_GetX(line, i), y = OGR_G_GetY(line, i);
                if (!isfinite(x) || !isfinite(y) || fabs(x) > 180 || fabs(y) > 90)
                    continue;
                /* Repeated vertices add nothing. */
                if (w->pts->len &&
                    vkey(x, y) == vkey(g_array_index(w->pts, double, w->pts->len - 2),
                                       g_array_index(w->pts, double, w->pts->len - 1)))
                    continue;
                g_array_append_val(w->pts, x);
                g_array_append_val(w->pts, y);
            }
            double ms = maxspeed_kmh(max);
            w->kmh = (ms > 0 ? ms : class_kmh(klass)) * factor;
            w->oneway = oneway_of(one, klass);
            w->id = OGR_F_GetFID(f);
            if (w->pts->len >= 4) {
                g_ptr_array_add(ways, w);
            } else {
                g_array_free(w->pts, TRUE);
                g_free(w);
            }
        }
        OGR_F_Destroy(f);
    }
    return 0;
}

static void way_free(gpointer p)
{
    way *w = p;
    g_array_free(w->pts, TRUE);
    g_free(w);
}

/* Cuts the ways into edges at their nodes. */
static disp_roads *make_graph(GPtrArray *ways)
{
    /* How many times each vertex is used (a way's ends twice). */
    GHashTable *uses = g_hash_table_new(vkey_hash, g_direct_equal);
    for (guint i = 0; i < ways->len; i++) {
        const way *w = ways->pdata[i];
        guint n = w->pts->len / 2;
        for (guint j = 0; j < n; j++) {
            gpointer k = GSIZE_TO_POINTER(vkey(g_array_index(w->pts, double, 2 * j),
                                               g_array_index(w->pts, double, 2 * j + 1)));
            guint add = j == 0 || j == n - 1 ? 2 : 1;
            g_hash_table_insert(
                uses, k, GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(uses, k)) + add));
        }
    }
    GHashTable *node_of = g_hash_table_new(vkey_hash, g_direct_equal); /* key -> node + 1 */
    GArray *nodes = g_array_new(FALSE, FALSE, sizeof(double));
    GArray *ea = g_array_new(FALSE, FALSE, sizeof(uint32_t)),
           *eb = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    GArray *ms = g_array_new(FALSE, FALSE, sizeof(int64_t)),
           *len = g_array_new(FALSE, FALSE, sizeof(double));
    GArray *rid = g_array_new(FALSE, FALSE, sizeof(int64_t)),
           *off = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    GArray *shape = g_array_new(FALSE, FALSE, sizeof(double));
    for (guint i = 0; i < ways->len; i++) {
        const way *w = ways->pdata[i];
        const double *p = (const double *)w->pts->data;
        guint n = w->pts->len / 2, start = 0;
        for (guint j = 1; j < n; j++) {
            gpointer k = GSIZE_TO_POINTER(vkey(p[2 * j], p[2 * j + 1]));
            if (GPOINTER_TO_UINT(g_hash_table_lookup(uses, k)) < 2 && j != n - 1)
                continue;
            /* An edge from vertex start to vertex j. */
            uint32_t ends[2];
            guint at[2] = {start, j};
            for (int e = 0; e < 2; e++) {
                gpointer key = GSIZE_TO_POINTER(vkey(p[2 * at[e]], p[2 * at[e] + 1]));
                guint id = GPOINTER_TO_UINT(g_hash_table_lookup(node_of, key));
                if (!id) {
                    g_array_append_vals(nodes, p + 2 * at[e], 2);
                    id = nodes->len / 2;
                    g_hash_table_insert(node_of, key, GUINT_TO_POINTER(id));
                }
                ends[e] = id - 1;
            }
            double m = 0;
            for (guint q = start; q < j; q++)
                m += disp_geofence_distance_m(p[2 * q], p[2 * q + 1], p[2 * q + 2], p[2 * q + 3]);
            if (ends[0] != ends[1] && m > 0) {
                int64_t t = disp_roads__ms(m, w->kmh), none = DISP_ROADS_UNREACHABLE;
                uint32_t o = shape->len / 2;
                g_array_append_val(ea, ends[0]);
                g_array_append_val(eb, ends[1]);
                int64_t fw = w->oneway == -1 ? none : t, bw = w->oneway == 1 ? none : t;
                g_array_append_val(ms, fw);
                g_array_append_val(ms, bw);
                g_array_append_val(len, m);
                g_array_append_val(rid, w->id);
                g_array_append_val(off, o);
                g_array_append_vals(shape, p + 2 * start, 2 * (j - start + 1));
            }
            start = j;
        }
    }
    g_hash_table_destroy(uses);
    g_hash_table_destroy(node_of);
    disp_roads *g = g_new0(disp_roads, 1);
    g->n_nodes = nodes->len / 2;
    g->n_edges = ea->len;
    uint32_t end = shape->len / 2;
    g_array_append_val(off, end);
    g->node_lonlat = (double *)g_array_free(nodes, FALSE);
    g->ea = (uint32_t *)g_array_free(ea, FALSE);
    g->eb = (uint32_t *)g_array_free(eb, FALSE);
    g->ms = (int64_t *)g_array_free(ms, FALSE);
    g->length_m = (double *)g_array_free(len, FALSE);
    g->road_id = (int64_t *)g_array_free(rid, FALSE);
    g->shape_off = (uint32_t *)g_array_free(off, FALSE);
    g->shape = (double *)g_array_free(shape, FALSE);
    disp_roads__finish(g);
    return g;
}

/* ---- turn restrictions ---- */

/* The node at a coordinate, or UINT32_MAX. */
static uint32_t node_at(GHashTable *nodes, double lon, double lat)
{
    gpointer v = g_hash_table_lookup(nodes, GSIZE_TO_POINTER(vkey(lon, lat)));
    return v ? GPOINTER_TO_UINT(v) - 1 : UINT32_MAX;
}

/* The vertex of a member way next to the via point (its end there), or 0. */
static int beside(OGRGeometryH line, guint64 via, guint64 *out)
{
    int n = OGR_G_GetPointCount(line);
    if (n < 2)
        return 0;
    if (vkey(OGR_G_GetX(line, 0), OGR_G_GetY(line, 0)) == via) {
        *out = vkey(OGR_G_GetX(line, 1), OGR_G_GetY(line, 1));
        return 1;
    }
    if (vkey(OGR_G_GetX(line, n - 1), OGR_G_GetY(line, n - 1)) == via) {
        *out = vkey(OGR_G_GetX(line, n - 2), OGR_G_GetY(line, n - 2));
        return 1;
    }
    return 0;
}

/* The shape vertex of directed edge d next to its head (arriving) or its
 * tail (leaving). */
static guint64 next_to(const disp_roads *g, uint32_t d, int at_head)
{
    uint32_t e = d >> 1, a = g->shape_off[e], b = g->shape_off[e + 1] - 1;
    int forward = !(d & 1);
    uint32_t i = at_head ? (forward ? b - 1 : a + 1) : (forward ? a + 1 : b - 1);
    return vkey(g->shape[2 * i], g->shape[2 * i + 1]);
}

static void read_restrictions(disp_roads *g, GDALDatasetH ds)
{
    OGRLayerH l = GDALDatasetGetLayerByName(ds, "restrictions");
    if (!l)
        return;
    GHashTable *nodes = g_hash_table_new(vkey_hash, g_direct_equal);
    for (uint32_t n = 0; n < g->n_nodes; n++)
        g_hash_table_insert(
            nodes, GSIZE_TO_POINTER(vkey(g->node_lonlat[2 * n], g->node_lonlat[2 * n + 1])),
            GUINT_TO_POINTER(n + 1));
    GArray *turns = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    int fkind = OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "restriction");
    unsigned skipped = 0;
    OGRFeatureH f;
    OGR_L_ResetReading(l);
    while ((f = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g0 = OGR_F_GetGeometryRef(f);
        const char *kind = fkind >= 0 ? OGR_F_GetFieldAsString(f, fkind) : "";
        OGRGeometryH from = NULL, to = NULL, via = NULL;
        for (int i = 0; g0 && i < OGR_G_GetGeometryCount(g0); i++) {
            OGRGeometryH m = OGR_G_GetGeometryRef(g0, i);
            OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(m));
            if (t == wkbPoint)
                via = via ? via : m;
            else if (t == wkbLineString) {
                if (!from)
                    from = m;
                else
                    to = m;
            }
        }
        int only = g_str_has_prefix(kind, "only_"), no = g_str_has_prefix(kind, "no_");
        uint32_t v = via ? node_at(nodes, OGR_G_GetX(via, 0), OGR_G_GetY(via, 0)) : UINT32_MAX;
        guint64 vk = via ? vkey(OGR_G_GetX(via, 0), OGR_G_GetY(via, 0)) : 0, fk = 0, tk = 0;
        uint32_t din = UINT32_MAX, dout = UINT32_MAX;
        if ((only || no) && from && to && v != UINT32_MAX && beside(from, vk, &fk) &&
            beside(to, vk, &tk)) {
            for (uint32_t i = g->in_off[v]; i < g->in_off[v + 1]; i++)
                if (next_to(g, g->in[i], 1) == fk)
                    din = g->in[i];
            for (uint32_t i = g->out_off[v]; i < g->out_off[v + 1]; i++)
                if (next_to(g, g->out[i], 0) == tk)
                    dout = g->out[i];
        }
        if (din == UINT32_MAX || dout == UINT32_MAX) {
            skipped++;
        } else if (no) {
            disp_roads__forbid(g, turns, din, dout);
            g->n_restrictions++;
        } else {
            for (uint32_t i = g->out_off[v]; i < g->out_off[v + 1]; i++)
                if (g->out[i] != dout)
                    disp_roads__forbid(g, turns, din, g->out[i]);
            g->n_restrictions++;
        }
        OGR_F_Destroy(f);
    }
    disp_roads__sort_turns(g, turns);
    g_array_free(turns, TRUE);
    g_hash_table_destroy(nodes);
    if (skipped)
        log_info("roads.restrictions", "applied=%u skipped=%u reason=\"members not in the graph\"",
                 g->n_restrictions, skipped);
}

disp_roads *disp_roads_load(const char *city_dir, const disp_roads_options *opt, char **err)
{
    double factor = opt && opt->emergency_factor > 0 ? opt->emergency_factor : 1.0;
    char *path = g_build_filename(city_dir, "city.gpkg", NULL);
    GDALAllRegister();
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds) {
        *err = g_strdup_printf("%s: cannot open the city package", path);
        g_free(path);
        return NULL;
    }
    g_free(path);
    GPtrArray *ways = g_ptr_array_new_with_free_func(way_free);
    disp_roads *g = NULL;
    if (read_ways(ds, factor, ways, err) == 0) {
        g = make_graph(ways);
        if (!(opt && opt->ignore_restrictions))
            read_restrictions(g, ds);
    }
    g_ptr_array_unref(ways);
    GDALClose(ds);
    return g;
}

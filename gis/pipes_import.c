/*
 * pipes_import.c — `citycmd import-network`: a water or gas network into a
 * city package (DIR/networks/NAME.gpkg + NAME.json), from an EPANET .inp
 * file, from GIS layers, or generated along the package's own streets.
 *
 * The generated networks (--generate) are for demos and tests, not a model
 * of any real utility (docs/CITY.md): a pipe along every piece of street
 * between shared vertices (the largest connected part of the street graph
 * only), sources at its far ends, valves by the "strategic N" rule WNTR
 * uses (at a node of degree d, valves on d-N of its links, picked with a
 * fixed seed so the same package gives the same network), and a customer
 * per building. Everything is deterministic for a given city.gpkg.
 *
 * Runs on the main thread of the command, before any server starts.
 */
#include "pipes_io.h"
#include "internal.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GENERATE_SEED 42
#define GENERATE_SNAP_M 0.1

typedef struct {
    const char *city, *name, *utility, *inp, *valves, *crs, *customers;
    gis_pipe_layers layers;
    int generate, quiet;
} import_opts;

/* ---- generating along the streets ---- */

typedef struct {
    double x, y;
} lonlat;

/* Vertices are the same point when they agree to 1e-7 degrees (~1 cm). */
static gint64 vertex_key(double x, double y)
{
    gint64 ix = (gint64)llround(x * 1e7), iy = (gint64)llround(y * 1e7);
    return (gint64)(((guint64)(guint32)ix << 32) | (guint32)iy);
}

static int cmp_i64(const void *a, const void *b)
{
    gint64 p = *(const gint64 *)a, q = *(const gint64 *)b;
    return p < q ? -1 : p > q;
}

/* How often key occurs in the sorted keys. */
static size_t key_count(const GArray *keys, gint64 key)
{
    const gint64 *k = (const gint64 *)(const void *)keys->data;
    size_t lo = 0, hi = keys->len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (k[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = 0;
    while (lo + n < keys->len && k[lo + n] == key)
        n++;
    return n;
}

/* Plausible main diameters (mm) by road class: trunk mains under the big
 * roads, distribution pipes under the streets. */
static double diameter_for(const char *klass, int gas)
{
    static const struct {
        const char *klass;
        double water, gas;
    } t[] = {{"trunk", 500, 250},    {"primary", 400, 200},    {"secondary", 300, 160},
             {"tertiary", 200, 125}, {"residential", 150, 90}, {"living_street", 100, 63},
             {"service", 100, 63},   {"unclassified", 150, 90}};
    for (size_t i = 0; klass && i < G_N_ELEMENTS(t); i++)
        if (g_str_has_prefix(klass, t[i].klass))
            return gas ? t[i].gas : t[i].water;
    return gas ? 90 : 150;
}

static int road_wanted(OGRFeatureH f, int gas)
{
    int ic = OGR_F_GetFieldIndex(f, "class"), id = OGR_F_GetFieldIndex(f, "drivable");
    const char *klass = ic >= 0 ? OGR_F_GetFieldAsString(f, ic) : "";
    if (id >= 0 && OGR_F_GetFieldAsInteger(f, id) != 1)
        return 0;
    return !(gas && strcmp(klass, "service") == 0);
}

typedef struct {
    GArray *xy; /* double, one road */
    double diameter_mm;
} road;

static void road_clear(gpointer p)
{
    g_array_free(((road *)p)->xy, TRUE);
}

static int read_roads(const char *gpkg, int gas, GArray *roads, char **err)
{
    GDALDatasetH ds = GDALOpenEx(gpkg, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    OGRLayerH l = ds ? GDALDatasetGetLayerByName(ds, "roads") : NULL;
    if (!l) {
        if (ds)
            GDALClose(ds);
        return pipes__error(err, CORE_EINVAL, "%s: no roads layer to lay pipes along", gpkg);
    }
    OGRFeatureH f;
    while ((f = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        if (g && wkbFlatten(OGR_G_GetGeometryType(g)) == wkbLineString && road_wanted(f, gas)) {
            road r = {
                g_array_new(FALSE, FALSE, sizeof(double)),
                diameter_for(OGR_F_GetFieldAsString(f, OGR_F_GetFieldIndex(f, "class")), gas)};
            for (int k = 0; k < OGR_G_GetPointCount(g); k++) {
                double p[2] = {OGR_G_GetX(g, k), OGR_G_GetY(g, k)};
                g_array_append_vals(r.xy, p, 2);
            }
            g_array_append_val(roads, r);
        }
        OGR_F_Destroy(f);
    }
    GDALClose(ds);
    return roads->len ? 0
                      : pipes__error(err, CORE_EINVAL, "%s: no streets to lay pipes along", gpkg);
}

static void add_piece(GArray *lines, const road *r, size_t from, size_t to)
{
    const double *v = (const double *)(const void *)r->xy->data;
    if (to == from + 1 && v[2 * from] == v[2 * to] && v[2 * from + 1] == v[2 * to + 1])
        return; /* a repeated vertex, not a pipe */
    pipes__line l = {.kind = GIS_LINK_PIPE,
                     .diameter_mm = r->diameter_mm,
                     .xy = g_array_new(FALSE, FALSE, sizeof(double))};
    l.id = g_strdup_printf("P%u", lines->len + 1);
    g_array_append_vals(l.xy, &v[2 * from], 2 * (guint)(to - from + 1));
    g_array_append_val(lines, l);
}

/* A pipe per piece of road between vertices that roads share. */
static void split_roads(const GArray *roads, GArray *lines)
{
    GArray *keys = g_array_new(FALSE, FALSE, sizeof(gint64));
    for (guint i = 0; i < roads->len; i++) {
        const GArray *xy = g_array_index(roads, road, i).xy;
        for (guint k = 0; k + 1 < xy->len; k += 2) {
            gint64 key = vertex_key(g_array_index(xy, double, k), g_array_index(xy, double, k + 1));
            g_array_append_val(keys, key);
        }
    }
    qsort(keys->data, keys->len, sizeof(gint64), cmp_i64);
    for (guint i = 0; i < roads->len; i++) {
        const road *r = &g_array_index(roads, road, i);
        size_t nv = r->xy->len / 2, start = 0;
        for (size_t k = 1; k < nv; k++) {
            const double *p = &g_array_index(r->xy, double, 2 * k);
            if (k + 1 == nv || key_count(keys, vertex_key(p[0], p[1])) > 1) {
                add_piece(lines, r, start, k);
                start = k;
            }
        }
    }
    g_array_free(keys, TRUE);
}

static int uf_find(int *p, int x)
{
    while (p[x] != x)
        x = p[x] = p[p[x]];
    return x;
}

typedef struct {
    gint64 key;
    int line;
} end_key;

static int cmp_end_key(const void *a, const void *b)
{
    const end_key *p = a, *q = b;
    return p->key < q->key ? -1 : p->key > q->key ? 1 : p->line - q->line;
}

/* Keeps the lines of the largest connected part (ends meet at equal vertices). */
static void keep_largest_part(GArray *lines)
{
    guint nl = lines->len;
    end_key *ends = g_new(end_key, 2 * nl + 1);
    int *parent = g_new(int, nl + 1), *size = g_new0(int, nl + 1);
    for (guint i = 0; i < nl; i++) {
        const GArray *xy = g_array_index(lines, pipes__line, i).xy;
        const double *v = (const double *)(const void *)xy->data;
        ends[2 * i] = (end_key){vertex_key(v[0], v[1]), (int)i};
        ends[2 * i + 1] = (end_key){vertex_key(v[xy->len - 2], v[xy->len - 1]), (int)i};
        parent[i] = (int)i;
    }
    qsort(ends, 2 * (size_t)nl, sizeof *ends, cmp_end_key);
    for (size_t k = 1; k < 2 * (size_t)nl; k++)
        if (ends[k].key == ends[k - 1].key)
            parent[uf_find(parent, ends[k].line)] = uf_find(parent, ends[k - 1].line);
    int best = 0;
    for (guint i = 0; i < nl; i++)
        if (++size[uf_find(parent, (int)i)] > size[best])
            best = uf_find(parent, (int)i);
    for (guint i = nl; i-- > 0;)
        if (uf_find(parent, (int)i) != best)
            g_array_remove_index(lines, i);
    for (guint i = 0; i < lines->len; i++) { /* ids without gaps */
        pipes__line *l = &g_array_index(lines, pipes__line, i);
        g_free(l->id);
        l->id = g_strdup_printf("P%u", i + 1);
    }
    g_free(ends), g_free(parent), g_free(size);
}

static lonlat line_end(const GArray *lines, size_t e)
{
    const GArray *xy = g_array_index(lines, pipes__line, e / 2).xy;
    size_t k = e % 2 ? xy->len - 2 : 0;
    return (lonlat){g_array_index(xy, double, k), g_array_index(xy, double, k + 1)};
}

/* The line end furthest from a point (in metres at the city's latitude). */
static lonlat furthest_end(const GArray *lines, lonlat from)
{
    double kx, ky, best = -1;
    pipes__lonlat_scale(from.y, &kx, &ky);
    lonlat out = from;
    for (size_t e = 0; e < 2 * (size_t)lines->len; e++) {
        lonlat p = line_end(lines, e);
        double d = hypot((p.x - from.x) * kx, (p.y - from.y) * ky);
        if (d > best)
            best = d, out = p;
    }
    return out;
}

static void add_source(GArray *points, const char *id, gis_node_kind kind, lonlat at)
{
    pipes__point p = {g_strdup(id), kind, at.x, at.y};
    g_array_append_val(points, p);
}

/* Water: a reservoir at the end furthest from the centre, a tank at the end
 * furthest from the reservoir. Gas: one plant (a source node). */
static void place_sources(const GArray *lines, GArray *points, int gas)
{
    lonlat c = {0, 0};
    size_t ne = 2 * (size_t)lines->len;
    for (size_t e = 0; e < ne; e++) {
        lonlat p = line_end(lines, e);
        c.x += p.x / (double)ne, c.y += p.y / (double)ne;
    }
    lonlat far = furthest_end(lines, c);
    add_source(points, gas ? "GASPLANT" : "R1", GIS_NODE_RESERVOIR, far);
    if (!gas)
        add_source(points, "T1", GIS_NODE_TANK, furthest_end(lines, far));
}

/* Strategic N: at a node of degree d, valves on d - N of its links, which
 * ones picked by a seeded generator. */
static int place_valves(gis_pipenet *n, int strategic, char **err)
{
    size_t nn = n->nodes->len;
    GPtrArray **inc = g_new0(GPtrArray *, nn + 1);
    for (guint j = 0; j < n->links->len; j++) {
        const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, j);
        int ends[2] = {l->from, l->to};
        for (int e = 0; e < (l->from == l->to ? 1 : 2); e++) {
            if (!inc[ends[e]])
                inc[ends[e]] = g_ptr_array_new();
            g_ptr_array_add(inc[ends[e]], GINT_TO_POINTER(j));
        }
    }
    GRand *rand = g_rand_new_with_seed(GENERATE_SEED);
    int rc = 0;
    for (size_t v = 0; v < nn; v++) {
        GPtrArray *a = inc[v];
        for (guint k = 0; a && k < a->len; k++) { /* Fisher-Yates */
            guint o = k + (guint)g_rand_int_range(rand, 0, (gint32)(a->len - k));
            gpointer t = a->pdata[k];
            a->pdata[k] = a->pdata[o], a->pdata[o] = t;
        }
        for (guint k = 0; !rc && a && (int)k < (int)a->len - strategic; k++) {
            const gis_pipe_link *l = gis_pipenet_link(n, (size_t)GPOINTER_TO_INT(a->pdata[k]));
            rc = MIN(gis_pipenet_add_valve(n, NULL, l->id, gis_pipenet_node(n, v)->id,
                                           GIS_VALVE_OPEN, err),
                     0);
        }
        if (a)
            g_ptr_array_free(a, TRUE);
    }
    g_rand_free(rand);
    g_free(inc);
    return rc;
}

/* A building's kind from its name; residential when nothing matches. */
static const char *kind_from_name(const char *name)
{
    static const struct {
        const char *word, *kind;
    } t[] = {{"hôpital", "hospital"},
             {"hopital", "hospital"},
             {"hospital", "hospital"},
             {"clinique", "clinic"},
             {"clinic", "clinic"},
             {"école", "school"},
             {"ecole", "school"},
             {"lycée", "school"},
             {"lycee", "school"},
             {"collège", "school"},
             {"college", "school"},
             {"school", "school"},
             {"crèche", "kindergarten"},
             {"creche", "kindergarten"},
             {"maternelle", "kindergarten"},
             {"ehpad", "care_home"},
             {"maison de retraite", "care_home"},
             {"pompiers", "fire_station"}};
    if (!name || !*name)
        return "residential";
    char *low = g_utf8_strdown(name, -1);
    const char *kind = "residential";
    for (size_t i = 0; i < G_N_ELEMENTS(t) && strcmp(kind, "residential") == 0; i++)
        if (strstr(low, t[i].word))
            kind = t[i].kind;
    g_free(low);
    return kind;
}

/* Households a building stands for: one per 150 m² of footprint, at least one. */
static int building_units(OGRGeometryH g, double kx, double ky)
{
    double area = OGR_G_Area(g) * kx * ky;
    return (int)fmax(1, fmin(500, round(area / 150)));
}

static int add_building(gis_pipenet *n, OGRFeatureH f, int *k, double kx, double ky, char **err)
{
    OGRGeometryH g = OGR_F_GetGeometryRef(f);
    if (!g || OGR_G_IsEmpty(g))
        return 0;
    OGREnvelope e;
    OGR_G_GetEnvelope(g, &e);
    int in = OGR_F_GetFieldIndex(f, "name");
    const char *name =
        in >= 0 && OGR_F_IsFieldSetAndNotNull(f, in) ? OGR_F_GetFieldAsString(f, in) : "";
    char id[32];
    g_snprintf(id, sizeof id, "C%d", ++*k);
    int units = building_units(g, kx, ky);
    const char *kind = kind_from_name(name);
    double x = (e.MinX + e.MaxX) / 2, y = (e.MinY + e.MaxY) / 2;
    int li = pipes__nearest_link_any(n, x, y, NULL);
    return MIN(gis_pipenet_add_customer(n, id, name, kind, strcmp(kind, "residential") ? 1 : units,
                                        x, y, li >= 0 ? gis_pipenet_link(n, (size_t)li)->id : NULL,
                                        NULL, err),
               0);
}

static int add_hospital(gis_pipenet *n, OGRFeatureH f, int *k, char **err)
{
    int ik = OGR_F_GetFieldIndex(f, "kind"), in = OGR_F_GetFieldIndex(f, "name");
    OGRGeometryH g = OGR_F_GetGeometryRef(f);
    if (ik < 0 || strcmp(OGR_F_GetFieldAsString(f, ik), "hospital") != 0 || !g ||
        wkbFlatten(OGR_G_GetGeometryType(g)) != wkbPoint)
        return 0;
    char id[32];
    g_snprintf(id, sizeof id, "H%d", ++*k);
    int li = pipes__nearest_link_any(n, OGR_G_GetX(g, 0), OGR_G_GetY(g, 0), NULL);
    return MIN(gis_pipenet_add_customer(n, id, in >= 0 ? OGR_F_GetFieldAsString(f, in) : "",
                                        "hospital", 1, OGR_G_GetX(g, 0), OGR_G_GetY(g, 0),
                                        li >= 0 ? gis_pipenet_link(n, (size_t)li)->id : NULL, NULL,
                                        err),
               0);
}

/* Customers: one per building; hospitals also from the stations layer. */
static int add_customers(gis_pipenet *n, const char *gpkg, char **err)
{
    GDALDatasetH ds = GDALOpenEx(gpkg, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds)
        return pipes__error(err, CORE_EIO, "cannot open %s", gpkg);
    double b[4], kx, ky;
    gis_pipenet_bbox(n, b);
    pipes__lonlat_scale((b[1] + b[3]) / 2, &kx, &ky);
    OGRLayerH l = GDALDatasetGetLayerByName(ds, "buildings");
    OGRFeatureH f;
    int rc = 0, k = 0, h = 0;
    while (!rc && l && (f = OGR_L_GetNextFeature(l))) {
        rc = add_building(n, f, &k, kx, ky, err);
        OGR_F_Destroy(f);
    }
    l = GDALDatasetGetLayerByName(ds, "stations");
    while (!rc && l && (f = OGR_L_GetNextFeature(l))) {
        rc = add_hospital(n, f, &h, err);
        OGR_F_Destroy(f);
    }
    GDALClose(ds);
    return rc;
}

static int generate(const import_opts *o, gis_pipenet **out, json_t *report, char **err)
{
    int gas = strcmp(o->utility, "gas") == 0;
    char *gpkg = g_build_filename(o->city, "city.gpkg", NULL);
    GArray *roads = g_array_new(FALSE, FALSE, sizeof(road));
    g_array_set_clear_func(roads, road_clear);
    GArray *lines = pipes__lines_new(), *points = pipes__points_new();
    gis_pipenet *n = gis_pipenet_new(o->name, o->utility);
    GDALAllRegister();
    int rc = read_roads(gpkg, gas, roads, err);
    if (!rc) {
        split_roads(roads, lines);
        keep_largest_part(lines);
        place_sources(lines, points, gas);
        rc = pipes__build(n, lines, points, GENERATE_SNAP_M, report, err);
    }
    if (!rc)
        rc = place_valves(n, gas ? 2 : 1, err);
    if (!rc)
        rc = add_customers(n, gpkg, err);
    json_object_set_new(report, "generated",
                        json_pack("{ss ss si}", "from", "city.gpkg roads", "valves",
                                  gas ? "strategic 2" : "strategic 1", "seed", GENERATE_SEED));
    g_array_free(roads, TRUE), g_array_free(lines, TRUE), g_array_free(points, TRUE);
    g_free(gpkg);
    if (rc)
        gis_pipenet_free(n);
    else
        *out = n;
    return rc;
}

/* ---- an EPANET file ---- */

static int from_inp(const import_opts *o, gis_pipenet **out, json_t *report, char **err)
{
    gis_pipenet *n = NULL;
    int rc = gis_pipenet_read_inp(o->inp, o->name, o->utility, &n, err);
    if (rc)
        return rc;
    size_t missing = gis_pipenet_inp_missing_coords(n);
    if (missing)
        rc = pipes__error(
            err, CORE_EINVAL,
            "--inp %s: %zu of %zu nodes have no [COORDINATES]: the network cannot be placed"
            " on the map (export it with coordinates)",
            o->inp, missing, gis_pipenet_node_count(n));
    if (!rc && o->valves)
        rc = MIN(gis_pipenet_read_valves_csv(n, o->valves, err), 0);
    if (!rc && o->crs)
        rc = gis_pipenet_reproject(n, o->crs, err);
    double b[4];
    gis_pipenet_bbox(n, b);
    if (!rc && !o->crs && !(gis_lonlat_valid(b[0], b[1]) && gis_lonlat_valid(b[2], b[3])))
        rc =
            pipes__error(err, CORE_EINVAL,
                         "--inp %s: the coordinates are not longitude/latitude: give their CRS with"
                         " --crs (EPSG:…, a PROJ string or WKT)",
                         o->inp);
    json_object_set_new(report, "source", json_string(o->inp));
    json_object_set_new(report, "crs", json_string(o->crs ? o->crs : "EPSG:4326"));
    if (rc) {
        gis_pipenet_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

/* ---- the command ---- */

static json_int_t report_count(const json_t *report, const char *list)
{
    return json_integer_value(json_object_get(json_object_get(report, list), "count"));
}

static void print_summary(const gis_pipenet *n, const json_t *report)
{
    size_t largest = 0;
    for (size_t s = 0; s < gis_pipenet_segment_count(n); s++)
        largest = MAX(largest, gis_pipenet_segment_size(n, (int)s));
    printf("network %s (%s): %zu nodes, %zu links, %zu valves, %zu customers, %zu segments"
           " (largest %zu elements); %" JSON_INTEGER_FORMAT " dangling ends, %" JSON_INTEGER_FORMAT
           " unmatched points, %" JSON_INTEGER_FORMAT " unplaced valves, %" JSON_INTEGER_FORMAT
           " far customers\n",
           gis_pipenet_name(n), gis_pipenet_utility(n), gis_pipenet_node_count(n),
           gis_pipenet_link_count(n), gis_pipenet_valve_count(n), gis_pipenet_customer_count(n),
           gis_pipenet_segment_count(n), largest, report_count(report, "dangling_ends"),
           report_count(report, "unmatched_points"), report_count(report, "unplaced_valves"),
           report_count(report, "far_customers"));
}

static int import_network(const import_opts *o, char **err)
{
    gis_pipenet *n = NULL;
    json_t *report = json_object();
    int rc;
    if (o->generate) {
        rc = generate(o, &n, report, err);
    } else if (o->inp) {
        rc = from_inp(o, &n, report, err);
    } else {
        json_t *r = NULL;
        rc = gis_pipenet_read_layers(&o->layers, o->name, o->utility, &n, &r, err);
        if (!rc)
            json_object_update(report, r);
        json_decref(r);
    }
    if (!rc && (o->inp || o->generate))
        rc = pipes__read_customers(n, o->customers, o->layers.source_srs, report, err);
    if (!rc)
        rc = gis_pipenet_finish(n, 1, err);
    if (!rc)
        rc = gis_pipenet_save(n, o->city, report, err);
    if (!rc && !o->quiet)
        print_summary(n, report);
    gis_pipenet_free(n);
    json_decref(report);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: citycmd import-network --city DIR --name NAME [--utility water|gas]\n"
                    "         (--inp FILE.inp [--valves VALVES.csv] [--crs CRS]\n"
                    "          | --pipes SRC [--junctions SRC] [--sources SRC] [--valves SRC]\n"
                    "            [--source-srs CRS] [--snap M]\n"
                    "          | --generate) [--customers SRC] [--quiet]\n"
                    "  --inp       an EPANET network with coordinates; --crs gives their CRS\n"
                    "              (needed unless they are longitude/latitude)\n"
                    "  --pipes     pipes as lines from any GDAL source, SOURCE[|LAYER]; line ends\n"
                    "              within --snap metres (0.5) share a node\n"
                    "  --generate  a demo network along the package's streets (not real data)\n");
    return 2;
}

/* Sets the option a names to v; 0 when a is not a known option. */
static int set_option(import_opts *o, const char *a, const char *v)
{
    static const struct {
        const char *name;
        size_t off;
    } t[] = {{"--city", offsetof(import_opts, city)},
             {"--name", offsetof(import_opts, name)},
             {"--utility", offsetof(import_opts, utility)},
             {"--inp", offsetof(import_opts, inp)},
             {"--valves", offsetof(import_opts, valves)},
             {"--crs", offsetof(import_opts, crs)},
             {"--customers", offsetof(import_opts, customers)},
             {"--pipes", offsetof(import_opts, layers.pipes)},
             {"--junctions", offsetof(import_opts, layers.junctions)},
             {"--sources", offsetof(import_opts, layers.sources)},
             {"--source-srs", offsetof(import_opts, layers.source_srs)}};
    for (size_t i = 0; i < G_N_ELEMENTS(t); i++)
        if (strcmp(a, t[i].name) == 0) {
            *(const char **)(void *)((char *)o + t[i].off) = v;
            return 1;
        }
    if (strcmp(a, "--snap") == 0) {
        char *end;
        o->layers.snap_m = g_ascii_strtod(v, &end);
        return *end == '\0' && o->layers.snap_m > 0 && o->layers.snap_m <= 100;
    }
    return 0;
}

static int parse_args(import_opts *o, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--quiet") == 0)
            o->quiet = 1;
        else if (strcmp(argv[i], "--generate") == 0)
            o->generate = 1;
        else if (i + 1 >= argc || !set_option(o, argv[i], argv[i + 1]))
            return -1;
        else
            i++;
    }
    o->utility = o->utility ? o->utility : "water";
    o->layers.valves = o->inp ? NULL : o->valves;
    o->layers.customers = o->customers;
    int modes = !!o->inp + !!o->layers.pipes + o->generate;
    if (!o->city || !o->name || modes != 1)
        return -1;
    return strcmp(o->utility, "water") == 0 || strcmp(o->utility, "gas") == 0 ? 0 : -1;
}

int gis_import_network_main(int argc, char **argv)
{
    import_opts o = {0};
    if (parse_args(&o, argc, argv) != 0)
        return usage();
    char *err = NULL;
    int rc = import_network(&o, &err);
    if (rc)
        fprintf(stderr, "citycmd import-network: %s\n", err ? err : core_strerror(rc));
    g_free(err);
    return rc ? 1 : 0;
}

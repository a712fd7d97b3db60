/*
 * gis_bench — point-in-district and nearest-road queries per second of a
 * loaded city, against a plain GEOS loop.
 *
 * The city's queries (gis_districts_at, gis_nearest_road) use STR trees,
 * prepared district geometries and a branch-and-bound nearest search. The
 * peer, run in the same process on the same random points (fixed seed), is
 * what one would write without an index: the package read with OGR, the
 * geometries projected with PROJ to the same local transverse Mercator,
 * then every district tested with GEOSIntersects_r and every road measured
 * with GEOSDistance_r. Both sides include projecting the query point; the
 * city's side also builds its JSON answer. The peer is slow, so it runs on
 * the first N/20 points and both are reported per query. On those points
 * the answers must agree (same districts; nearest-road distances within
 * 1e-6 m), or the bench exits 1.
 *
 *   build/bench/gis_bench [--city DIR] [--queries N]
 */
#include "../../core/core.h"
#include "../../core/log.h"
#include "../../gis/gis.h"

#include <gdal.h>
#include <geos_c.h>
#include <math.h>
#include <ogr_api.h>
#include <proj.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261121

typedef struct {
    char *kind, *name;
    GEOSGeometry *g;
} feature;

typedef struct {
    GEOSContextHandle_t h;
    PJ_CONTEXT *pctx;
    PJ *pj;               /* lon/lat -> local metres */
    GPtrArray *districts; /* feature* */
    GPtrArray *roads;     /* feature* */
} plain;

/* ---- the peer: the package read and projected without the city's code ---- */

static int to_local_xy(double *x, double *y, void *pj)
{
    PJ_COORD c = proj_trans(pj, PJ_FWD, proj_coord(*x, *y, 0, 0));
    *x = c.xy.x;
    *y = c.xy.y;
    return isfinite(*x) && isfinite(*y);
}

static GEOSGeometry *to_local(plain *p, OGRGeometryH g)
{
    size_t n = (size_t)OGR_G_WkbSize(g);
    unsigned char *wkb = g_malloc(n);
    GEOSGeometry *out = NULL;
    if (OGR_G_ExportToWkb(g, wkbNDR, wkb) == OGRERR_NONE) {
        GEOSWKBReader *r = GEOSWKBReader_create_r(p->h);
        GEOSGeometry *in = GEOSWKBReader_read_r(p->h, r, wkb, n);
        GEOSWKBReader_destroy_r(p->h, r);
        if (in) {
            out = GEOSGeom_transformXY_r(p->h, in, to_local_xy, p->pj);
            GEOSGeom_destroy_r(p->h, in);
        }
    }
    g_free(wkb);
    return out;
}

static const char *field(OGRFeatureH f, const char *name)
{
    int i = OGR_F_GetFieldIndex(f, name);
    return i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i) ? OGR_F_GetFieldAsString(f, i) : "";
}

static GPtrArray *read_layer(plain *p, GDALDatasetH ds, const char *name)
{
    GPtrArray *out = g_ptr_array_new();
    OGRLayerH l = GDALDatasetGetLayerByName(ds, name);
    OGRFeatureH f;
    while (l && (f = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        GEOSGeometry *lg = g ? to_local(p, g) : NULL;
        if (lg) {
            feature *ft = g_new0(feature, 1);
            ft->kind = g_strdup(field(f, "kind"));
            ft->name = g_strdup(field(f, "name"));
            ft->g = lg;
            g_ptr_array_add(out, ft);
        }
        OGR_F_Destroy(f);
    }
    return out;
}

static int plain_open(plain *p, const char *dir, double lon0, double lat0)
{
    char *crs = g_strdup_printf("+proj=tmerc +lat_0=%.7f +lon_0=%.7f +k=1 +x_0=0 +y_0=0"
                                " +datum=WGS84 +units=m +no_defs +type=crs",
                                lat0, lon0);
    p->pctx = proj_context_create();
    PJ *pj = proj_create_crs_to_crs(p->pctx, "EPSG:4326", crs, NULL);
    g_free(crs);
    p->pj = pj ? proj_normalize_for_visualization(p->pctx, pj) : NULL;
    proj_destroy(pj);
    p->h = GEOS_init_r();
    char *gpkg = g_build_filename(dir, "city.gpkg", NULL);
    GDALAllRegister();
    GDALDatasetH ds = GDALOpenEx(gpkg, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    g_free(gpkg);
    if (!p->pj || !ds)
        return CORE_EIO;
    p->districts = read_layer(p, ds, "districts");
    p->roads = read_layer(p, ds, "roads");
    GDALClose(ds);
    return 0;
}

static void free_features(plain *p, GPtrArray *a)
{
    for (guint i = 0; a && i < a->len; i++) {
        feature *f = a->pdata[i];
        GEOSGeom_destroy_r(p->h, f->g);
        g_free(f->kind);
        g_free(f->name);
        g_free(f);
    }
    if (a)
        g_ptr_array_free(a, TRUE);
}

static void plain_close(plain *p)
{
    free_features(p, p->districts);
    free_features(p, p->roads);
    GEOS_finish_r(p->h);
    proj_destroy(p->pj);
    proj_context_destroy(p->pctx);
}

static GEOSGeometry *plain_point(plain *p, double lon, double lat)
{
    double x = lon, y = lat;
    to_local_xy(&x, &y, p->pj);
    return GEOSGeom_createPointFromXY_r(p->h, x, y);
}

/* The districts containing a point: kind:name, sorted, joined (g_free). */
static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *joined(GPtrArray *keys)
{
    g_ptr_array_sort(keys, cmp_str);
    g_ptr_array_add(keys, NULL);
    char *s = g_strjoinv(" | ", (char **)keys->pdata);
    g_ptr_array_free(keys, TRUE);
    return s;
}

static char *plain_districts(plain *p, double lon, double lat)
{
    GEOSGeometry *pt = plain_point(p, lon, lat);
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < p->districts->len; i++) {
        feature *d = p->districts->pdata[i];
        if (GEOSIntersects_r(p->h, d->g, pt) == 1)
            g_ptr_array_add(keys, g_strdup_printf("%s:%s", d->kind, d->name));
    }
    GEOSGeom_destroy_r(p->h, pt);
    return joined(keys);
}

static double plain_nearest(plain *p, double lon, double lat)
{
    GEOSGeometry *pt = plain_point(p, lon, lat);
    double best = INFINITY, d;
    for (guint i = 0; i < p->roads->len; i++)
        if (GEOSDistance_r(p->h, ((feature *)p->roads->pdata[i])->g, pt, &d) == 1 && d < best)
            best = d;
    GEOSGeom_destroy_r(p->h, pt);
    return best;
}

static char *city_districts(gis_city *c, double lon, double lat)
{
    json_t *a = gis_districts_at(c, lon, lat, NULL);
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    size_t i;
    json_t *d;
    json_array_foreach(a, i, d)
    {
        g_ptr_array_add(keys,
                        g_strdup_printf("%s:%s", json_string_value(json_object_get(d, "kind")),
                                        json_string_value(json_object_get(d, "name"))));
    }
    json_decref(a);
    return joined(keys);
}

/* ---- timing ---- */

typedef enum { CITY_DISTRICTS, CITY_ROADS, PLAIN_DISTRICTS, PLAIN_ROADS } kind;

static void query(kind k, gis_city *c, plain *p, double lon, double lat)
{
    gis_road_hit hit;
    switch (k) {
    case CITY_DISTRICTS:
        json_decref(gis_districts_at(c, lon, lat, NULL));
        break;
    case CITY_ROADS:
        if (gis_nearest_road(c, lon, lat, 1e9, 0, &hit) != 0) {
            fprintf(stderr, "gis_bench: no road found near %.7f,%.7f\n", lon, lat);
            exit(1);
        }
        break;
    case PLAIN_DISTRICTS:
        g_free(plain_districts(p, lon, lat));
        break;
    case PLAIN_ROADS:
        plain_nearest(p, lon, lat);
        break;
    }
}

/* Queries per second over the first n points (after a short warm-up). */
static double rate(kind k, gis_city *c, plain *p, const double *pts, int n)
{
    for (int i = 0; i < n && i < 50; i++)
        query(k, c, p, pts[2 * i], pts[2 * i + 1]);
    int64_t t0 = core_mono_us();
    for (int i = 0; i < n; i++)
        query(k, c, p, pts[2 * i], pts[2 * i + 1]);
    return n / ((double)(core_mono_us() - t0) / 1e6);
}

/* Both sides on the peer's points; the number of points that disagree. */
static int disagreements(gis_city *c, plain *p, const double *pts, int n)
{
    int wrong = 0;
    for (int i = 0; i < n; i++) {
        double lon = pts[2 * i], lat = pts[2 * i + 1];
        char *want = plain_districts(p, lon, lat), *got = city_districts(c, lon, lat);
        gis_road_hit hit = {0};
        double d = plain_nearest(p, lon, lat);
        int rc = gis_nearest_road(c, lon, lat, 1e9, 0, &hit);
        if (strcmp(want, got) != 0 || rc != 0 || fabs(hit.distance_m - d) > 1e-6) {
            if (wrong++ < 5)
                fprintf(stderr,
                        "gis_bench: %.7f,%.7f: plain [%s] %.9f m, city [%s] %.9f m (rc %d)\n", lon,
                        lat, want, d, got, hit.distance_m, rc);
        }
        g_free(want);
        g_free(got);
    }
    return wrong;
}

static int parse_args(int argc, char **argv, const char **dir, int *n)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--city") && i + 1 < argc) {
            *dir = argv[++i];
        } else if (!strcmp(argv[i], "--queries") && i + 1 < argc) {
            *n = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: gis_bench [--city DIR] [--queries N]\n");
            return 1;
        }
    }
    if (*n < 20) {
        fprintf(stderr, "gis_bench: --queries must be at least 20\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = GIS_BENCH_CITY;
    int n = 20000;
    if (parse_args(argc, argv, &dir, &n))
        return 2;
    core_log_set_level(CORE_LOG_WARN);
    char *err = NULL;
    gis_city *c = gis_city_load(dir, &err);
    if (!c) {
        fprintf(stderr, "gis_bench: %s\n", err);
        g_free(err);
        return 1;
    }
    json_t *info = gis_city_info(c);
    json_t *bbox = json_object_get(info, "bbox"), *center = json_object_get(info, "center");
    plain p = {0};
    if (plain_open(&p, dir, json_number_value(json_array_get(center, 0)),
                   json_number_value(json_array_get(center, 1)))) {
        fprintf(stderr, "gis_bench: cannot read %s/city.gpkg or build its projection\n", dir);
        return 1;
    }
    /* Uniform random points in the city's bounding box. */
    double *pts = g_new(double, 2 * (size_t)n);
    GRand *rnd = g_rand_new_with_seed(SEED);
    for (int i = 0; i < n; i++) {
        pts[2 * i] = g_rand_double_range(rnd, json_number_value(json_array_get(bbox, 0)),
                                         json_number_value(json_array_get(bbox, 2)));
        pts[2 * i + 1] = g_rand_double_range(rnd, json_number_value(json_array_get(bbox, 1)),
                                             json_number_value(json_array_get(bbox, 3)));
    }
    g_rand_free(rnd);
    int m = n / 20;
    printf("gis_bench: %s, %u districts, %u roads; GEOS %s, PROJ %s; %d queries "
           "(plain loop: %d), seed %d\n",
           gis_city_name(c), p.districts->len, p.roads->len, GEOSversion(), proj_info().version, n,
           m, SEED);
    double cd = rate(CITY_DISTRICTS, c, &p, pts, n), pd = rate(PLAIN_DISTRICTS, c, &p, pts, m);
    double cr = rate(CITY_ROADS, c, &p, pts, n), pr = rate(PLAIN_ROADS, c, &p, pts, m);
    printf("%-18s %14s %16s %9s\n", "query", "city q/s", "plain loop q/s", "speed-up");
    printf("%-18s %14.0f %16.0f %8.1fx\n", "point in district", cd, pd, cd / pd);
    printf("%-18s %14.0f %16.0f %8.1fx\n", "nearest road", cr, pr, cr / pr);
    int wrong = disagreements(c, &p, pts, m);
    printf("agreement: %d of %d points %s\n", m - wrong, m,
           wrong ? "agree: ANSWERS DIFFER"
                 : "agree (districts identical, road distances "
                   "within 1e-6 m)");
    g_free(pts);
    plain_close(&p);
    json_decref(info);
    gis_city_free(c);
    return wrong ? 1 : 0;
}

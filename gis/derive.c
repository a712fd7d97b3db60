/*
 * derive.c — service districts where OpenStreetMap has none: the area
 * nearest to each station of a kind (a Voronoi cell, in metres), clipped to
 * the city's extent (the convex hull of its roads, widened by 300 m).
 * Stations of a kind closer than 30 m to one another (a fire station mapped
 * as both a node and a building) share one cell, named after the first
 * with a name.
 *
 * Straight-line nearness is a first approximation of "first due by road";
 * the road graph can refine it later without changing the layer.
 */
#include "internal.h"

#include "../core/log.h"

#include <string.h>

static const struct {
    const char *district; /* districts.kind */
    const char *label;
    const char *stations[3]; /* stations.kind it is made from */
} kinds[] = {
    {"fire", "Fire district", {"fire", NULL, NULL}},
    {"police", "Police precinct", {"police", NULL, NULL}},
    {"ems", "EMS zone", {"hospital", "ambulance", NULL}},
};

#define MERGE_M 30.0
#define DERIVE_MS 120000

typedef struct {
    double x, y; /* local */
    const char *name;
} site;

static void geos_notice(const char *fmt, ...) {}

/* The extent the cells are clipped to: hull of the roads plus 300 m. */
static GEOSGeometry *city_extent(GEOSContextHandle_t h, const gis__local *l, OGRLayerH roads)
{
    GEOSGeometry **parts = NULL;
    size_t n = 0, cap = 0;
    OGR_L_ResetReading(roads);
    OGRFeatureH f;
    while ((f = OGR_L_GetNextFeature(roads))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        GEOSGeometry *lg = g ? gis__to_local(h, l, g) : NULL;
        if (lg) {
            if (n == cap)
                parts = g_renew(GEOSGeometry *, parts, cap = cap ? cap * 2 : 256);
            parts[n++] = lg;
        }
        OGR_F_Destroy(f);
    }
    if (n == 0) {
        g_free(parts);
        return NULL;
    }
    GEOSGeometry *all = GEOSGeom_createCollection_r(h, GEOS_GEOMETRYCOLLECTION, parts, (unsigned)n);
    g_free(parts);
    GEOSGeometry *hull = GEOSConvexHull_r(h, all);
    GEOSGeom_destroy_r(h, all);
    GEOSGeometry *ext = hull ? GEOSBuffer_r(h, hull, 300.0, 8) : NULL;
    GEOSGeom_destroy_r(h, hull);
    return ext;
}

static int write_cell(OGRLayerH districts, GEOSContextHandle_t h, const gis__local *l,
                      const GEOSGeometry *cell, const char *kind, const char *label,
                      const char *station, int index)
{
    OGRGeometryH g = gis__to_wgs84(h, l, cell);
    if (!g)
        return 0;
    if (wkbFlatten(OGR_G_GetGeometryType(g)) == wkbPolygon)
        g = OGR_G_ForceToMultiPolygon(g);
    OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(districts));
    char *name = station && *station ? g_strdup_printf("%s: %s", label, station)
                                     : g_strdup_printf("%s %d", label, index);
    OGR_F_SetFieldString(f, OGR_F_GetFieldIndex(f, "kind"), kind);
    OGR_F_SetFieldString(f, OGR_F_GetFieldIndex(f, "name"), name);
    OGR_F_SetFieldString(f, OGR_F_GetFieldIndex(f, "station"), station ? station : "");
    OGR_F_SetGeometryDirectly(f, g);
    int ok = OGR_L_CreateFeature(districts, f) == OGRERR_NONE;
    OGR_F_Destroy(f);
    g_free(name);
    return ok;
}

/* Sites of one district kind, merged when closer than MERGE_M. */
static GArray *sites_of(const gis__local *l, GArray *stations, const char *const *of)
{
    GArray *sites = g_array_new(FALSE, FALSE, sizeof(site));
    for (guint i = 0; i < stations->len; i++) {
        gis__station *s = &g_array_index(stations, gis__station, i);
        if (!g_strv_contains(of, s->kind))
            continue;
        site st = {.name = s->name};
        gis__local_fwd(l, s->x, s->y, &st.x, &st.y);
        int merged = 0;
        for (guint j = 0; j < sites->len && !merged; j++) {
            site *o = &g_array_index(sites, site, j);
            if ((o->x - st.x) * (o->x - st.x) + (o->y - st.y) * (o->y - st.y) < MERGE_M * MERGE_M) {
                if (!*o->name)
                    o->name = st.name;
                merged = 1;
            }
        }
        if (!merged)
            g_array_append_val(sites, st);
    }
    return sites;
}

static int64_t derive_kind(GEOSContextHandle_t h, const gis__local *l, OGRLayerH districts,
                           const GEOSGeometry *extent, GArray *sites, int k)
{
    int64_t written = 0;
    if (sites->len == 1) {
        return write_cell(districts, h, l, extent, kinds[k].district, kinds[k].label,
                          g_array_index(sites, site, 0).name, 1);
    }
    GEOSGeometry **pts = g_new(GEOSGeometry *, sites->len);
    for (guint i = 0; i < sites->len; i++)
        pts[i] = GEOSGeom_createPointFromXY_r(h, g_array_index(sites, site, i).x,
                                              g_array_index(sites, site, i).y);
    GEOSGeometry *mp = GEOSGeom_createCollection_r(h, GEOS_MULTIPOINT, pts, sites->len);
    g_free(pts);
    GEOSGeometry *cells = GEOSVoronoiDiagram_r(h, mp, extent, 0.0, 0);
    int ncells = cells ? GEOSGetNumGeometries_r(h, cells) : 0;
    for (int c = 0; c < ncells; c++) {
        const GEOSGeometry *cell = GEOSGetGeometryN_r(h, cells, c);
        GEOSGeometry *clipped = GEOSIntersection_r(h, cell, extent);
        if (!clipped)
            continue;
        const char *name = "";
        int index = c + 1;
        for (guint i = 0; i < sites->len; i++) {
            site *s = &g_array_index(sites, site, i);
            GEOSGeometry *p = GEOSGeom_createPointFromXY_r(h, s->x, s->y);
            int inside = GEOSIntersects_r(h, cell, p) == 1;
            GEOSGeom_destroy_r(h, p);
            if (inside) {
                name = s->name;
                index = (int)i + 1;
                break;
            }
        }
        if (!GEOSisEmpty_r(h, clipped))
            written += write_cell(districts, h, l, clipped, kinds[k].district, kinds[k].label, name,
                                  index);
        GEOSGeom_destroy_r(h, clipped);
    }
    GEOSGeom_destroy_r(h, cells);
    GEOSGeom_destroy_r(h, mp);
    return written;
}

int gis__derive_districts(GDALDatasetH ds, OGRLayerH districts, OGRLayerH roads, GArray *stations,
                          int64_t *count, char **err)
{
    OGREnvelope env;
    if (OGR_L_GetExtent(roads, &env, TRUE) != OGRERR_NONE)
        return 0; /* no roads: nothing to clip to, no derived districts */
    gis__local *l = gis__local_new((env.MinX + env.MaxX) / 2, (env.MinY + env.MaxY) / 2, err);
    if (!l)
        return CORE_EINVAL;
    GEOSContextHandle_t h = GEOS_init_r();
    GEOSContext_setNoticeHandler_r(h, geos_notice);
    /* A pathological extract must not hang the import. */
    gis__deadline_begin(DERIVE_MS);
    GEOSGeometry *extent = city_extent(h, l, roads);
    for (size_t k = 0; extent && k < G_N_ELEMENTS(kinds); k++) {
        GArray *sites = sites_of(l, stations, kinds[k].stations);
        if (sites->len > 0) {
            int64_t n = derive_kind(h, l, districts, extent, sites, (int)k);
            *count += n;
            log_debug("gis.derived", "kind=%s stations=%u districts=%" G_GINT64_FORMAT,
                      kinds[k].district, sites->len, n);
        }
        g_array_free(sites, TRUE);
    }
    int late = gis__deadline_end();
    GEOSGeom_destroy_r(h, extent);
    GEOS_finish_r(h);
    gis__local_free(l);
    if (late) {
        *err = g_strdup_printf("deriving the service districts took longer than %d s",
                               DERIVE_MS / 1000);
        return CORE_ETIMEDOUT;
    }
    return 0;
}

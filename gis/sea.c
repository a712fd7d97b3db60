/*
 * sea.c — the sea of a coastal city, from OpenStreetMap's coastline ways.
 *
 * OSM has no sea polygons; it has coastline ways drawn with the land on
 * their left. The coastline pieces inside the city's extent (the roads'
 * bounding box widened by 2 km) are noded together with the extent's
 * boundary (open ends lengthened to reach it) and polygonised into faces.
 * A face is sea when more than twice as many points just to the right of
 * coastline segments fall in it as points just to their left (a sharp
 * turn can put a probe across the line). Faces that touch no coastline
 * are land. Computed in metres in the
 * city's local projection, under the same GEOS deadline as the districts.
 */
#include "internal.h"

#include <math.h>

#define MARGIN_M 2000.0
#define PROBE_M 0.5

static void quiet(const char *fmt, ...) {}

/* The probes on each side of every coastline segment (local metres). */
static void probes(GEOSContextHandle_t h, const GEOSGeometry *lines, GArray *left, GArray *right)
{
    int n = GEOSGetNumGeometries_r(h, lines);
    for (int i = 0; i < n; i++) {
        const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(h, GEOSGetGeometryN_r(h, lines, i));
        unsigned size = 0;
        GEOSCoordSeq_getSize_r(h, seq, &size);
        for (unsigned k = 0; k + 1 < size; k++) {
            double x0, y0, x1, y1;
            GEOSCoordSeq_getXY_r(h, seq, k, &x0, &y0);
            GEOSCoordSeq_getXY_r(h, seq, k + 1, &x1, &y1);
            double dx = x1 - x0, dy = y1 - y0, len = hypot(dx, dy);
            if (len < 4 * PROBE_M)
                continue;
            double mx = (x0 + x1) / 2, my = (y0 + y1) / 2, nx = -dy / len, ny = dx / len;
            double l[2] = {mx + nx * PROBE_M, my + ny * PROBE_M};
            double r[2] = {mx - nx * PROBE_M, my - ny * PROBE_M};
            g_array_append_vals(left, l, 1);
            g_array_append_vals(right, r, 1);
        }
    }
}

/* An open line lengthened at both ends along its end segments by d, so a
 * coastline that stops short of the extent's edge still divides it. */
static GEOSGeometry *extend(GEOSContextHandle_t h, const GEOSGeometry *line, double d)
{
    const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(h, line);
    unsigned n = 0;
    GEOSCoordSeq_getSize_r(h, seq, &n);
    if (n < 2 || GEOSisClosed_r(h, line) == 1)
        return GEOSGeom_clone_r(h, line);
    GEOSCoordSequence *out = GEOSCoordSeq_create_r(h, n + 2, 2);
    double ax, ay, bx, by;
    for (unsigned i = 0; i < n; i++) {
        GEOSCoordSeq_getXY_r(h, seq, i, &ax, &ay);
        GEOSCoordSeq_setXY_r(h, out, i + 1, ax, ay);
    }
    GEOSCoordSeq_getXY_r(h, seq, 0, &ax, &ay);
    GEOSCoordSeq_getXY_r(h, seq, 1, &bx, &by);
    double len = hypot(ax - bx, ay - by);
    GEOSCoordSeq_setXY_r(h, out, 0, ax + (ax - bx) / len * d, ay + (ay - by) / len * d);
    GEOSCoordSeq_getXY_r(h, seq, n - 1, &ax, &ay);
    GEOSCoordSeq_getXY_r(h, seq, n - 2, &bx, &by);
    len = hypot(ax - bx, ay - by);
    GEOSCoordSeq_setXY_r(h, out, n + 1, ax + (ax - bx) / len * d, ay + (ay - by) / len * d);
    return GEOSGeom_createLineString_r(h, out);
}

static int count_in(GEOSContextHandle_t h, const GEOSPreparedGeometry *face, GArray *pts)
{
    int n = 0;
    for (guint i = 0; i < pts->len; i++) {
        double *p = &g_array_index(pts, double, i * 2);
        GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(h, p[0], p[1]);
        n += GEOSPreparedContains_r(h, face, pt) == 1;
        GEOSGeom_destroy_r(h, pt);
    }
    return n;
}

static int64_t write_sea(GEOSContextHandle_t h, const gis__local *l, OGRLayerH water,
                         const GEOSGeometry *face)
{
    OGRGeometryH g = gis__to_wgs84(h, l, face);
    if (!g)
        return 0;
    g = OGR_G_ForceToMultiPolygon(g);
    OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(water));
    OGR_F_SetFieldString(f, OGR_F_GetFieldIndex(f, "kind"), "sea");
    OGR_F_SetGeometryDirectly(f, g);
    int ok = OGR_L_CreateFeature(water, f) == OGRERR_NONE;
    OGR_F_Destroy(f);
    return ok;
}

int gis__derive_sea(OGRLayerH water, OGRLayerH roads, GPtrArray *coast, int64_t *count, char **err)
{
    OGREnvelope env;
    if (coast->len == 0 || OGR_L_GetExtent(roads, &env, TRUE) != OGRERR_NONE)
        return 0;
    gis__local *l = gis__local_new((env.MinX + env.MaxX) / 2, (env.MinY + env.MaxY) / 2, err);
    if (!l)
        return CORE_EINVAL;
    GEOSContextHandle_t h = GEOS_init_r();
    GEOSContext_setNoticeHandler_r(h, quiet);
    GEOSContext_setErrorHandler_r(h, quiet);
    gis__deadline_begin(60000);
    /* The extent, in local metres. */
    double x0, y0, x1, y1;
    gis__local_fwd(l, env.MinX, env.MinY, &x0, &y0);
    gis__local_fwd(l, env.MaxX, env.MaxY, &x1, &y1);
    GEOSGeometry *box =
        GEOSGeom_createRectangle_r(h, x0 - MARGIN_M, y0 - MARGIN_M, x1 + MARGIN_M, y1 + MARGIN_M);
    GEOSGeometry **parts = g_new(GEOSGeometry *, coast->len + 1);
    unsigned n = 0;
    for (guint i = 0; i < coast->len; i++) {
        GEOSGeometry *c = gis__to_local(h, l, coast->pdata[i]);
        GEOSGeometry *in = c ? GEOSIntersection_r(h, c, box) : NULL;
        GEOSGeom_destroy_r(h, c);
        if (in)
            parts[n++] = in;
    }
    GEOSGeometry *coastlines = GEOSGeom_createCollection_r(h, GEOS_GEOMETRYCOLLECTION, parts, n);
    GEOSGeometry *merged = GEOSLineMerge_r(h, coastlines);
    /* Open ends reach past the extent, then everything is cut to it. */
    int nm = merged ? GEOSGetNumGeometries_r(h, merged) : 0;
    double reach = 2 * (x1 - x0 + y1 - y0 + 4 * MARGIN_M);
    GEOSGeometry **ext = g_new(GEOSGeometry *, (size_t)nm + 1);
    for (int i = 0; i < nm; i++)
        ext[i] = extend(h, GEOSGetGeometryN_r(h, merged, i), reach);
    GEOSGeometry *extended =
        GEOSGeom_createCollection_r(h, GEOS_MULTILINESTRING, ext, (unsigned)nm);
    g_free(ext);
    parts[0] = GEOSBoundary_r(h, box);
    parts[1] = GEOSIntersection_r(h, extended, box);
    GEOSGeom_destroy_r(h, extended);
    GEOSGeometry *all = GEOSGeom_createCollection_r(h, GEOS_GEOMETRYCOLLECTION, parts, 2);
    GEOSGeometry *noded = GEOSUnaryUnion_r(h, all);
    const GEOSGeometry *input[1] = {noded};
    GEOSGeometry *faces = noded ? GEOSPolygonize_r(h, input, 1) : NULL;
    GArray *left = g_array_new(FALSE, FALSE, sizeof(double) * 2);
    GArray *right = g_array_new(FALSE, FALSE, sizeof(double) * 2);
    if (merged)
        probes(h, merged, left, right);
    int nfaces = faces ? GEOSGetNumGeometries_r(h, faces) : 0;
    for (int i = 0; i < nfaces; i++) {
        const GEOSGeometry *face = GEOSGetGeometryN_r(h, faces, i);
        const GEOSPreparedGeometry *pf = GEOSPrepare_r(h, face);
        /* By majority: a sharp turn can put a probe across the line. */
        int r = count_in(h, pf, right), lc = count_in(h, pf, left);
        if (r > 2 * lc)
            *count += write_sea(h, l, water, face);
        GEOSPreparedGeom_destroy_r(h, pf);
    }
    int late = gis__deadline_end();
    g_array_free(left, TRUE);
    g_array_free(right, TRUE);
    GEOSGeom_destroy_r(h, faces);
    GEOSGeom_destroy_r(h, noded);
    GEOSGeom_destroy_r(h, all);
    GEOSGeom_destroy_r(h, merged);
    GEOSGeom_destroy_r(h, coastlines);
    GEOSGeom_destroy_r(h, box);
    g_free(parts);
    GEOS_finish_r(h);
    gis__local_free(l);
    if (late) {
        *err = g_strdup("deriving the sea from the coastline took longer than 60 s");
        return CORE_ETIMEDOUT;
    }
    return 0;
}

/*
 * proj.c — the city's metric local projection, and conversions between OGR
 * geometries in WGS84 and GEOS geometries in local metres.
 *
 * Distances, buffers, nearest-road and district cells are computed in a
 * transverse Mercator centred on the city (PROJ), never in degrees: at
 * Monaco's latitude a degree of longitude is 80 km and of latitude 111 km.
 * A gis__local is used by one thread at a time (its PROJ context is its own).
 */
#include "internal.h"

#include <proj.h>

#include <string.h>

struct gis__local {
    PJ_CONTEXT *ctx;
    PJ *fwd; /* lon/lat degrees -> local x/y metres */
    char *definition;
};

gis__local *gis__local_new(double lon0, double lat0, char **err)
{
    gis__local *l = g_new0(gis__local, 1);
    l->ctx = proj_context_create();
    l->definition = g_strdup_printf("+proj=tmerc +lat_0=%.7f +lon_0=%.7f +k=1 +x_0=0 +y_0=0"
                                    " +datum=WGS84 +units=m +no_defs +type=crs",
                                    lat0, lon0);
    PJ *p = proj_create_crs_to_crs(l->ctx, "EPSG:4326", l->definition, NULL);
    if (p) {
        l->fwd = proj_normalize_for_visualization(l->ctx, p);
        proj_destroy(p);
    }
    if (!l->fwd) {
        *err = g_strdup_printf("cannot create the local projection %s: %s", l->definition,
                               proj_context_errno_string(l->ctx, proj_context_errno(l->ctx)));
        gis__local_free(l);
        return NULL;
    }
    return l;
}

void gis__local_free(gis__local *l)
{
    if (!l)
        return;
    proj_destroy(l->fwd);
    proj_context_destroy(l->ctx);
    g_free(l->definition);
    g_free(l);
}

const char *gis__local_definition(const gis__local *l)
{
    return l->definition;
}

void gis__local_fwd(const gis__local *l, double lon, double lat, double *x, double *y)
{
    PJ_COORD c = proj_trans(l->fwd, PJ_FWD, proj_coord(lon, lat, 0, 0));
    *x = c.xy.x;
    *y = c.xy.y;
}

void gis__local_inv(const gis__local *l, double x, double y, double *lon, double *lat)
{
    PJ_COORD c = proj_trans(l->fwd, PJ_INV, proj_coord(x, y, 0, 0));
    *lon = c.lp.lam;
    *lat = c.lp.phi;
}

static int fwd_cb(double *x, double *y, void *user)
{
    gis__local_fwd(user, *x, *y, x, y);
    return 1;
}

static int inv_cb(double *x, double *y, void *user)
{
    gis__local_inv(user, *x, *y, x, y);
    return 1;
}

GEOSGeometry *gis__to_local(GEOSContextHandle_t h, const gis__local *l, OGRGeometryH g)
{
    size_t n = (size_t)OGR_G_WkbSize(g);
    unsigned char *wkb = g_malloc(n);
    GEOSGeometry *out = NULL;
    if (OGR_G_ExportToWkb(g, wkbNDR, wkb) == OGRERR_NONE) {
        GEOSWKBReader *r = GEOSWKBReader_create_r(h);
        GEOSGeometry *in = GEOSWKBReader_read_r(h, r, wkb, n);
        GEOSWKBReader_destroy_r(h, r);
        if (in) {
            out = GEOSGeom_transformXY_r(h, in, fwd_cb, (void *)l);
            GEOSGeom_destroy_r(h, in);
        }
    }
    g_free(wkb);
    return out;
}

OGRGeometryH gis__to_wgs84(GEOSContextHandle_t h, const gis__local *l, const GEOSGeometry *g)
{
    GEOSGeometry *w = GEOSGeom_transformXY_r(h, g, inv_cb, (void *)l);
    if (!w)
        return NULL;
    GEOSWKBWriter *wr = GEOSWKBWriter_create_r(h);
    size_t n = 0;
    unsigned char *wkb = GEOSWKBWriter_write_r(h, wr, w, &n);
    GEOSWKBWriter_destroy_r(h, wr);
    GEOSGeom_destroy_r(h, w);
    OGRGeometryH out = NULL;
    if (wkb && OGR_G_CreateFromWkbEx(wkb, NULL, &out, n) != OGRERR_NONE)
        out = NULL;
    GEOSFree_r(h, wkb);
    return out;
}

/*
 * geom.c — checks on geometry that arrives from clients: coordinates,
 * vertex counts, ring closure and polygon validity (GEOS), each failure
 * with a message that says what and where.
 */
#include "internal.h"

#include <math.h>

/* ---- deadlines for GEOS ---- */

static _Thread_local int64_t deadline_us; /* 0: none */
static _Thread_local int deadline_hit;
static GOnce registered = G_ONCE_INIT;

static void check_deadline(void)
{
    if (deadline_us && g_get_monotonic_time() > deadline_us) {
        deadline_hit = 1;
        GEOS_interruptRequest();
    }
}

static gpointer register_callback(gpointer unused)
{
    GEOS_interruptRegisterCallback(check_deadline);
    return NULL;
}

void gis__deadline_begin(int ms)
{
    g_once(&registered, register_callback, NULL);
    deadline_hit = 0;
    deadline_us = g_get_monotonic_time() + (int64_t)ms * 1000;
}

int gis__deadline_end(void)
{
    deadline_us = 0;
    int hit = deadline_hit;
    deadline_hit = 0;
    return hit;
}

int gis_lonlat_valid(double lon, double lat)
{
    return isfinite(lon) && isfinite(lat) && lon >= -180 && lon <= 180 && lat >= -90 && lat <= 90;
}

static int fail(char **why, char *msg)
{
    *why = msg;
    return CORE_EINVAL;
}

static int check_position(const json_t *p, size_t *count, size_t max, char **why)
{
    if (!json_is_array(p) || json_array_size(p) < 2 || json_array_size(p) > 3)
        return fail(why, g_strdup("a position is an array [lon, lat]"));
    for (size_t i = 0; i < json_array_size(p); i++)
        if (!json_is_number(json_array_get(p, i)))
            return fail(why, g_strdup("a coordinate is not a number"));
    double lon = json_number_value(json_array_get(p, 0)),
           lat = json_number_value(json_array_get(p, 1));
    if (!gis_lonlat_valid(lon, lat))
        return fail(why, g_strdup_printf("position [%g, %g] is outside longitude -180..180 /"
                                         " latitude -90..90",
                                         lon, lat));
    if (++*count > max)
        return fail(why, g_strdup_printf("more than %zu vertices", max));
    return 0;
}

/* depth 0: a position; 1: a list of positions; 2: rings; 3: polygons.
 * ring: 0 lines (two or more positions), 1 rings (closed, four or more),
 * 2 points (one or more). */
static int check_nested(const json_t *a, int depth, int ring, size_t *count, size_t max, char **why)
{
    if (depth == 0)
        return check_position(a, count, max, why);
    if (!json_is_array(a))
        return fail(why, g_strdup("coordinates are nested arrays"));
    size_t n = json_array_size(a);
    if (depth == 1 && ring == 1) {
        if (n < 4)
            return fail(why, g_strdup("a ring needs at least four positions"));
    } else if (depth == 1 && ring == 0 && n < 2) {
        return fail(why, g_strdup("a line needs at least two positions"));
    } else if (n == 0) {
        return fail(why, g_strdup("empty coordinates"));
    }
    for (size_t i = 0; i < n; i++) {
        int rc = check_nested(json_array_get(a, i), depth - 1, ring, count, max, why);
        if (rc)
            return rc;
    }
    if (depth == 1 && ring == 1) {
        const json_t *first = json_array_get(a, 0), *last = json_array_get(a, n - 1);
        if (json_number_value(json_array_get(first, 0)) !=
                json_number_value(json_array_get(last, 0)) ||
            json_number_value(json_array_get(first, 1)) !=
                json_number_value(json_array_get(last, 1)))
            return fail(why, g_strdup("a ring is not closed (first and last positions differ)"));
    }
    return 0;
}

static int check_valid(const json_t *geometry, char **why)
{
    char *text = json_dumps(geometry, JSON_COMPACT);
    OGRGeometryH g = OGR_G_CreateGeometryFromJson(text);
    free(text);
    if (!g)
        return fail(why, g_strdup("not a GeoJSON geometry GDAL can read"));
    GEOSContextHandle_t h = GEOS_init_r();
    size_t n = (size_t)OGR_G_WkbSize(g);
    unsigned char *wkb = g_malloc(n);
    OGR_G_ExportToWkb(g, wkbNDR, wkb);
    OGR_G_DestroyGeometry(g);
    GEOSWKBReader *r = GEOSWKBReader_create_r(h);
    GEOSGeometry *gg = GEOSWKBReader_read_r(h, r, wkb, n);
    GEOSWKBReader_destroy_r(h, r);
    g_free(wkb);
    int rc = 0;
    gis__deadline_begin(GIS_CHECK_MS);
    char valid = gg ? GEOSisValid_r(h, gg) : 0;
    if (gis__deadline_end()) {
        rc = CORE_ETIMEDOUT;
        *why = g_strdup_printf("checking the polygon took longer than %d ms", GIS_CHECK_MS);
    } else if (!gg) {
        rc = fail(why, g_strdup("not a geometry GEOS can read"));
    } else if (valid != 1) {
        char *reason = GEOSisValidReason_r(h, gg);
        rc = fail(why, g_strdup_printf("invalid polygon: %s", reason ? reason : "unknown"));
        GEOSFree_r(h, reason);
    }
    GEOSGeom_destroy_r(h, gg);
    GEOS_finish_r(h);
    return rc;
}

int gis_geojson_check(const json_t *geometry, size_t max_vertices, char **why)
{
    static const struct {
        const char *type;
        int depth, ring;
    } types[] = {
        {"Point", 0, 0},           {"MultiPoint", 1, 2}, {"LineString", 1, 0},
        {"MultiLineString", 2, 0}, {"Polygon", 2, 1},    {"MultiPolygon", 3, 1},
    };
    *why = NULL;
    const char *type = json_string_value(json_object_get(geometry, "type"));
    const json_t *coords = json_object_get(geometry, "coordinates");
    if (!type || !coords)
        return fail(why, g_strdup("a geometry needs \"type\" and \"coordinates\""));
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        if (strcmp(type, types[i].type) != 0)
            continue;
        size_t count = 0;
        int rc = check_nested(coords, types[i].depth, types[i].ring, &count, max_vertices, why);
        if (!rc && types[i].ring == 1)
            rc = check_valid(geometry, why);
        return rc;
    }
    return fail(why, g_strdup_printf("unsupported geometry type '%s'", type));
}

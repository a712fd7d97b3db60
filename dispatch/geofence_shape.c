/*
 * geofence_shape.c — a fence's geometry: reading it from a client (a GeoJSON
 * Polygon checked by the GIS module, or a circle), its bounding box, and
 * the point-in-fence test every accepted position goes through.
 *
 * Fences are city-sized, so polygons are tested on lon/lat directly (ray
 * casting, even-odd over every ring: a hole is outside) and circles by
 * metres on a sphere with an equirectangular distance, which over a few
 * kilometres differs from the great-circle distance by well under a
 * millimetre. Pure functions, any thread.
 */
#include "geofence.h"

#include "../core/core.h"
#include "../gis/gis.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define EARTH_M 6371008.8 /* the mean radius */

double disp_geofence_distance_m(double lon1, double lat1, double lon2, double lat2)
{
    double rad = G_PI / 180, k = cos((lat1 + lat2) / 2 * rad);
    double dx = (lon2 - lon1) * rad * k * EARTH_M, dy = (lat2 - lat1) * rad * EARTH_M;
    return sqrt(dx * dx + dy * dy);
}

static int refuse(char **field, char **message, const char *f, char *msg)
{
    *field = g_strdup(f);
    *message = msg;
    return CORE_EINVAL;
}

static void circle_bbox(disp_geofence_shape *s)
{
    /* 1% wider: the distance takes the cosine of the mean latitude, not the centre's. */
    double dlat = 1.01 * s->radius_m / (EARTH_M * G_PI / 180);
    double dlon = dlat / fmax(cos(fmin(fabs(s->lat) + dlat, 89.9) * G_PI / 180), 1e-6);
    s->bbox[0] = s->lon - dlon;
    s->bbox[1] = s->lat - dlat;
    s->bbox[2] = s->lon + dlon;
    s->bbox[3] = s->lat + dlat;
}

static int parse_circle(const json_t *geometry, disp_geofence_shape *s, char **field,
                        char **message)
{
    const json_t *c = json_object_get(geometry, "coordinates"),
                 *r = json_object_get(geometry, "radius_m");
    if (!json_is_array(c) || json_array_size(c) != 2 || !json_is_number(json_array_get(c, 0)) ||
        !json_is_number(json_array_get(c, 1)) ||
        !gis_lonlat_valid(json_number_value(json_array_get(c, 0)),
                          json_number_value(json_array_get(c, 1))))
        return refuse(field, message, "geometry.coordinates",
                      g_strdup("a circle's centre is [lon, lat], longitude -180..180, latitude "
                               "-90..90"));
    if (!json_is_number(r) || !(json_number_value(r) >= 1) ||
        json_number_value(r) > DISP_GEOFENCE_RADIUS_MAX)
        return refuse(field, message, "geometry.radius_m",
                      g_strdup_printf("a number of metres from 1 to %g", DISP_GEOFENCE_RADIUS_MAX));
    s->form = DISP_GEOFENCE_CIRCLE;
    s->lon = json_number_value(json_array_get(c, 0));
    s->lat = json_number_value(json_array_get(c, 1));
    s->radius_m = json_number_value(r);
    circle_bbox(s);
    return 0;
}

/* A Polygon already checked: copies its rings and finds its box. */
static void copy_polygon(const json_t *rings, disp_geofence_shape *s)
{
    size_t n = 0, i, j;
    json_t *ring, *pos;
    json_array_foreach(rings, i, ring) n += json_array_size(ring);
    s->form = DISP_GEOFENCE_POLYGON;
    s->rings = json_array_size(rings);
    s->xy = g_new(double, 2 * n);
    s->ring_end = g_new(size_t, s->rings);
    s->bbox[0] = s->bbox[1] = INFINITY;
    s->bbox[2] = s->bbox[3] = -INFINITY;
    n = 0;
    json_array_foreach(rings, i, ring)
    {
        json_array_foreach(ring, j, pos)
        {
            double x = json_number_value(json_array_get(pos, 0)),
                   y = json_number_value(json_array_get(pos, 1));
            s->xy[2 * n] = x;
            s->xy[2 * n + 1] = y;
            s->bbox[0] = fmin(s->bbox[0], x);
            s->bbox[1] = fmin(s->bbox[1], y);
            s->bbox[2] = fmax(s->bbox[2], x);
            s->bbox[3] = fmax(s->bbox[3], y);
            n++;
        }
        s->ring_end[i] = n;
    }
}

int disp_geofence_shape_parse(const json_t *geometry, disp_geofence_shape *out, char **field,
                              char **message)
{
    memset(out, 0, sizeof *out);
    const char *type = json_string_value(json_object_get(geometry, "type"));
    if (!json_is_object(geometry) || !type)
        return refuse(field, message, "geometry",
                      g_strdup("a GeoJSON Polygon or {\"type\":\"Circle\",\"coordinates\":[lon,"
                               "lat],\"radius_m\":r}"));
    if (strcmp(type, "Circle") == 0)
        return parse_circle(geometry, out, field, message);
    if (strcmp(type, "Polygon") != 0)
        return refuse(field, message, "geometry.type",
                      g_strdup_printf("'%s': a fence is a Polygon or a Circle", type));
    char *why = NULL;
    int rc = gis_geojson_check(geometry, DISP_GEOFENCE_VERTICES_MAX, &why);
    if (rc == CORE_EINVAL)
        return refuse(field, message, "geometry", why);
    if (rc) {
        g_free(why);
        return rc;
    }
    copy_polygon(json_object_get(geometry, "coordinates"), out);
    return 0;
}

void disp_geofence_shape_clear(disp_geofence_shape *s)
{
    if (!s)
        return;
    g_free(s->xy);
    g_free(s->ring_end);
    memset(s, 0, sizeof *s);
}

static int in_polygon(const disp_geofence_shape *s, double x, double y)
{
    int inside = 0;
    size_t start = 0;
    for (size_t r = 0; r < s->rings; r++) {
        size_t end = s->ring_end[r];
        for (size_t i = start, j = end - 1; i < end; j = i++) {
            double xi = s->xy[2 * i], yi = s->xy[2 * i + 1];
            double xj = s->xy[2 * j], yj = s->xy[2 * j + 1];
            if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi)
                inside = !inside;
        }
        start = end;
    }
    return inside;
}

int disp_geofence_contains(const disp_geofence_shape *s, double lon, double lat)
{
    if (lon < s->bbox[0] || lon > s->bbox[2] || lat < s->bbox[1] || lat > s->bbox[3])
        return 0;
    if (s->form == DISP_GEOFENCE_CIRCLE)
        return disp_geofence_distance_m(s->lon, s->lat, lon, lat) <= s->radius_m;
    return in_polygon(s, lon, lat);
}

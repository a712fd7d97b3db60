/*
 * cone.c — what a camera sees: its view cone in a local metric frame
 * (cameras.h). Pure functions, any thread.
 *
 * The frame is equirectangular and centred on the camera: east metres are
 * degrees of longitude times R·cos(lat0), north metres degrees of latitude
 * times R (R the mean Earth radius). Over a camera's range (at most
 * VID_RANGE_MAX_M) the error is a few centimetres, far below what a camera
 * can tell apart, and no PROJ context is needed. Angles are compared as
 * signed differences folded into (-180, 180], so a heading of 350 degrees
 * and a bearing of 5 are 15 degrees apart, not 345. The cone's edges (±fov/2
 * and the range) count as seen, with a tolerance far below a pixel so a
 * point placed on an edge by the inverse projection stays on it.
 */
#include "cameras.h"

#include "../core/core.h"

#include <math.h>

#define EARTH_R 6371008.8 /* mean radius, m */
#define DEG (M_PI / 180.0)
#define ANGLE_EPS 1e-7 /* degrees: about 0.2 mm at 150 m */
#define RANGE_EPS 1e-6 /* metres */
#define ARC_STEP_DEG 5.0

int vid_cone_check(const vid_cone *c)
{
    if (!c || !isfinite(c->lon) || !isfinite(c->lat) || !isfinite(c->heading_deg) ||
        !isfinite(c->fov_deg) || !isfinite(c->range_m))
        return CORE_EINVAL;
    if (c->lon < -180 || c->lon > 180 || fabs(c->lat) > VID_LAT_MAX)
        return CORE_EINVAL;
    if (!(c->fov_deg > 0 && c->fov_deg <= 360) ||
        !(c->range_m > 0 && c->range_m <= VID_RANGE_MAX_M))
        return CORE_EINVAL;
    return 0;
}

double vid_angle_diff(double a, double b)
{
    double d = fmod(b - a, 360.0);
    if (d <= -180)
        d += 360;
    else if (d > 180)
        d -= 360;
    return d;
}

static double norm360(double a)
{
    double r = fmod(a, 360.0);
    if (r < 0)
        r += 360;
    return r >= 360 ? 0 : r;
}

int vid_cone_locate(const vid_cone *c, double lon, double lat, double *distance_m,
                    double *bearing_deg)
{
    if (vid_cone_check(c) || !isfinite(lon) || !isfinite(lat) || lon < -180 || lon > 180 ||
        lat < -90 || lat > 90)
        return CORE_EINVAL;
    /* The shorter way round across the antimeridian. */
    double dlon = vid_angle_diff(c->lon, lon);
    double east = dlon * DEG * EARTH_R * cos(c->lat * DEG);
    double north = (lat - c->lat) * DEG * EARTH_R;
    *distance_m = hypot(east, north);
    *bearing_deg = *distance_m > 0 ? norm360(atan2(east, north) / DEG) : 0;
    return 0;
}

int vid_cone_sees_at(const vid_cone *c, double distance_m, double bearing_deg)
{
    if (vid_cone_check(c) || !isfinite(distance_m) || distance_m < 0 || !isfinite(bearing_deg))
        return CORE_EINVAL;
    if (distance_m > c->range_m + RANGE_EPS)
        return 0;
    /* Where it stands is seen; so is everything around it for a full circle. */
    if (distance_m == 0 || c->fov_deg >= 360)
        return 1;
    return fabs(vid_angle_diff(c->heading_deg, bearing_deg)) <= c->fov_deg / 2 + ANGLE_EPS;
}

int vid_cone_sees(const vid_cone *c, double lon, double lat)
{
    double d, b;
    int rc = vid_cone_locate(c, lon, lat, &d, &b);
    return rc ? rc : vid_cone_sees_at(c, d, b);
}

/* The point at a distance and bearing from the camera (the inverse of locate). */
static json_t *point_at(const vid_cone *c, double distance_m, double bearing_deg)
{
    double east = distance_m * sin(bearing_deg * DEG), north = distance_m * cos(bearing_deg * DEG);
    double lon = c->lon + east / (EARTH_R * cos(c->lat * DEG)) / DEG;
    double lat = c->lat + north / EARTH_R / DEG;
    if (lon > 180)
        lon -= 360;
    else if (lon < -180)
        lon += 360;
    return json_pack("[ff]", round(lon * 1e7) / 1e7, round(lat * 1e7) / 1e7);
}

json_t *vid_cone_polygon(const vid_cone *c)
{
    if (vid_cone_check(c))
        return NULL;
    int full = c->fov_deg >= 360;
    int steps = (int)ceil(c->fov_deg / ARC_STEP_DEG);
    if (steps < 2)
        steps = 2;
    json_t *ring = json_array();
    if (!full)
        json_array_append_new(ring, point_at(c, 0, 0));
    /* Bearings decrease along the ring: counter-clockwise on the map. */
    double from = c->heading_deg + c->fov_deg / 2;
    for (int i = 0; i <= steps; i++) {
        if (full && i == steps)
            break;
        json_array_append_new(ring, point_at(c, c->range_m, from - c->fov_deg * i / steps));
    }
    json_array_append_new(ring, json_deep_copy(json_array_get(ring, 0)));
    return json_pack("{sss[o]}", "type", "Polygon", "coordinates", ring);
}

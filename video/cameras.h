/*
 * cameras.h — the CCTV camera registry and what each camera can see
 * (video/cameras.c, video/cone.c).
 *
 * A camera has a place (WGS84 lon/lat), a mounting height, a heading
 * (degrees clockwise from north), a horizontal field of view and a range:
 * together its view cone. It sees a point when the point is within range
 * and its bearing from the camera lies within fov/2 of the heading (edges
 * included). Distances and bearings are taken in an equirectangular
 * projection centred on the camera, which is within a few centimetres of
 * the ellipsoid over the few hundred metres a camera sees.
 *
 * The registry is the table `cameras` (migration module "cameras"); every
 * change is one store write with its event (camera.created, camera.changed,
 * camera.removed; subject "camera/N", "agencies":[agency] for the feed).
 * The RTSP URL's credentials are kept apart (username, password) and never
 * leave the module in JSON: not in replies, events or logs, which only say
 * whether credentials are set. A mirror of every camera is kept in memory
 * on the loop thread, loaded at start and replaced entry by entry as writes
 * commit; the reads are answered from it.
 *
 * Geometry functions are pure (any thread). Registry functions run on the
 * loop thread; done callbacks run there after the store committed. On an
 * error found in the writer done gets rc and {"field","message"}
 * (CORE_EINVAL, CORE_EEXISTS), {"message"} (CORE_ECONFLICT), {"forbidden":
 * agency} (an import touching another agency's camera), or NULL; an import
 * error also names "line" (CSV, from 1 with the header) or "feature".
 */
#ifndef CITYCMD_VIDEO_CAMERAS_H
#define CITYCMD_VIDEO_CAMERAS_H

#include "../core/store.h"

#include <jansson.h>
#include <stdint.h>

/* ---- the view cone (cone.c) ---- */

#define VID_RANGE_DEFAULT_M 150.0
#define VID_RANGE_MAX_M 5000.0
#define VID_LAT_MAX 85.0 /* the local projection needs cos(lat) well away from 0 */

typedef struct {
    double lon, lat;    /* the camera, degrees WGS84 */
    double heading_deg; /* where it looks, clockwise from north (any finite value) */
    double fov_deg;     /* horizontal field of view, (0, 360] */
    double range_m;     /* how far it makes out anything useful, (0, VID_RANGE_MAX_M] */
} vid_cone;

/* 0 when the cone is usable, CORE_EINVAL otherwise (NaN or infinite
 * numbers, |lat| > VID_LAT_MAX, fov outside (0, 360], range outside (0,
 * VID_RANGE_MAX_M]). */
int vid_cone_check(const vid_cone *c);
/* Distance (m) and bearing (degrees clockwise from north, [0, 360)) from
 * the camera to a point; 0 or CORE_EINVAL for a bad cone or point. The
 * bearing of the camera's own place is 0. */
int vid_cone_locate(const vid_cone *c, double lon, double lat, double *distance_m,
                    double *bearing_deg);
/* 1 when the camera sees the point, 0 when not, CORE_EINVAL for a bad cone or point. */
int vid_cone_sees(const vid_cone *c, double lon, double lat);
/* The same for a point given by its distance and bearing from the camera. */
int vid_cone_sees_at(const vid_cone *c, double distance_m, double bearing_deg);
/* b - a folded into (-180, 180]: how far to turn from a to b, clockwise positive. */
double vid_angle_diff(double a, double b);
/* The cone as a GeoJSON Polygon for the map (new reference): the camera
 * and an arc at range_m, counter-clockwise (RFC 7946), a point at least
 * every 5 degrees of arc; a full circle when fov is 360. NULL for a bad cone. */
json_t *vid_cone_polygon(const vid_cone *c);

/* ---- the registry (cameras.c) ---- */

typedef struct vid_cameras vid_cameras;
typedef void (*vid_json_done)(int rc, json_t *result /* owned by the callee */, void *arg);

typedef struct {
    int64_t id; /* shown as "C-12" */
    char *name, *agency, *rtsp_url;
    char *username, *password; /* "" when none; never put into JSON */
    char *codec;               /* "h264", "h265" or "" (unknown) */
    char *onvif_url;           /* the ONVIF device service address, or "" */
    char *onvif_profile;       /* the ONVIF media profile token PTZ uses, or "" (the first) */
    vid_cone cone;
    double height_m;
    int ptz;
    int64_t created_ms, updated_ms;
} vid_camera;

/* Registers the cameras table with the store (before core_store_open). */
void vid_cameras_register(core_store *st);
/* agencies: the known agencies (comma-separated; NULL: the default list).
 * Loads the mirror, so call it after core_store_open. */
vid_cameras *vid_cameras_new(core_store *st, const char *agencies);
void vid_cameras_free(vid_cameras *c);

/* Loop thread. NULL when there is no such camera; valid until the next write completes. */
const vid_camera *vid_cameras_get(const vid_cameras *c, int64_t id);
unsigned vid_cameras_count(const vid_cameras *c);
/* Every camera, ordered by id (g_ptr_array_unref; the entries as for vid_cameras_get). */
GPtrArray *vid_cameras_all(const vid_cameras *c);
/* The camera as the API shows it (new reference): "credentials": true|false
 * in place of the username and password; onvif_url and onvif_profile null
 * when not set. */
json_t *vid_camera_json(const vid_camera *cam);
/* "C-12" or "12" -> 12; 0 for anything else. */
int64_t vid_camera_parse_id(const char *text);
/* The id as the API shows it: "C-12" (a new JSON string). */
json_t *vid_camera_id_json(int64_t id);

/* Creates a camera from {"name", "agency", "lon", "lat", "height_m",
 * "heading", "fov", "range_m", "rtsp_url", "username", "password", "ptz",
 * "codec", "onvif_url", "onvif_profile"} (docs/API.md). CORE_EINVAL with *field and *message
 * (g_free) for a bad body; done gets the camera (API form), or CORE_EEXISTS naming "name". */
int vid_camera_add(vid_cameras *c, const json_t *body, const char *actor, const char *source,
                   vid_json_done done, void *arg, char **field, char **message);
/* Changes the fields given. agency (NULL: any) is the camera's agency the
 * caller was authorized for: the write refuses with CORE_ECONFLICT if it
 * changed meanwhile. done gets the camera, or CORE_ENOTFOUND. */
int vid_camera_update(vid_cameras *c, int64_t id, const json_t *body, const char *agency,
                      const char *actor, const char *source, vid_json_done done, void *arg,
                      char **field, char **message);
/* Deletes the camera and its credentials (its events stay). done gets {}. */
int vid_camera_remove(vid_cameras *c, int64_t id, const char *agency, const char *actor,
                      const char *source, vid_json_done done, void *arg);

/* Parses an import file into rows, each checked as vid_camera_add checks a
 * body: CSV (header with name, agency, lon, lat, heading, fov, rtsp_url and
 * any of height_m, range_m, username, password, ptz, codec, onvif_url,
 * onvif_profile) or a GeoJSON
 * FeatureCollection of Points whose properties carry the same fields. 0
 * and *rows, or CORE_EINVAL with *where ("line 3", "features[2]"), *field
 * and *message (g_free). */
int vid_cameras_parse_csv(vid_cameras *c, const char *text, size_t len, json_t **rows, char **where,
                          char **field, char **message);
int vid_cameras_parse_geojson(vid_cameras *c, const json_t *doc, json_t **rows, char **where,
                              char **field, char **message);
/* Writes parsed rows all or nothing: a name already registered is updated,
 * others are created. may (NULL: any) lists the agencies whose cameras the
 * caller may manage. done gets {"created","updated","unchanged"}. Takes rows. */
int vid_cameras_import(vid_cameras *c, json_t *rows, char **may, const char *actor,
                       const char *source, vid_json_done done, void *arg);

#endif

/*
 * geofence.h — geofences: polygons and circles that dispatchers draw
 * (stations, hospitals, hazard zones), the units entering and leaving
 * them, and the statuses that follow by themselves (at_hospital on
 * reaching a hospital while transporting, in_station on reaching one's own
 * station while returning, on_scene within 50 m of one's incident while
 * dispatched or en route).
 *
 * Fences are the table `geofences` (migration module "geofences"); a fence
 * is never deleted, only marked removed. A loop-thread mirror keeps the
 * live ones, each with its bounding box, and for each unit the set of
 * fences it is inside. Every accepted position (disp_geofences_position, an
 * AVL watcher) is tested against the fences whose box holds it; a change of
 * the set is one store write of geofence.enter / geofence.exit events
 * (subject "unit/N", "agencies":[the unit's agency]). The sets live in
 * memory only: after a restart a unit's first position inside a fence is an
 * enter again.
 *
 * All functions run on the loop thread, except the shape functions, which
 * are pure.
 */
#ifndef CITYCMD_DISPATCH_GEOFENCE_H
#define CITYCMD_DISPATCH_GEOFENCE_H

#include "../core/store.h"
#include "avl.h"
#include "dispatch.h"

#include <stddef.h>

#define DISP_GEOFENCE_RADIUS_MAX 50000.0
#define DISP_GEOFENCE_VERTICES_MAX 10000
/* A unit this close to its incident's location has arrived. */
#define DISP_GEOFENCE_ARRIVAL_M 50.0

/* ---- shapes (pure) ---- */

typedef enum { DISP_GEOFENCE_POLYGON, DISP_GEOFENCE_CIRCLE } disp_geofence_form;

typedef struct {
    disp_geofence_form form;
    /* polygon: every ring's positions (lon, lat pairs; closed), outer ring first */
    double *xy;
    size_t *ring_end; /* ring i is positions [ring_end[i-1], ring_end[i]) */
    size_t rings;
    /* circle */
    double lon, lat, radius_m;
    double bbox[4]; /* west, south, east, north */
} disp_geofence_shape;

/* Reads a geometry: a GeoJSON Polygon (checked by gis_geojson_check) or
 * {"type":"Circle","coordinates":[lon,lat],"radius_m":1..50000}. 0, or
 * CORE_EINVAL with *field ("geometry", "geometry.coordinates",
 * "geometry.radius_m") and *message (g_free). */
int disp_geofence_shape_parse(const json_t *geometry, disp_geofence_shape *out, char **field,
                              char **message);
void disp_geofence_shape_clear(disp_geofence_shape *s);
/* Is the point inside? Polygons by ray casting on lon/lat (even-odd over
 * all rings, so holes are out); circles by metres on a sphere
 * (equirectangular). A point on the edge may fall either way. */
int disp_geofence_contains(const disp_geofence_shape *s, double lon, double lat);
/* Metres between two points a few kilometres apart (equirectangular on a
 * sphere of the Earth's mean radius). */
double disp_geofence_distance_m(double lon1, double lat1, double lon2, double lat2);

/* ---- fences ---- */

typedef struct disp_geofences disp_geofences;
struct disp_units;
struct disp_incidents;

void disp_geofences_register(core_store *st);
/* Loads the live fences from the store (call after core_store_open).
 * units gives each unit's agency, station and status and takes the
 * automatic status changes; incidents (may be NULL) their locations. */
disp_geofences *disp_geofences_new(core_store *st, struct disp_units *units,
                                   struct disp_incidents *incidents);
/* Call after the loop has drained (pending writes call back into it). */
void disp_geofences_free(disp_geofences *g);

/* An AVL watcher: p is an accepted position. */
void disp_geofences_position(const disp_avl_pos *p, void *g);

/* Creates a fence from {"name", "kind": station|hospital|hazard|custom,
 * "agency" ('' or absent: all), "geometry"}. CORE_EINVAL with *field and
 * *message (g_free) for a bad body; done gets the fence. */
int disp_geofence_add(disp_geofences *g, const json_t *body, const char *actor, const char *source,
                      disp_json_done done, void *arg, char **field, char **message);
/* Marks a live fence removed; done gets {} or CORE_ENOTFOUND. */
int disp_geofence_remove(disp_geofences *g, int64_t id, const char *actor, const char *source,
                         disp_json_done done, void *arg);
/* The agency of a live fence ('' for all), or NULL when there is none. */
const char *disp_geofence_agency(disp_geofences *g, int64_t id);
/* The live fences (new reference): an array of {"id","name","kind",
 * "agency","geometry","created_at"}. */
json_t *disp_geofences_json(disp_geofences *g);
unsigned disp_geofences_count(const disp_geofences *g);

#endif

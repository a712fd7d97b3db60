/*
 * internal.h — shared by the files of gis/ only.
 */
#ifndef CITYCMD_GIS_INTERNAL_H
#define CITYCMD_GIS_INTERNAL_H

#include "gis.h"

#include <cpl_string.h>
#include <gdal.h>
#include <geos_c.h>
#include <glib.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

/* A station found during an OSM import (WGS84). */
typedef struct {
    double x, y;
    char kind[16];
    char *name;
} gis__station;

int gis_highway_drivable(const char *klass);

/* ---- the local metric projection (proj.c) ---- */

/* A transverse Mercator on WGS84 centred on (lon0, lat0): metres with
 * negligible scale error across a city. */
typedef struct gis__local gis__local;
gis__local *gis__local_new(double lon0, double lat0, char **err);
void gis__local_free(gis__local *l);
/* PROJ string of the projection (owned). */
const char *gis__local_definition(const gis__local *l);
void gis__local_fwd(const gis__local *l, double lon, double lat, double *x, double *y);
void gis__local_inv(const gis__local *l, double x, double y, double *lon, double *lat);
/* An OGR (WGS84) geometry as a GEOS geometry in the local projection; NULL
 * when it cannot be converted. */
GEOSGeometry *gis__to_local(GEOSContextHandle_t h, const gis__local *l, OGRGeometryH g);
/* A local GEOS geometry back to a new OGR geometry in WGS84. */
OGRGeometryH gis__to_wgs84(GEOSContextHandle_t h, const gis__local *l, const GEOSGeometry *g);

/* ---- interrupting long GEOS operations (geom.c) ---- */

/* GEOS operations started by this thread after gis__deadline_begin(ms)
 * stop (fail with an exception GEOS turns into an error return) once ms
 * have passed, until gis__deadline_end(), which says whether the deadline
 * passed. GEOS 3.11 has one process-wide interrupt flag, raised from a
 * callback that runs in the working thread and checks that thread's own
 * deadline. */
void gis__deadline_begin(int ms);
int gis__deadline_end(void);

/* ---- import helpers ---- */

/* Adds the areas nearest to each fire station, police station and hospital
 * or ambulance station to the districts layer (import.c calls it after
 * reading OSM). */
int gis__derive_districts(GDALDatasetH ds, OGRLayerH districts, OGRLayerH roads, GArray *stations,
                          int64_t *count, char **err);
/* Adds the sea (kind "sea") to the water layer: the faces of the city's
 * extent cut by the coastline that lie on its right (OSM draws coastlines
 * with the land on the left). */
int gis__derive_sea(OGRLayerH water, OGRLayerH roads, GPtrArray *coast, int64_t *count, char **err);
/* Replaces layer `name` of ds with the features of `from`, reprojected to
 * WGS84 and checked (finite, in range, valid polygons). */
int gis__copy_layer(GDALDatasetH ds, OGRSpatialReferenceH wgs84, const char *name, OGRLayerH from,
                    const char *default_srs, char **err);

/* ---- vector tiles (tiles.c) ---- */

typedef struct gis__tiles gis__tiles;
/* Reads the map layers of the package at gpkg; NULL when it cannot.
 * Thread-safe (its own lock and GEOS context). */
gis__tiles *gis__tiles_new(const char *gpkg);
void gis__tiles_free(gis__tiles *t);
int gis__tiles_has_layer(const gis__tiles *t, const char *layer);
/* The tile (new reference), from the cache or made now (*cached says which). */
GBytes *gis__tiles_get(gis__tiles *t, const char *layer, int z, int x, int y, int *cached);
void gis__tiles_clear_cache(gis__tiles *t);

#endif

/*
 * gis.h — the city on a map: city packages, coordinate systems, and the
 * spatial questions the other modules ask.
 *
 * A city package (docs/CITY.md) is a directory with `city.gpkg` (layers in
 * WGS84: roads, stations, districts, buildings, water, places, addresses,
 * and any extra layers) and `city.json` (name, extent, local projection,
 * attribution). `gis_import_city` builds one from an OpenStreetMap extract
 * and from any vector source GDAL reads, reprojecting with PROJ from the
 * CRS each source declares.
 *
 * `gis_city_load` reads a package into memory: every geometry in a metric
 * local projection (a transverse Mercator centred on the city, so distances
 * are metres, not degrees), GEOS STR trees over roads, districts and point
 * layers, and prepared geometries for the districts. Queries take and return
 * WGS84 longitude/latitude. A loaded city is immutable; queries on one city
 * run on one thread at a time (the GEOS context and prepared geometries are
 * not shared between threads).
 *
 * Errors are CORE_E* codes; functions that can fail on their input also
 * return a message (g_free) saying what was wrong.
 */
#ifndef CITYCMD_GIS_H
#define CITYCMD_GIS_H

#include "../core/core.h"

#include <glib.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- input checks ---- */

/* Longitude in [-180, 180], latitude in [-90, 90], both finite. */
int gis_lonlat_valid(double lon, double lat);

/* Most vertices accepted in one geometry from a client. */
#define GIS_MAX_VERTICES 100000

/* Checks a GeoJSON geometry object (Point, LineString, Polygon, Multi*):
 * finite in-range coordinates, at most max_vertices, closed rings of four
 * or more positions, and (for polygons) validity by GEOS, which is stopped
 * after GIS_CHECK_MS. 0, CORE_EINVAL or CORE_ETIMEDOUT with *why (g_free). */
#define GIS_CHECK_MS 2000
int gis_geojson_check(const json_t *geometry, size_t max_vertices, char **why);

/* ---- import ---- */

typedef struct {
    const char *osm;        /* .osm.pbf or .osm, or NULL */
    const char *out;        /* package directory (created, or updated in place) */
    const char *name;       /* city name; default: from the OSM data or the directory */
    const char **layers;    /* NULL-terminated "NAME=SOURCE[|SRCLAYER]" */
    const char *source_srs; /* CRS for --layer sources that declare none */
    int quiet;
} gis_import_opts;

/* Builds or updates a city package. 0, or a CORE_E* with *err (g_free). */
int gis_import_city(const gis_import_opts *o, char **err);
/* `citycmd import-city …` */
int gis_import_main(int argc, char **argv);

/* ---- a loaded city ---- */

typedef struct gis_city gis_city;

/* Loads DIR/city.gpkg and DIR/city.json. NULL with *err on failure. */
gis_city *gis_city_load(const char *dir, char **err);
void gis_city_free(gis_city *c);

const char *gis_city_name(const gis_city *c);
/* {"name","bbox":[w,s,e,n],"center":[lon,lat],"attribution","layers":{name:count}} (new ref). */
json_t *gis_city_info(const gis_city *c);

/* The districts containing a point: a JSON array of {"kind","name","id"}
 * (and "level" for administrative areas) for every district containing
 * it, ordered by kind and, for administrative areas, finest first (new
 * reference). kind NULL: all kinds. */
json_t *gis_districts_at(gis_city *c, double lon, double lat, const char *kind);
/* The district with this id (as gis_districts_at gives it): its lon/lat
 * bounding box (west, south, east, north) into bbox. 0 or CORE_ENOTFOUND. */
int gis_district_bbox(gis_city *c, int64_t id, double bbox[4]);
/* Is lon/lat inside district id? (0 also when there is no such district.) */
int gis_district_contains(gis_city *c, int64_t id, double lon, double lat);

typedef struct {
    const char *name;  /* road name, "" when unnamed (owned by the city) */
    const char *klass; /* OSM highway class */
    int64_t id;        /* road feature id */
    double distance_m; /* from the point to the road */
    double lon, lat;   /* the nearest point on the road */
} gis_road_hit;

/* The nearest road to a point within max_m metres (named roads preferred
 * when named_only). 0, or CORE_ENOTFOUND. */
int gis_nearest_road(gis_city *c, double lon, double lat, double max_m, int named_only,
                     gis_road_hit *hit);

/* A dispatcher's description of a point: {"text":"near 12 Boulevard X,
 * Monte-Carlo","road":{…},"address":{…}|null,"place":{…}|null,
 * "districts":[…]} (new reference). */
json_t *gis_reverse(gis_city *c, double lon, double lat);
/* The same, looking for roads up to max_m away (gis_reverse: 150 m). */
json_t *gis_reverse_within(gis_city *c, double lon, double lat, double max_m);

/* Street and place names matching text (case- and accent-insensitive,
 * prefix of any word first), best first, at most limit: an array of
 * {"name","kind","lon","lat"} (new reference). */
json_t *gis_search(gis_city *c, const char *text, int limit);

/* Features of a point layer within radius_m of a point, nearest first:
 * array of {"id","name","kind","lon","lat","distance_m"} (new reference).
 * NULL when the layer does not exist. */
json_t *gis_points_near(gis_city *c, const char *layer, double lon, double lat, double radius_m,
                        int limit);
/* Features of a point layer inside a box. NULL when the layer does not exist. */
json_t *gis_points_in_box(gis_city *c, const char *layer, double w, double s, double e, double n,
                          int limit);

/* A layer as a GeoJSON FeatureCollection, optionally cut to a box (bbox
 * NULL: all), at most limit features. NULL when the layer does not exist. */
json_t *gis_layer_geojson(gis_city *c, const char *layer, const double *bbox, int limit);

/* One feature of a layer as a GeoJSON Feature, or NULL when the layer or
 * the feature does not exist. */
json_t *gis_feature_geojson(gis_city *c, const char *layer, int64_t id);

/* A Mapbox Vector Tile (MVT 2.1, extent 4096) of layer at z/x/y (Web
 * Mercator tiling), "base" being every map layer (districts, water,
 * buildings, roads, stations, places) with `name` and `kind` properties.
 * 0 and *tile (g_bytes_unref; empty when nothing is there); CORE_EINVAL
 * when z is outside 0..GIS_MAX_ZOOM or x/y outside the zoom's grid;
 * CORE_ENOTFOUND for an unknown layer. *cached: whether it came from the
 * cache. */
#define GIS_MAX_ZOOM 20
int gis_tile(gis_city *c, const char *layer, int z, int x, int y, GBytes **tile, int *cached);
/* Drops cached tiles (after a layer changed). */
void gis_tiles_clear(gis_city *c);

/* Names of the layers of the package (NULL-terminated, owned by the city). */
const char *const *gis_city_layers(const gis_city *c);

#endif

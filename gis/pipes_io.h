/*
 * pipes_io.h — shared by gis/pipes_layers.c and gis/pipes_import.c only:
 * turning lines and points (already in WGS84) into a network by snapping,
 * and reading GDAL sources given as "SOURCE[|LAYER]".
 */
#ifndef CITYCMD_GIS_PIPES_IO_H
#define CITYCMD_GIS_PIPES_IO_H

#include "pipes_internal.h"

#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

/* A pipe before it has nodes: lon/lat vertices (owned), optional names of
 * its end nodes (from/to fields), length (<= 0: the geometry's). */
typedef struct {
    char *id;
    gis_link_kind kind;
    GArray *xy; /* double */
    double length_m, diameter_mm;
    char *from, *to;
} pipes__line;

/* A junction or source point. */
typedef struct {
    char *id;
    gis_node_kind kind;
    double x, y;
} pipes__point;

GArray *pipes__lines_new(void);  /* of pipes__line, frees its members */
GArray *pipes__points_new(void); /* of pipes__point */

/* Adds nodes (every point, and one "N<k>" per group of free line ends
 * within snap_m of each other) and links to an empty network n; a line end
 * takes the point within snap_m that its from/to field names, else the
 * nearest one. Adds "dangling_ends", "ends_on_pipe" and "unmatched_points"
 * to report. */
int pipes__build(gis_pipenet *n, GArray *lines, GArray *points, double snap_m, json_t *report,
                 char **err);

/* Opens "SOURCE[|LAYER]" and a transformation from the layer's CRS (or
 * source_srs when it declares none) to WGS84 lon/lat. what names the
 * option in messages. */
typedef struct {
    GDALDatasetH ds;
    OGRLayerH layer;
    OGRCoordinateTransformationH ct;
} pipes__source;
int pipes__source_open(pipes__source *s, const char *spec, const char *source_srs, const char *what,
                       char **err);
void pipes__source_close(pipes__source *s);

/* Adds the customer points of a source to a network in WGS84 with links
 * (attached to their `link`/`node`, else the nearest pipe); those farther
 * than 200 m from every pipe go to report's "far_customers". */
int pipes__read_customers(gis_pipenet *n, const char *spec, const char *source_srs, json_t *report,
                          char **err);

/* A report list: {"count": N, "first": [up to 50 ids]}. */
void pipes__report_add(json_t *report, const char *list, const char *id);

#endif

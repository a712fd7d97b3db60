/*
 * pipes_internal.h — the pipe network's layout, shared by gis/pipes_*.c only.
 *
 * Elements live in GArrays of the public structs (pipes.h); ids are interned
 * in one string chunk and looked up through hash tables. Vertices of every
 * link sit in one double array (link.xy points into it, fixed up by
 * pipes__fix_pointers after growth). Segment scratch and the spatial grid
 * are rebuilt by pipes__index.
 */
#ifndef CITYCMD_GIS_PIPES_INTERNAL_H
#define CITYCMD_GIS_PIPES_INTERNAL_H

#include "pipes.h"

typedef struct {
    size_t xy_off; /* index into verts (in doubles) */
} pipes__link_extra;

typedef struct {
    size_t links, nodes;
    double length_m, volume_m3;
    size_t customers, units, priority;
    int has_source;
} pipes__seg_total;

struct gis_pipenet {
    char *name, *utility;
    GStringChunk *ids;
    GArray *nodes;                                      /* gis_pipe_node */
    GArray *links;                                      /* gis_pipe_link */
    GArray *lx;                                         /* pipes__link_extra, parallel to links */
    GArray *verts;                                      /* double */
    GArray *valves;                                     /* gis_pipe_valve */
    GArray *customers;                                  /* gis_pipe_customer */
    GHashTable *node_ix, *link_ix, *valve_ix, *cust_ix; /* id -> index+1 */
    int finished, geographic, held;
    size_t missing_coords; /* .inp nodes that had no coordinates */
    double kx, ky;         /* metres per unit of x and y */

    /* segments: seg[i] for node i, seg[nodes + j] for link j */
    int *seg;
    size_t nseg;
    pipes__seg_total *tot;
    GArray *seg_valves;         /* int: valves bounding each segment, grouped (CSR) */
    int *seg_valve_off;         /* nseg + 1 */
    GArray *seg_cust;           /* int: customers per segment (CSR) */
    int *seg_cust_off;          /* nseg + 1 */
    unsigned char *link_valved; /* per link: bit0 a valve at the from end, bit1 at the to end */
    GArray *seg_elem;           /* int: elements (nodes, then nodes + links) per segment (CSR) */
    int *seg_elem_off;          /* nseg + 1 */
    /* Supply with the valves as they are: hops from the nearest source
     * segment over valves that are not closed (INT_MAX: none), cached until
     * a valve or the network changes. */
    int *base_dist;
    int base_valid, base_any;

    /* spatial grid over link pieces */
    double gx0, gy0, gcell; /* origin and cell size in network units */
    int gw, gh;
    int *grid_off; /* gw*gh + 1 */
    int *grid_link;

    /* scratch for queries */
    int *mark;  /* per segment: query stamp */
    int *mark2; /* per segment */
    int stamp;
    GArray *queue;
    GArray *heap; /* guint64: priority << 32 | segment */
};

/* Returns code, with *err (g_free) formatted when err is not NULL. */
int pipes__error(char **err, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Rebuilds segments, totals and per-segment lists (after any change). */
int pipes__segments(gis_pipenet *n);
/* Rebuilds the spatial grid. */
void pipes__grid(gis_pipenet *n);
/* Re-points link.xy after verts grew. */
void pipes__fix_pointers(gis_pipenet *n);
/* Places a valve's position on its link, 2 m (at most a tenth) from its node. */
void pipes__place_valve(gis_pipenet *n, gis_pipe_valve *v);
/* The nearest live link to a point within max_m metres other than except
 * (-1: none excepted), or -1. */
int pipes__nearest_link_except(const gis_pipenet *n, double x, double y, double max_m, int except,
                               double *dist_m);
/* The nearest live link at any distance (searched in growing rings), or
 * -1 when there is none; needs the grid (pipes__grid). */
int pipes__nearest_link_any(const gis_pipenet *n, double x, double y, double *dist_m);
/* Metres per degree of longitude and latitude at a latitude. */
void pipes__lonlat_scale(double lat, double *kx, double *ky);
/* Length in metres of a link's geometry. */
double pipes__geom_length(const gis_pipenet *n, const gis_pipe_link *l);

#endif

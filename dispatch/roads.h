/*
 * roads.h — the road graph and travel times (dispatch/roads*.c).
 *
 * The graph is built from a city package's `roads` layer (docs/CITY.md):
 * the drivable ways, split into edges at every point two ways share, each
 * edge with its length, its direction (oneway), and its travel time at the
 * speed its class or maxspeed gives, times a factor for emergency vehicles.
 * Turn restrictions come from the package's `restrictions` layer (OSM
 * restriction relations: no_* forbids the turn from one way onto the
 * other at the via node, only_* forbids every other turn there).
 *
 * Travel times are found by Dijkstra's algorithm over directed edges (the
 * state is "driving along this edge", so turn restrictions are exact) on a
 * compact graph (arrays indexed by edge, successors in one array), from the
 * target backwards: one search gives the time from every source to the
 * target, and stops once every source edge is settled. Positions are
 * snapped to the nearest drivable edge with their offset along it.
 *
 * Closures: an edge (both directions) can be closed and opened again; the
 * next search honours it at once (a closed edge is skipped; there is no
 * precomputation to rebuild).
 *
 * Times are integer milliseconds, so comparisons are exact. A graph is used
 * by one thread at a time (the search keeps its scratch arrays in it).
 */
#ifndef CITYCMD_DISPATCH_ROADS_H
#define CITYCMD_DISPATCH_ROADS_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#define DISP_ROADS_UNREACHABLE INT64_MAX

typedef struct disp_roads disp_roads;

typedef struct {
    double emergency_factor; /* speeds times this (1.0: as signed); 1.0 when 0 */
    int ignore_restrictions; /* 1: no turn restrictions (to compare with routers that have none) */
} disp_roads_options;

/* Builds the graph of the package in city_dir (its city.gpkg). NULL with
 * *err (g_free) when the package or its roads cannot be read. */
disp_roads *disp_roads_load(const char *city_dir, const disp_roads_options *opt, char **err);

/* A graph given as edges, for generated cities and tests: n_nodes nodes
 * with lon/lat (2 × n_nodes doubles), and edges a→b of length_m with
 * speed_kmh, both ways unless oneway. Returns NULL with *err on bad
 * input (a node index out of range, a length or speed not positive). */
typedef struct {
    uint32_t a, b;
    double length_m, speed_kmh;
    int oneway;
    int64_t road_id; /* what the edge belongs to (a road feature id), for closures */
} disp_roads_edge_spec;
disp_roads *disp_roads_from_edges(const double *lonlat, uint32_t n_nodes,
                                  const disp_roads_edge_spec *edges, size_t n_edges, char **err);

/* Forbids the turn from the edge a→via onto via→b (node indices; a
 * restriction of disp_roads_from_edges graphs). 0, or CORE_ENOTFOUND when
 * there is no such pair of edges. */
int disp_roads_forbid_turn(disp_roads *g, uint32_t a, uint32_t via, uint32_t b);

void disp_roads_free(disp_roads *g); /* accepts NULL */

uint32_t disp_roads_node_count(const disp_roads *g);
/* Undirected edges (a two-way road segment counts once). */
uint32_t disp_roads_edge_count(const disp_roads *g);
uint32_t disp_roads_restriction_count(const disp_roads *g);
/* Bytes the graph holds (arrays and index). */
size_t disp_roads_memory(const disp_roads *g);

/* A position on the graph: edge (undirected index), offset 0..1 from its
 * first node to its second, the snapped point and its distance. */
typedef struct {
    uint32_t edge;
    double offset;
    double lon, lat;
    double distance_m;
} disp_roads_pos;

/* The nearest open drivable edge within max_m metres. 0, or
 * CORE_ENOTFOUND. */
int disp_roads_snap(const disp_roads *g, double lon, double lat, double max_m, disp_roads_pos *out);

/* Travel time in ms (and road distance in metres, when dist_m is not
 * NULL) from each of n sources to the target, DISP_ROADS_UNREACHABLE
 * (distance -1) where no open path goes. */
void disp_roads_times_to(disp_roads *g, const disp_roads_pos *target, const disp_roads_pos *sources,
                         size_t n, int64_t *ms, double *dist_m);

/* Forward from many sources at once (the nearest of them wins): the time
 * in ms to reach each node (node_ms, disp_roads_node_count entries),
 * DISP_ROADS_UNREACHABLE where none goes. For coverage: how far is the
 * city from the nearest available unit. */
void disp_roads_times_from(disp_roads *g, const disp_roads_pos *sources, size_t n,
                           int64_t *node_ms);

/* The fastest path from source to target: its time and distance, and its
 * shape as lon/lat pairs (a GArray of double, 2 per point; g_array_unref).
 * NULL when unreachable. */
GArray *disp_roads_path(disp_roads *g, const disp_roads_pos *source, const disp_roads_pos *target,
                        int64_t *ms, double *dist_m);

/* Closes (closed 1) or opens every edge of a road feature (road_id), or one
 * edge (road_id < 0, edge given). Returns the number of edges changed. */
int disp_roads_set_closed(disp_roads *g, int64_t road_id, uint32_t edge, int closed);
int disp_roads_is_closed(const disp_roads *g, uint32_t edge);

/* Writes the directed graph as a pgRouting edge table (CSV with a header:
 * id,source,target,cost,reverse_cost,x1,y1,x2,y2; cost in seconds as the
 * exact ms/1000, -1 where a direction is not allowed). Turn restrictions are
 * not in it. 0 or CORE_EIO. */
int disp_roads_export_csv(const disp_roads *g, const char *path);

/* Edge attributes, for tools and tests. */
typedef struct {
    uint32_t a, b;       /* nodes */
    int64_t forward_ms;  /* a→b, DISP_ROADS_UNREACHABLE when not allowed */
    int64_t backward_ms; /* b→a, likewise */
    double length_m;
    int64_t road_id;
} disp_roads_edge_info;
void disp_roads_edge(const disp_roads *g, uint32_t edge, disp_roads_edge_info *out);
void disp_roads_node(const disp_roads *g, uint32_t node, double *lon, double *lat);
/* The shape of an edge, lon/lat pairs from its first node to its second
 * (g_array_unref). */
GArray *disp_roads_edge_shape(const disp_roads *g, uint32_t edge);

/* A shape (lon/lat pairs, as the functions above give) as a GeoJSON
 * LineString, coordinates rounded to 1e-7 degrees (new reference). */
struct json_t;
struct json_t *disp_roads_geojson_line(const GArray *pts);

#endif

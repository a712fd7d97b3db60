/*
 * pipes.h — water and gas pipe networks: topology, valve-isolated segments
 * and the isolation of a burst (gis/pipes_*.c).
 *
 * A network has nodes (junctions, and sources: reservoirs, tanks, gas
 * plants), links between two nodes (pipes, pumps, control valves), isolation
 * valves and customers. An isolation valve sits on a link next to one of its
 * two nodes (EPANET valve layers give it as a `link,node` pair); closing it
 * cuts the link from that node.
 *
 * Segments are the smallest parts of a network that valves can shut off:
 * the connected components of the graph whose vertices are the nodes and the
 * links, with an edge from every link to each of its two end nodes unless a
 * valve sits there (the definition WNTR uses). They are found with a
 * union-find in near-linear time and recomputed whenever a valve or a link
 * is added or removed.
 *
 * An isolation starts from the segment of a burst link and grows across
 * every bounding valve that cannot be closed (inoperable, broken open, or
 * reported as failed to close); the bounding valves that can be closed are
 * the ones to close. The segments that the closures (with every valve
 * already closed) cut off from all sources are dry too: the unintended
 * isolation. Per-segment totals (length, volume, customers) make an answer
 * cost what the isolated and dry parts hold plus one pass over the segment
 * graph.
 *
 * Coordinates are WGS84 lon/lat once a network is in a city package
 * (geographic = 1); a network read from an EPANET file keeps the file's own
 * planar coordinates until it is reprojected. Distances are metres (a local
 * equirectangular scale for lon/lat, which is exact to 0.1 % over a city).
 *
 * A network is used by one thread at a time: queries keep scratch arrays
 * in it. Errors are CORE_E* codes with a message (g_free) where input was
 * at fault.
 */
#ifndef CITYCMD_GIS_PIPES_H
#define CITYCMD_GIS_PIPES_H

#include "../core/core.h"

#include <glib.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gis_pipenet gis_pipenet;

typedef enum { GIS_NODE_JUNCTION = 0, GIS_NODE_RESERVOIR, GIS_NODE_TANK } gis_node_kind;
typedef enum { GIS_LINK_PIPE = 0, GIS_LINK_PUMP, GIS_LINK_VALVE } gis_link_kind;
/* An isolation valve: normally open; closed (already, for some reason);
 * inoperable (will not turn, or broken open: it cannot be closed). */
typedef enum { GIS_VALVE_OPEN = 0, GIS_VALVE_CLOSED, GIS_VALVE_INOPERABLE } gis_valve_state;

const char *gis_node_kind_name(gis_node_kind k);
const char *gis_link_kind_name(gis_link_kind k);
const char *gis_valve_state_name(gis_valve_state s);
/* -1 when the name is unknown. */
int gis_valve_state_parse(const char *s);

/* ---- building a network ---- */

/* utility: "water" or "gas". Never NULL. */
gis_pipenet *gis_pipenet_new(const char *name, const char *utility);
void gis_pipenet_free(gis_pipenet *n);

/* Each returns the new element's index (>= 0) or a CORE_E* code
 * (CORE_EEXISTS for a duplicate id, CORE_ENOTFOUND for an unknown node or
 * link, CORE_EINVAL for a non-finite coordinate or a valve whose node is
 * not an end of its link), with *err (g_free) when err is not NULL. */
int gis_pipenet_add_node(gis_pipenet *n, const char *id, gis_node_kind kind, double x, double y,
                         char **err);
/* length_m <= 0: the geometry's length. xy: nvert points (x0,y0,x1,y1,...)
 * from the first node to the second, or NULL for a straight line. */
int gis_pipenet_add_link(gis_pipenet *n, const char *id, gis_link_kind kind, const char *from,
                         const char *to, double length_m, double diameter_mm, const double *xy,
                         size_t nvert, char **err);
/* id NULL: "V<index+1>". The valve is placed on the link, 2 m (at most a
 * tenth of the link) from the node. */
int gis_pipenet_add_valve(gis_pipenet *n, const char *id, const char *link, const char *node,
                          gis_valve_state state, char **err);
/* A customer (service connection) attached to a link or a node (link wins
 * when both are given; neither: the nearest link, after finish). kind is
 * free text (residential, hospital, school, ...); a priority customer is
 * one whose kind gis_customer_kind_priority() names. units: households or
 * connections it stands for (>= 1). */
int gis_pipenet_add_customer(gis_pipenet *n, const char *id, const char *name, const char *kind,
                             int units, double x, double y, const char *link, const char *node,
                             char **err);
int gis_customer_kind_priority(const char *kind);

/* Builds adjacency, the spatial index, the segments and their totals, and
 * attaches customers given without a link or node to the nearest link.
 * geographic: 1 when x/y are lon/lat. Call once after adding; add_valve,
 * remove_valve and remove_link keep it up to date after that. */
int gis_pipenet_finish(gis_pipenet *n, int geographic, char **err);

/* Reads an EPANET .inp file (junctions, reservoirs, tanks, pipes, pumps,
 * valves, coordinates, vertices; US customary units converted to metres and
 * millimetres). The network is not finished (add valves, then finish). */
int gis_pipenet_read_inp(const char *path, const char *name, const char *utility, gis_pipenet **out,
                         char **err);
/* Nodes of the .inp file that had no [COORDINATES] entry (placed at 0,0). */
size_t gis_pipenet_inp_missing_coords(const gis_pipenet *n);
/* Adds the isolation valves of a CSV valve layer (`link,node` columns, an
 * optional first index column, as WNTR writes them). Returns the count. */
int gis_pipenet_read_valves_csv(gis_pipenet *n, const char *path, char **err);

/* ---- reading it ---- */

const char *gis_pipenet_name(const gis_pipenet *n);
const char *gis_pipenet_utility(const gis_pipenet *n);
size_t gis_pipenet_node_count(const gis_pipenet *n);
size_t gis_pipenet_link_count(const gis_pipenet *n);
size_t gis_pipenet_valve_count(const gis_pipenet *n);
size_t gis_pipenet_customer_count(const gis_pipenet *n);
/* -1 when unknown. */
int gis_pipenet_find_node(const gis_pipenet *n, const char *id);
int gis_pipenet_find_link(const gis_pipenet *n, const char *id);
int gis_pipenet_find_valve(const gis_pipenet *n, const char *id);

typedef struct {
    const char *id;
    gis_node_kind kind;
    double x, y;
} gis_pipe_node;
typedef struct {
    const char *id;
    gis_link_kind kind;
    int from, to; /* node indices */
    double length_m, diameter_mm;
    const double *xy; /* nvert points */
    size_t nvert;
    int removed;
} gis_pipe_link;
typedef struct {
    const char *id;
    int link, node;
    double x, y;
    gis_valve_state state;
    int removed;
} gis_pipe_valve;
typedef struct {
    const char *id, *name, *kind;
    int units, priority;
    double x, y;
    int link, node; /* the element it hangs on (one of them is -1) */
} gis_pipe_customer;

/* Pointers stay valid until the network changes or is freed. */
const gis_pipe_node *gis_pipenet_node(const gis_pipenet *n, size_t i);
const gis_pipe_link *gis_pipenet_link(const gis_pipenet *n, size_t i);
const gis_pipe_valve *gis_pipenet_valve(const gis_pipenet *n, size_t i);
const gis_pipe_customer *gis_pipenet_customer(const gis_pipenet *n, size_t i);
/* [w, s, e, n] of every node and vertex. */
void gis_pipenet_bbox(const gis_pipenet *n, double bbox[4]);

/* The nearest live link to a point within max_m metres: its index and the
 * distance, or -1. */
int gis_pipenet_nearest_link(const gis_pipenet *n, double x, double y, double max_m,
                             double *dist_m);
/* Metres between two points in the network's coordinates. */
double gis_pipenet_distance(const gis_pipenet *n, double x0, double y0, double x1, double y1);

/* ---- segments ---- */

size_t gis_pipenet_segment_count(const gis_pipenet *n);
int gis_pipenet_node_segment(const gis_pipenet *n, size_t node);
int gis_pipenet_link_segment(const gis_pipenet *n, size_t link);
/* Nodes + links in a segment. */
size_t gis_pipenet_segment_size(const gis_pipenet *n, int seg);
/* {"segments":N,"largest":K,"nodes":{id:seg},"links":{id:seg}} (new ref). */
json_t *gis_pipenet_segments_json(const gis_pipenet *n);

/* ---- changes (each recomputes the segments) ---- */

int gis_pipenet_set_valve_state(gis_pipenet *n, size_t valve, gis_valve_state state);
/* hold 1: changes below do not recompute segments until hold 0, which
 * recomputes once (for applying many stored changes at start). */
void gis_pipenet_hold(gis_pipenet *n, int hold);
/* Removes a valve (taken out of the layer) or a link (abandoned). */
int gis_pipenet_remove_valve(gis_pipenet *n, size_t valve);
int gis_pipenet_remove_link(gis_pipenet *n, size_t link);

/* ---- isolation ---- */

typedef struct {
    int link;          /* the burst link */
    const int *failed; /* valves that failed to close (treated as inoperable) */
    size_t n_failed;
    const int *closed; /* valves closed by other work at the same time (treated as closed) */
    size_t n_closed;
    double at_x, at_y; /* where the crew starts (NAN: the link's middle) */
} gis_iso_query;

typedef struct {
    GArray *close;          /* int: valves to close, in the order to work through */
    GArray *already_closed; /* int: bounding valves that are closed already */
    GArray *passed;         /* int: valves that cannot close, which the isolation grew past */
    GArray *isolated;       /* int: segments shut off */
    GArray *dry;            /* int: segments cut off from every source by the closures */
    size_t isolated_links, isolated_nodes, dry_links, dry_nodes;
    double isolated_length_m, isolated_volume_m3, dry_length_m;
    size_t customers, customer_units, priority_customers;
    int no_source; /* 1: the network has no source, so nothing counts as dry */
} gis_iso_result;

/* 0, CORE_ENOTFOUND (no such link) or CORE_EINVAL (a removed link). The
 * result is cleared first; free with gis_iso_result_clear. */
int gis_pipes_isolate(gis_pipenet *n, const gis_iso_query *q, gis_iso_result *r);
/* Several isolations in force at once (planned works whose windows
 * overlap): every seed and closure together; the crew order starts from
 * the first query. */
int gis_pipes_isolate_many(gis_pipenet *n, const gis_iso_query *qs, size_t nq, gis_iso_result *r);
void gis_iso_result_clear(gis_iso_result *r);

/* The answer as JSON (new ref): valves with positions and order, element
 * ids of the isolated and dry parts, totals, customers by kind and the
 * priority customers by name. detail: also every affected customer (at most
 * max_customers) and the isolated/dry links as GeoJSON MultiLineStrings. */
json_t *gis_iso_result_json(const gis_pipenet *n, const gis_iso_result *r, int detail,
                            size_t max_customers);
/* Customer indices of the isolated and dry parts, into out (int). */
void gis_iso_result_customers(const gis_pipenet *n, const gis_iso_result *r, GArray *out);

/* ---- city packages and imports (gis/pipes_io.c, gis/pipes_layers.c) ---- */

/* A network in a city package is DIR/networks/NAME.gpkg (layers `nodes`,
 * `links`, `valves`, `customers`, all WGS84; docs/CITY.md) beside
 * NAME.json (name, utility, counts, the import report). */
int gis_pipenet_save(const gis_pipenet *n, const char *city_dir, const json_t *report, char **err);
/* Loads and finishes one network file. */
int gis_pipenet_load(const char *gpkg_path, gis_pipenet **out, char **err);
/* Names of the networks of a package (NULL-terminated, g_strfreev). */
char **gis_pipenet_list(const char *city_dir);

/* Reprojects an unfinished network (nodes, vertices, valves, customers)
 * from srs (anything PROJ reads) to WGS84 lon/lat. */
int gis_pipenet_reproject(gis_pipenet *n, const char *srs, char **err);

/* A network from GIS layers (any GDAL source, "SOURCE[|LAYER]", any CRS the
 * source declares or source_srs): pipes as lines; optional junction points;
 * sources (reservoirs, tanks, plants) as points; valves as points (placed
 * on the nearest pipe next to its nearer end, or by `link`/`node` fields);
 * customers as points (`node`/`link` fields, or the nearest pipe). Line
 * ends within snap_m metres share a node. *report (new ref): what could not
 * be connected. The network comes back unfinished, in WGS84. */
typedef struct {
    const char *pipes, *junctions, *sources, *valves, *customers;
    const char *source_srs;
    double snap_m; /* 0: 0.5 m */
} gis_pipe_layers;
int gis_pipenet_read_layers(const gis_pipe_layers *o, const char *name, const char *utility,
                            gis_pipenet **out, json_t **report, char **err);

/* `citycmd import-network --city DIR --name NAME (--inp FILE [--valves CSV]
 * [--crs CRS] | --pipes SRC ...)` */
int gis_import_network_main(int argc, char **argv);

#endif

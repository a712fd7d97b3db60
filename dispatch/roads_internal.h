/*
 * roads_internal.h — the road graph's layout, shared by roads.c (search,
 * snapping, closures) and roads_build.c (making it from a package or from
 * edges).
 *
 * Edge e (undirected) runs from node ea[e] to node eb[e] along its shape
 * (shape[shape_off[e] .. shape_off[e+1]), lon/lat pairs, both ends
 * included). Its directed halves are 2e (ea → eb) and 2e+1 (eb → ea), with
 * their times in ms[2e] and ms[2e+1] (DISP_ROADS_UNREACHABLE when the
 * direction is not allowed). out[out_off[n] .. out_off[n+1]) are the
 * directed edges leaving node n, in[in_off[n] .. in_off[n+1]) those
 * arriving. Forbidden turns are (from directed edge << 32 | to directed
 * edge), sorted, for a binary search.
 */
#ifndef CITYCMD_DISPATCH_ROADS_INTERNAL_H
#define CITYCMD_DISPATCH_ROADS_INTERNAL_H

#include "roads.h"

#define ROADS_CELL_DEG 0.002 /* the snapping grid: about 200 m */
#define ROADS_BUCKETS 65     /* the radix heap: one per bit of a time, and 0 */

struct disp_roads {
    uint32_t n_nodes, n_edges;
    double *node_lonlat; /* 2 per node */
    uint32_t *ea, *eb;
    int64_t *ms;      /* 2 per edge */
    double *length_m; /* 1 per edge */
    int64_t *road_id;
    uint8_t *closed;
    uint32_t *shape_off; /* n_edges + 1 */
    double *shape;       /* lon/lat pairs */
    uint32_t *out_off, *out, *in_off, *in;
    uint64_t *forbidden;
    uint32_t n_forbidden;
    uint32_t n_restrictions;
    /* The snapping grid: cell key -> GArray of uint32 edge ids. */
    GHashTable *cells;
    /* Search scratch, one slot per directed edge: the time and distance to
     * the target, the next directed edge on the way there, and the search
     * that last wrote the slot (so nothing is cleared between searches). */
    int64_t *dist;
    double *dist_m;
    uint32_t *next;
    uint32_t *stamp;
    uint8_t *settled;
    uint32_t search;
    int track_m; /* this search keeps metres too (dist_m) */
    /* The search's queue of (time, directed edge): a radix heap (roads.c);
     * a shorter time pushes the edge again and the stale entry is skipped
     * when popped. */
    struct disp_roads_heap_item *bucket[ROADS_BUCKETS];
    uint32_t bucket_len[ROADS_BUCKETS], bucket_cap[ROADS_BUCKETS];
    uint32_t heap_len;
    int64_t heap_last;
};

/* Fills the adjacency, the snapping grid and the scratch of a graph whose
 * nodes, edges, shapes and times are set. */
void disp_roads__finish(disp_roads *g);
/* Adds a forbidden turn (from directed edge, to directed edge); sorted and
 * deduplicated by disp_roads__finish or disp_roads__sort_turns. */
void disp_roads__forbid(disp_roads *g, GArray *turns, uint32_t from, uint32_t to);
void disp_roads__sort_turns(disp_roads *g, GArray *turns);
/* The travel time in ms of length_m at speed_kmh (at least 1 ms). */
int64_t disp_roads__ms(double length_m, double speed_kmh);

#endif

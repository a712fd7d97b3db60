/*
 * pipes_gen.h — synthetic pipe networks and valve layers for benchmarks
 * (tools/bench/pipes_gen.c). Deterministic: the same arguments and seed give
 * the same network, element for element.
 *
 * Networks come back unfinished (pipes.h): the caller adds what else it
 * wants and calls gis_pipenet_finish (geographic 0: coordinates are planar
 * metres). The caller owns the network (gis_pipenet_free).
 */
#ifndef CITYCMD_TOOLS_PIPES_GEN_H
#define CITYCMD_TOOLS_PIPES_GEN_H

#include "../../gis/pipes.h"

#include <stddef.h>

/* A city-like water network of exactly `pipes` pipes: a jittered 100 m grid
 * of junctions with about a tenth of the grid edges left out (never one that
 * would disconnect it), one reservoir or tank per 50,000 pipes (at least 2),
 * `valves` isolation valves on distinct random (link, node) pairs, and
 * `customers` customers on random pipes (1 % of them hospitals, schools,
 * clinics and care homes). Diameters 100–600 mm, mostly small. NULL when
 * valves exceed twice the pipes. */
gis_pipenet *pipes_gen_grid(size_t pipes, size_t valves, size_t customers, unsigned seed);
/* The same city with its valves at zone boundaries instead: the grid cut
 * into square zones of about pipes/valves blocks a side, a valve on every
 * pipe that crosses from one zone to the next (drawn at random down to
 * `valves` when there are more; random valves added when there are fewer),
 * so most segments are a zone of a few dozen pipes. */
gis_pipenet *pipes_gen_grid_zoned(size_t pipes, size_t valves, size_t customers, unsigned seed);

/* A strategic valve layer, as WNTR's strategic_valve_layer builds it: at
 * every node with d links, valves on d - spare of them (spare 1: "N-1"),
 * chosen at random. Returns the number of valves added, or a CORE_E* code. */
int pipes_gen_strategic_valves(gis_pipenet *n, int spare, unsigned seed);

/* Adds `count` customers on random live links, placed beside the link's
 * middle, 1 % of them priority kinds. Returns the number added, or a CORE_E*
 * code. */
int pipes_gen_customers(gis_pipenet *n, size_t count, unsigned seed);

#endif

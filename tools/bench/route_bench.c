/*
 * route_bench — ETAs from many units to one incident on the road graph
 * (dispatch/roads.h): the time to build the graph, its memory, and the time
 * of one disp_roads_times_to call from --units sources (500) to an
 * incident, over --incidents incidents (50). The peer, pgRouting's
 * pgr_dijkstraCost on a real PostgreSQL, is run by route_bench.mjs on the
 * edge table and the queries this program writes (--export, --queries);
 * the .mjs also checks that every cost agrees.
 *
 * The graph is a city package's roads (--city DIR, with turn restrictions
 * ignored, as pgRouting gets none) or a generated city (--grid N): a street
 * grid of about N road edges centred on the demo city (7.42, 43.74), 100 m
 * blocks with each crossing moved up to 25 m at random, so no two blocks
 * are alike. Every 10th street is a two-way arterial at 60 km/h, every 5th
 * other one a two-way collector at 40 km/h; of the remaining 30 km/h
 * streets every third is one-way, alternating in direction like a
 * downtown grid, and 4 % of the minor links are missing (dead ends, cut
 * blocks), so the lattice is not perfect. The seed is fixed, so the same N
 * gives the same city. Generating it is not counted in the build time.
 *
 * The question must be the same for both engines, and pgRouting answers
 * between nodes. So incidents and units are placed exactly at nodes: a unit
 * at node n is put on an edge along which a vehicle arrives at n (offset 0
 * of an edge b→a into its first node n, or 1 of an edge a→b into its
 * second); from there every road leaving n is open to it, as from a
 * pgRouting vertex. An incident at node n is put where a vehicle leaving n
 * starts (offset 0 of an edge whose a→b is open, or 1 of one whose b→a is),
 * so every way of arriving at n reaches it. Nodes with no such edge are not
 * drawn. pgRouting's vertex ids are the node indices plus one, as
 * disp_roads_export_csv numbers them (checked on the written file).
 *
 *   build/bench/route_bench (--city DIR | --grid N) [--incidents 50] [--units 500]
 *                           [--seed S] [--export FILE.csv] [--queries FILE.jsonl]
 *
 * --queries writes one JSON line per incident: {"target": vertex, "query_ms":
 * citycmd's time for it, "sources": [vertices], "ms": [citycmd's travel time
 * from each source, -1 when unreachable]}.
 */
#include "../../core/core.h"
#include "../../core/log.h"
#include "../../dispatch/roads.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define SEED 20261122

#define GRID_LON0 7.42
#define GRID_LAT0 43.74
#define GRID_BLOCK_M 100.0
#define GRID_JITTER_M 25.0
#define GRID_DROP 0.04

typedef struct {
    const char *city;
    long grid;
    int incidents, units;
    unsigned seed;
    const char *export_csv, *queries;
} bench_opt;

/* Where a vehicle at a node stands: an edge and an offset (edge
 * UINT32_MAX: nowhere suitable). */
typedef struct {
    uint32_t edge;
    float offset;
} node_pos;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- the generated city ---- */

typedef enum { MINOR, ONEWAY, COLLECTOR, ARTERIAL } street_kind;

/* Street i (a row or a column of the grid). */
static street_kind street_of(long i)
{
    if (i % 10 == 0)
        return ARTERIAL;
    if (i % 5 == 0)
        return COLLECTOR;
    return i % 3 == 1 ? ONEWAY : MINOR;
}

static double street_speed(street_kind k)
{
    return k == ARTERIAL ? 60 : k == COLLECTOR ? 40 : 30;
}

/* Adds the link from node p to node q along street s of its direction
 * (road id road), unless the draw drops it; one-way streets alternate in
 * direction. */
static void grid_link(GArray *edges, const double *xy, uint32_t p, uint32_t q, long s, long road,
                      GRand *rnd)
{
    street_kind k = street_of(s);
    if ((k == MINOR || k == ONEWAY) && g_rand_double(rnd) < GRID_DROP)
        return;
    disp_roads_edge_spec e = {p, q, 0, street_speed(k), k == ONEWAY, road};
    if (k == ONEWAY && (s / 3) % 2) {
        e.a = q;
        e.b = p;
    }
    e.length_m = hypot(xy[2 * q] - xy[2 * p], xy[2 * q + 1] - xy[2 * p + 1]);
    g_array_append_val(edges, e);
}

/* A side × side grid of about n_edges links; *gen_ms is the time spent
 * generating, *build_ms that of disp_roads_from_edges. */
static disp_roads *grid_city(long n_edges, unsigned seed, double *gen_ms, double *build_ms,
                             char **err)
{
    double t0 = now_ms();
    /* 2·side·(side−1) links, less the dropped share of the minor ones (4
     * streets in 5). */
    long side = (long)ceil(sqrt(n_edges / (2.0 * (1 - 0.8 * GRID_DROP)))) + 1;
    if (side < 2 || side > 20000) {
        *err = g_strdup_printf("--grid %ld: want 4 to 800000000 edges", n_edges);
        return NULL;
    }
    uint32_t n_nodes = (uint32_t)(side * side);
    double *xy = g_new(double, 2 * (size_t)n_nodes), *lonlat = g_new(double, 2 * (size_t)n_nodes);
    GRand *rnd = g_rand_new_with_seed(seed);
    double m_per_lon = 111320.0 * cos(GRID_LAT0 * G_PI / 180), m_per_lat = 110574.0;
    for (long r = 0; r < side; r++) {
        for (long c = 0; c < side; c++) {
            size_t i = (size_t)(r * side + c);
            xy[2 * i] = (c - side / 2) * GRID_BLOCK_M +
                        g_rand_double_range(rnd, -GRID_JITTER_M, GRID_JITTER_M);
            xy[2 * i + 1] = (r - side / 2) * GRID_BLOCK_M +
                            g_rand_double_range(rnd, -GRID_JITTER_M, GRID_JITTER_M);
            lonlat[2 * i] = GRID_LON0 + xy[2 * i] / m_per_lon;
            lonlat[2 * i + 1] = GRID_LAT0 + xy[2 * i + 1] / m_per_lat;
        }
    }
    GArray *edges =
        g_array_sized_new(FALSE, FALSE, sizeof(disp_roads_edge_spec), (guint)(2 * side * side));
    /* Rows are streets 0..side-1, columns side..2·side-1. */
    for (long r = 0; r < side; r++) {
        for (long c = 0; c + 1 < side; c++) {
            uint32_t p = (uint32_t)(r * side + c);
            grid_link(edges, xy, p, p + 1, r, r, rnd);
            p = (uint32_t)(c * side + r);
            grid_link(edges, xy, p, p + (uint32_t)side, r, side + r, rnd);
        }
    }
    g_rand_free(rnd);
    double t1 = now_ms();
    disp_roads *g = disp_roads_from_edges(lonlat, n_nodes, (disp_roads_edge_spec *)edges->data,
                                          edges->len, err);
    *build_ms = now_ms() - t1;
    *gen_ms = t1 - t0;
    g_array_free(edges, TRUE);
    g_free(xy);
    g_free(lonlat);
    return g;
}

/* ---- placing vehicles at nodes ---- */

/* For every node, where a unit there stands (arriving) and where an
 * incident there is (leaving); see the file's comment. Returns the number
 * of nodes that have both. */
static uint32_t node_places(const disp_roads *g, node_pos *unit_at, node_pos *incident_at)
{
    uint32_t n = disp_roads_node_count(g), m = disp_roads_edge_count(g);
    for (uint32_t i = 0; i < n; i++)
        unit_at[i].edge = incident_at[i].edge = UINT32_MAX;
    for (uint32_t e = 0; e < m; e++) {
        disp_roads_edge_info in;
        disp_roads_edge(g, e, &in);
        if (in.a == in.b)
            continue;
        if (in.forward_ms != DISP_ROADS_UNREACHABLE) {
            unit_at[in.b] = (node_pos){e, 1};
            incident_at[in.a] = (node_pos){e, 0};
        }
        if (in.backward_ms != DISP_ROADS_UNREACHABLE) {
            unit_at[in.a] = (node_pos){e, 0};
            incident_at[in.b] = (node_pos){e, 1};
        }
    }
    uint32_t both = 0;
    for (uint32_t i = 0; i < n; i++)
        both += unit_at[i].edge != UINT32_MAX && incident_at[i].edge != UINT32_MAX;
    return both;
}

/* A random node that has a place in at. */
static uint32_t draw_node(GRand *rnd, const node_pos *at, uint32_t n)
{
    for (;;) {
        uint32_t i = (uint32_t)g_rand_int_range(rnd, 0, (gint32)n);
        if (at[i].edge != UINT32_MAX)
            return i;
    }
}

static disp_roads_pos pos_of(const disp_roads *g, const node_pos *at, uint32_t node)
{
    disp_roads_pos p = {at[node].edge, at[node].offset, 0, 0, 0};
    disp_roads_node(g, node, &p.lon, &p.lat);
    return p;
}

/* ---- the run ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of n sorted values (nearest rank). */
static double quantile(const double *v, int n, double q)
{
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void write_query(FILE *f, uint32_t target, double query_ms, const uint32_t *src,
                        const int64_t *ms, int n)
{
    fprintf(f, "{\"target\":%u,\"query_ms\":%.6f,\"sources\":[", target + 1, query_ms);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%u", i ? "," : "", src[i] + 1);
    fprintf(f, "],\"ms\":[");
    for (int i = 0; i < n; i++)
        fprintf(f, i ? ",%" G_GINT64_FORMAT : "%" G_GINT64_FORMAT,
                ms[i] == DISP_ROADS_UNREACHABLE ? (int64_t)-1 : ms[i]);
    fprintf(f, "]}\n");
}

/* Runs --incidents queries of --units sources each (after one warm-up
 * query), with their times in took (ms) and, when qf is not NULL, written
 * there. Returns the number of unreachable unit-incident pairs. */
static long time_queries(disp_roads *g, const bench_opt *o, const node_pos *unit_at,
                         const node_pos *incident_at, FILE *qf, double *took)
{
    uint32_t n = disp_roads_node_count(g);
    GRand *rnd = g_rand_new_with_seed(o->seed);
    disp_roads_pos *src = g_new(disp_roads_pos, o->units);
    uint32_t *src_node = g_new(uint32_t, o->units);
    int64_t *ms = g_new(int64_t, o->units);
    long unreachable = 0;
    for (int k = -1; k < o->incidents; k++) {
        uint32_t t = draw_node(rnd, incident_at, n);
        disp_roads_pos target = pos_of(g, incident_at, t);
        for (int i = 0; i < o->units; i++) {
            src_node[i] = draw_node(rnd, unit_at, n);
            src[i] = pos_of(g, unit_at, src_node[i]);
        }
        double t0 = now_ms();
        disp_roads_times_to(g, &target, src, (size_t)o->units, ms, NULL);
        double dt = now_ms() - t0;
        if (k < 0)
            continue;
        took[k] = dt;
        for (int i = 0; i < o->units; i++)
            unreachable += ms[i] == DISP_ROADS_UNREACHABLE;
        if (qf)
            write_query(qf, t, dt, src_node, ms, o->units);
    }
    g_free(ms);
    g_free(src_node);
    g_free(src);
    g_rand_free(rnd);
    return unreachable;
}

/* Times the queries and prints the figures. 0, or 1 when there is nowhere
 * to place vehicles or the queries file cannot be written. */
static int run_queries(disp_roads *g, const bench_opt *o)
{
    uint32_t n = disp_roads_node_count(g);
    node_pos *unit_at = g_new(node_pos, n), *incident_at = g_new(node_pos, n);
    FILE *qf = NULL;
    int rc = 1;
    if (node_places(g, unit_at, incident_at) == 0) {
        fprintf(stderr, "route_bench: the graph has no node a vehicle can reach and leave\n");
        goto out;
    }
    if (o->queries && !(qf = fopen(o->queries, "w"))) {
        fprintf(stderr, "route_bench: cannot write %s\n", o->queries);
        goto out;
    }
    double *took = g_new(double, o->incidents), sum = 0;
    long unreachable = time_queries(g, o, unit_at, incident_at, qf, took);
    for (int k = 0; k < o->incidents; k++)
        sum += took[k];
    qsort(took, (size_t)o->incidents, sizeof *took, cmp_double);
    printf("queries: %d incidents x %d units, seed %u\n", o->incidents, o->units, o->seed);
    printf("citycmd ms per incident: mean %.3f, p50 %.3f, p99 %.3f, max %.3f"
           " (unreachable pairs: %ld of %ld)\n",
           sum / o->incidents, quantile(took, o->incidents, 0.5),
           quantile(took, o->incidents, 0.99), took[o->incidents - 1], unreachable,
           (long)o->incidents * o->units);
    g_free(took);
    rc = 0;
    if (qf && (ferror(qf) | fclose(qf))) {
        fprintf(stderr, "route_bench: cannot write %s\n", o->queries);
        rc = 1;
    }
    qf = NULL;
out:
    if (qf)
        fclose(qf);
    g_free(unit_at);
    g_free(incident_at);
    return rc;
}

/* Writes the edge table and checks it numbers vertices as the queries do
 * (node index + 1). 0, or 1. */
static int export_edges(const disp_roads *g, const char *path)
{
    double t0 = now_ms();
    if (disp_roads_export_csv(g, path) != 0) {
        fprintf(stderr, "route_bench: cannot write %s\n", path);
        return 1;
    }
    char line[256] = "";
    unsigned id = 0, a = 0, b = 0;
    FILE *f = fopen(path, "r");
    int ok = f && fgets(line, sizeof line, f) && fgets(line, sizeof line, f) &&
             sscanf(line, "%u,%u,%u,", &id, &a, &b) == 3;
    if (f)
        fclose(f);
    disp_roads_edge_info in;
    disp_roads_edge(g, 0, &in);
    if (!ok || id != 1 || a != in.a + 1 || b != in.b + 1) {
        fprintf(stderr, "route_bench: %s does not number vertices as node index + 1\n", path);
        return 1;
    }
    printf("export: %s in %.0f ms\n", path, now_ms() - t0);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: route_bench (--city DIR | --grid N) [--incidents 50] [--units 500]"
                    " [--seed S] [--export FILE.csv] [--queries FILE.jsonl]\n");
    return 2;
}

static int parse_args(int argc, char **argv, bench_opt *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        i++;
        if (!strcmp(a, "--city"))
            o->city = v;
        else if (!strcmp(a, "--grid"))
            o->grid = atol(v);
        else if (!strcmp(a, "--incidents"))
            o->incidents = atoi(v);
        else if (!strcmp(a, "--units"))
            o->units = atoi(v);
        else if (!strcmp(a, "--seed"))
            o->seed = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--export"))
            o->export_csv = v;
        else if (!strcmp(a, "--queries"))
            o->queries = v;
        else
            return usage();
    }
    if (!o->city == !o->grid || o->incidents < 1 || o->units < 1)
        return usage();
    return 0;
}

/* Peak resident memory of this process, MB. */
static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static disp_roads *build(const bench_opt *o, double *build_ms, char **err)
{
    double gen_ms = 0;
    if (o->grid) {
        disp_roads *g = grid_city(o->grid, o->seed, &gen_ms, build_ms, err);
        printf("route_bench: generated grid city of about %ld edges around %.2f,%.2f"
               " (generated in %.0f ms)\n",
               o->grid, GRID_LON0, GRID_LAT0, gen_ms);
        return g;
    }
    disp_roads_options opt = {.emergency_factor = 1.0, .ignore_restrictions = 1};
    double t0 = now_ms();
    disp_roads *g = disp_roads_load(o->city, &opt, err);
    *build_ms = now_ms() - t0;
    printf("route_bench: city %s, turn restrictions ignored\n", o->city);
    return g;
}

int main(int argc, char **argv)
{
    bench_opt o = {.incidents = 50, .units = 500, .seed = SEED};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    core_log_set_level(CORE_LOG_WARN);
    char *err = NULL;
    double build_ms = 0;
    disp_roads *g = build(&o, &build_ms, &err);
    if (!g) {
        fprintf(stderr, "route_bench: %s\n", err ? err : "no graph");
        g_free(err);
        return 1;
    }
    printf("build: %.1f ms, %u nodes, %u edges, %u restrictions, memory %.1f MB"
           " (peak RSS %.0f MB)\n",
           build_ms, disp_roads_node_count(g), disp_roads_edge_count(g),
           disp_roads_restriction_count(g), disp_roads_memory(g) / 1048576.0, peak_rss_mb());
    rc = o.export_csv ? export_edges(g, o.export_csv) : 0;
    if (!rc)
        rc = run_queries(g, &o);
    disp_roads_free(g);
    return rc;
}

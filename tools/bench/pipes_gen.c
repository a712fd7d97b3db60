/*
 * pipes_gen.c — synthetic water networks and valve layers for
 * tools/bench/pipes_bench.c (pipes_gen.h).
 *
 * The grid city: W x H junctions 100 m apart, each moved up to 25 m at
 * random, and the grid edges between neighbours, about a tenth more than
 * the pipes asked for. A random spanning tree (Kruskal over a shuffled edge
 * list) is always kept, so the network stays connected; of the other edges,
 * the first ones in the shuffled order are kept until the count is exact.
 * Every tenth street is a trunk main (300–600 mm), the rest are
 * distribution pipes (100–250 mm). Links are added in grid order, so
 * neighbouring pipes have neighbouring indices, as in a real export sorted
 * by street.
 *
 * Everything draws from one GRand seeded by the caller; nothing depends on
 * the time or on addresses. Runs on the caller's thread.
 */
#include "pipes_gen.h"

#include <math.h>
#include <string.h>

#define BLOCK_M 100.0
#define JITTER_M 25.0
#define KEEP 0.9
#define PIPES_PER_SOURCE 50000
#define PRIORITY_SHARE 0.01

static const char *const priority_kinds[] = {"hospital", "school", "clinic", "care_home"};

typedef struct {
    size_t w, h;
} grid_dims;

static size_t grid_edges(grid_dims g)
{
    return g.w * (g.h - 1) + g.h * (g.w - 1);
}

/* Edge e's two node indices: horizontal edges first, row by row. */
static void grid_edge(grid_dims g, size_t e, size_t *a, size_t *b)
{
    size_t nh = g.h * (g.w - 1);
    if (e < nh) {
        size_t row = e / (g.w - 1), col = e % (g.w - 1);
        *a = row * g.w + col, *b = *a + 1;
    } else {
        size_t k = e - nh;
        *a = k, *b = k + g.w;
    }
}

/* Whether edge e lies on a trunk street (every tenth row or column). */
static int grid_trunk(grid_dims g, size_t e)
{
    size_t a, b;
    grid_edge(g, e, &a, &b);
    return b == a + 1 ? (a / g.w) % 10 == 0 : (a % g.w) % 10 == 0;
}

static size_t uf_find(size_t *p, size_t x)
{
    while (p[x] != x) {
        p[x] = p[p[x]];
        x = p[x];
    }
    return x;
}

static void shuffle(GRand *rng, size_t *v, size_t m)
{
    for (size_t i = m; i > 1; i--) {
        size_t j = (size_t)g_rand_int_range(rng, 0, (gint32)i);
        size_t t = v[i - 1];
        v[i - 1] = v[j], v[j] = t;
    }
}

/* Marks the kept edges: a random spanning tree plus random others, `pipes`
 * in all. */
static unsigned char *choose_edges(grid_dims g, size_t pipes, GRand *rng)
{
    size_t ne = grid_edges(g), nn = g.w * g.h;
    size_t *order = g_new(size_t, ne), *p = g_new(size_t, nn);
    unsigned char *keep = g_new0(unsigned char, ne);
    for (size_t e = 0; e < ne; e++)
        order[e] = e;
    shuffle(rng, order, ne);
    for (size_t i = 0; i < nn; i++)
        p[i] = i;
    size_t kept = 0;
    for (size_t i = 0; i < ne; i++) {
        size_t a, b;
        grid_edge(g, order[i], &a, &b);
        a = uf_find(p, a), b = uf_find(p, b);
        if (a != b)
            p[a] = b, keep[order[i]] = 1, kept++;
    }
    for (size_t i = 0; i < ne && kept < pipes; i++)
        if (!keep[order[i]])
            keep[order[i]] = 1, kept++;
    g_free(order);
    g_free(p);
    return keep;
}

static int add_nodes(gis_pipenet *n, grid_dims g, size_t sources, GRand *rng)
{
    size_t nn = g.w * g.h;
    unsigned char *src = g_new0(unsigned char, nn);
    for (size_t k = 0; k < sources;) {
        size_t i = (size_t)g_rand_int_range(rng, 0, (gint32)nn);
        if (!src[i])
            src[i] = (unsigned char)(1 + k % 2), k++; /* reservoirs and tanks in turn */
    }
    int rc = 0;
    char id[32];
    for (size_t i = 0; i < nn && rc >= 0; i++) {
        double x = (double)(i % g.w) * BLOCK_M + g_rand_double_range(rng, -JITTER_M, JITTER_M);
        double y = (double)(i / g.w) * BLOCK_M + g_rand_double_range(rng, -JITTER_M, JITTER_M);
        gis_node_kind kind = src[i] == 1   ? GIS_NODE_RESERVOIR
                             : src[i] == 2 ? GIS_NODE_TANK
                                           : GIS_NODE_JUNCTION;
        g_snprintf(id, sizeof id, "J%zu", i + 1);
        rc = gis_pipenet_add_node(n, id, kind, x, y, NULL);
    }
    g_free(src);
    return rc < 0 ? rc : 0;
}

static double pick_diameter(GRand *rng, int trunk)
{
    static const double mains[] = {300, 400, 500, 600};
    static const double dist[] = {100, 100, 150, 150, 150, 200, 200, 250};
    if (trunk)
        return mains[g_rand_int_range(rng, 0, G_N_ELEMENTS(mains))];
    return dist[g_rand_int_range(rng, 0, G_N_ELEMENTS(dist))];
}

static int add_pipes(gis_pipenet *n, grid_dims g, const unsigned char *keep, GRand *rng)
{
    char id[32], from[32], to[32];
    size_t k = 0;
    for (size_t e = 0; e < grid_edges(g); e++) {
        if (!keep[e])
            continue;
        size_t a, b;
        grid_edge(g, e, &a, &b);
        g_snprintf(id, sizeof id, "P%zu", ++k);
        g_snprintf(from, sizeof from, "J%zu", a + 1);
        g_snprintf(to, sizeof to, "J%zu", b + 1);
        int rc = gis_pipenet_add_link(n, id, GIS_LINK_PIPE, from, to, 0,
                                      pick_diameter(rng, grid_trunk(g, e)), NULL, 0, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int add_random_valves(gis_pipenet *n, size_t valves, GRand *rng)
{
    size_t nl = gis_pipenet_link_count(n);
    unsigned char *used = g_new0(unsigned char, nl); /* bit0 from end, bit1 to end */
    int rc = 0;
    for (size_t k = 0; k < valves && rc >= 0;) {
        size_t j = (size_t)g_rand_int_range(rng, 0, (gint32)nl);
        int end = g_rand_boolean(rng) ? 1 : 0;
        if (used[j] & (1 << end))
            continue;
        used[j] |= (unsigned char)(1 << end);
        const gis_pipe_link *l = gis_pipenet_link(n, j);
        const gis_pipe_node *nd = gis_pipenet_node(n, (size_t)(end ? l->to : l->from));
        rc = gis_pipenet_add_valve(n, NULL, l->id, nd->id, GIS_VALVE_OPEN, NULL);
        k++;
    }
    g_free(used);
    return rc < 0 ? rc : 0;
}

/* Valves on pipes that cross a zone boundary (zones of `side` blocks), at
 * most `valves` of them in random order. Returns how many it added. */
static long add_zone_valves(gis_pipenet *n, grid_dims g, const unsigned char *keep, size_t valves,
                            GRand *rng)
{
    size_t side =
        MAX(1, (size_t)lround((double)gis_pipenet_link_count(n) / (double)MAX(valves, 1)));
    size_t *cross = g_new(size_t, gis_pipenet_link_count(n) + 1), m = 0, k = 0;
    for (size_t e = 0; e < grid_edges(g); e++) {
        if (!keep[e])
            continue;
        size_t a, b;
        grid_edge(g, e, &a, &b);
        int crosses = b == a + 1 ? (a % g.w) / side != (b % g.w) / side
                                 : (a / g.w) / side != (b / g.w) / side;
        if (crosses)
            cross[m++] = k;
        k++;
    }
    shuffle(rng, cross, m);
    int rc = 0;
    size_t added = 0;
    for (; added < MIN(m, valves) && rc >= 0; added++) {
        const gis_pipe_link *l = gis_pipenet_link(n, cross[added]);
        const gis_pipe_node *nd = gis_pipenet_node(n, (size_t)l->from);
        rc = gis_pipenet_add_valve(n, NULL, l->id, nd->id, GIS_VALVE_OPEN, NULL);
    }
    g_free(cross);
    return rc < 0 ? rc : (long)added;
}

static gis_pipenet *generate(size_t pipes, size_t valves, size_t customers, unsigned seed,
                             int zoned)
{
    if (pipes < 12 || pipes > G_MAXINT32 / 4 || valves > 2 * pipes)
        return NULL;
    grid_dims g;
    g.w = g.h = (size_t)MAX(2, lround(sqrt((double)pipes / KEEP / 2)));
    while (grid_edges(g) < pipes)
        g.w <= g.h ? g.w++ : g.h++;
    GRand *rng = g_rand_new_with_seed(seed);
    gis_pipenet *n = gis_pipenet_new("grid", "water");
    unsigned char *keep = choose_edges(g, pipes, rng);
    int rc = add_nodes(n, g, MAX(2, pipes / PIPES_PER_SOURCE), rng);
    if (rc == 0)
        rc = add_pipes(n, g, keep, rng);
    long zone_valves = 0;
    if (rc == 0 && zoned) {
        zone_valves = add_zone_valves(n, g, keep, valves, rng);
        rc = zone_valves < 0 ? (int)zone_valves : 0;
    }
    if (rc == 0)
        rc = add_random_valves(n, valves - (size_t)zone_valves, rng);
    if (rc == 0)
        rc = pipes_gen_customers(n, customers, g_rand_int(rng));
    g_free(keep);
    g_rand_free(rng);
    if (rc < 0) {
        gis_pipenet_free(n);
        return NULL;
    }
    return n;
}

gis_pipenet *pipes_gen_grid(size_t pipes, size_t valves, size_t customers, unsigned seed)
{
    return generate(pipes, valves, customers, seed, 0);
}

gis_pipenet *pipes_gen_grid_zoned(size_t pipes, size_t valves, size_t customers, unsigned seed)
{
    return generate(pipes, valves, customers, seed, 1);
}

int pipes_gen_strategic_valves(gis_pipenet *n, int spare, unsigned seed)
{
    size_t nn = gis_pipenet_node_count(n), nl = gis_pipenet_link_count(n);
    size_t *off = g_new0(size_t, nn + 2), *adj = g_new(size_t, 2 * nl + 1);
    for (size_t j = 0; j < nl; j++) {
        const gis_pipe_link *l = gis_pipenet_link(n, j);
        if (!l->removed)
            off[l->from + 2]++, off[l->to + 2]++;
    }
    for (size_t i = 0; i < nn; i++)
        off[i + 2] += off[i + 1];
    for (size_t j = 0; j < nl; j++) { /* off[i+1] is node i's fill position */
        const gis_pipe_link *l = gis_pipenet_link(n, j);
        if (!l->removed)
            adj[off[l->from + 1]++] = j, adj[off[l->to + 1]++] = j;
    }
    GRand *rng = g_rand_new_with_seed(seed);
    int added = 0, rc = 0;
    for (size_t i = 0; i < nn && rc >= 0; i++) {
        size_t d = off[i + 1] - off[i];
        shuffle(rng, adj + off[i], d);
        for (size_t k = 0; (long)k < (long)d - spare && rc >= 0; k++) {
            const gis_pipe_link *l = gis_pipenet_link(n, adj[off[i] + k]);
            rc = gis_pipenet_add_valve(n, NULL, l->id, gis_pipenet_node(n, i)->id, GIS_VALVE_OPEN,
                                       NULL);
            added += rc >= 0;
        }
    }
    g_rand_free(rng);
    g_free(off);
    g_free(adj);
    return rc < 0 ? rc : added;
}

int pipes_gen_customers(gis_pipenet *n, size_t count, unsigned seed)
{
    size_t nl = gis_pipenet_link_count(n), live = 0;
    for (size_t j = 0; j < nl; j++)
        live += !gis_pipenet_link(n, j)->removed;
    if (count && !live)
        return CORE_EINVAL;
    GRand *rng = g_rand_new_with_seed(seed);
    size_t base = gis_pipenet_customer_count(n);
    char id[32], name[64];
    int rc = 0;
    for (size_t k = 0; k < count && rc >= 0;) {
        const gis_pipe_link *l = gis_pipenet_link(n, (size_t)g_rand_int_range(rng, 0, (gint32)nl));
        if (l->removed)
            continue;
        const char *kind = "residential", *nm = NULL;
        int units = g_rand_int_range(rng, 1, 13);
        if (g_rand_double(rng) < PRIORITY_SHARE) {
            kind = priority_kinds[g_rand_int_range(rng, 0, G_N_ELEMENTS(priority_kinds))];
            g_snprintf(name, sizeof name, "%s %zu", kind, k + 1);
            nm = name, units = 1;
        }
        double x = (l->xy[0] + l->xy[2 * l->nvert - 2]) / 2;
        double y = (l->xy[1] + l->xy[2 * l->nvert - 1]) / 2;
        g_snprintf(id, sizeof id, "C%zu", base + k + 1);
        rc = gis_pipenet_add_customer(n, id, nm, kind, units, x, y, l->id, NULL, NULL);
        k++;
    }
    g_rand_free(rng);
    return rc < 0 ? rc : (int)count;
}

/*
 * roads.c — travel times on the road graph (roads.h): the search, snapping,
 * paths, closures, and the graph made from a list of edges.
 *
 * The search is Dijkstra's algorithm backwards from the target over
 * directed edges. dist[d] is the time from the start of directed edge d to
 * the target: seeded on the target's own edge (the part of it before the
 * target point), then dist[e] = ms[e] + dist[d] for each e arriving where d
 * starts, unless the turn e → d is forbidden or e is closed. A source part
 * way along an edge needs the rest of that edge plus what follows, which is
 * dist[d] less the part already behind it.
 */
#include "roads_internal.h"

#include "../core/core.h"
#include "geofence.h"

#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct disp_roads_heap_item {
    int64_t key;
    uint32_t d;
} heap_item;

int64_t disp_roads__ms(double length_m, double speed_kmh)
{
    int64_t ms = llround(length_m / (speed_kmh / 3.6) * 1000.0);
    return ms < 1 ? 1 : ms;
}

/* ---- the queue ----
 *
 * A radix heap: Dijkstra pops times that never decrease, and every time
 * pushed is at least the last one popped, so an item can sit in the bucket
 * of the highest bit where it differs from that last time. Popping empties
 * bucket 0; when it is empty the first non-empty bucket is spread over the
 * lower ones around its smallest time. Each item moves down at most 64
 * times, in practice a few, and every step is a compare and an append. */

static void heap_clear(disp_roads *g)
{
    for (int i = 0; i < ROADS_BUCKETS; i++)
        g->bucket_len[i] = 0;
    g->heap_len = 0;
    g->heap_last = 0;
}

static int bucket_of(int64_t key, int64_t last)
{
    uint64_t x = (uint64_t)key ^ (uint64_t)last;
    return x ? 64 - __builtin_clzll(x) : 0;
}

static void bucket_add(disp_roads *g, int b, heap_item it)
{
    if (g->bucket_len[b] == g->bucket_cap[b]) {
        g->bucket_cap[b] = g->bucket_cap[b] ? 2 * g->bucket_cap[b] : 64;
        g->bucket[b] = g_renew(heap_item, g->bucket[b], g->bucket_cap[b]);
    }
    g->bucket[b][g->bucket_len[b]++] = it;
}

static void heap_push(disp_roads *g, int64_t key, uint32_t d)
{
    bucket_add(g, bucket_of(key, g->heap_last), (heap_item){key, d});
    g->heap_len++;
}

static heap_item heap_pop(disp_roads *g)
{
    if (!g->bucket_len[0]) {
        int b = 1;
        while (!g->bucket_len[b])
            b++;
        heap_item *items = g->bucket[b];
        uint32_t n = g->bucket_len[b];
        int64_t min = items[0].key;
        for (uint32_t i = 1; i < n; i++)
            if (items[i].key < min)
                min = items[i].key;
        g->heap_last = min;
        g->bucket_len[b] = 0;
        for (uint32_t i = 0; i < n; i++)
            bucket_add(g, bucket_of(items[i].key, min), items[i]);
    }
    g->heap_len--;
    return g->bucket[0][--g->bucket_len[0]];
}

/* ---- the search ---- */

static int forbidden(const disp_roads *g, uint32_t from, uint32_t to)
{
    uint64_t k = (uint64_t)from << 32 | to;
    uint32_t lo = 0, hi = g->n_forbidden;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->forbidden[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < g->n_forbidden && g->forbidden[lo] == k;
}

static int64_t dist_of(const disp_roads *g, uint32_t d)
{
    return g->stamp[d] == g->search ? g->dist[d] : DISP_ROADS_UNREACHABLE;
}

static void offer(disp_roads *g, uint32_t d, int64_t t, double m, uint32_t next)
{
    if (g->stamp[d] != g->search) {
        g->stamp[d] = g->search;
        g->settled[d] = 0;
    } else if (t >= g->dist[d]) {
        return;
    }
    g->dist[d] = t;
    if (g->track_m)
        g->dist_m[d] = m;
    g->next[d] = next;
    heap_push(g, t, d);
}

static uint32_t tail_of(const disp_roads *g, uint32_t d)
{
    return d & 1 ? g->eb[d >> 1] : g->ea[d >> 1];
}

static uint32_t head_of(const disp_roads *g, uint32_t d)
{
    return d & 1 ? g->ea[d >> 1] : g->eb[d >> 1];
}

/* Part of directed edge d's time (or length) covered at offset (0..1 from
 * the edge's first node). */
static int64_t part_ms(const disp_roads *g, uint32_t d, double from, double to)
{
    return llround((double)g->ms[d] * (to - from));
}

/* Seeds the search with the target's edge: the time from the start of each
 * of its open directions to the target point. */
static void begin(disp_roads *g)
{
    if (++g->search == 0) { /* wrapped: start the stamps again */
        memset(g->stamp, 0, sizeof *g->stamp * 2 * (size_t)g->n_edges);
        g->search = 1;
    }
    heap_clear(g);
}

#define SEED_TARGET UINT32_MAX     /* next[d]: the target is on d itself */
#define SEED_NODE (UINT32_MAX - 1) /* next[d]: the target is the node d arrives at */

/* The node a position is at (offset 0 or 1), or UINT32_MAX part way along. */
static uint32_t node_of(const disp_roads *g, const disp_roads_pos *p)
{
    return p->offset <= 0 ? g->ea[p->edge] : p->offset >= 1 ? g->eb[p->edge] : UINT32_MAX;
}

static void seed(disp_roads *g, const disp_roads_pos *t)
{
    begin(g);
    uint32_t e = t->edge;
    double len = g->length_m[e];
    if (g->ms[2 * e] != DISP_ROADS_UNREACHABLE)
        offer(g, 2 * e, part_ms(g, 2 * e, 0, t->offset), len * t->offset, SEED_TARGET);
    if (g->ms[2 * e + 1] != DISP_ROADS_UNREACHABLE)
        offer(g, 2 * e + 1, part_ms(g, 2 * e + 1, t->offset, 1), len * (1 - t->offset),
              SEED_TARGET);
    /* A target at a node is reached by arriving there along any edge. */
    uint32_t v = node_of(g, t);
    for (uint32_t i = v == UINT32_MAX ? 0 : g->in_off[v]; v != UINT32_MAX && i < g->in_off[v + 1];
         i++) {
        uint32_t d = g->in[i];
        if (!g->closed[d >> 1])
            offer(g, d, g->ms[d], g->length_m[d >> 1], SEED_NODE);
    }
}

/* Runs the search until every directed edge in want (n of them) is
 * settled, or the graph is exhausted (want NULL: exhaust it). */
static void run(disp_roads *g, const uint32_t *want, size_t n)
{
    /* The wanted edges carry bit 2 of their settled byte for this search;
     * left counts those not settled yet (each once). */
    size_t left = 0;
    for (size_t i = 0; want && i < n; i++) {
        uint32_t d = want[i];
        if (g->stamp[d] != g->search) {
            g->stamp[d] = g->search;
            g->dist[d] = DISP_ROADS_UNREACHABLE;
            g->settled[d] = 0;
        }
        if (!(g->settled[d] & 2)) {
            g->settled[d] |= 2;
            left += !(g->settled[d] & 1);
        }
    }
    if (want && !left)
        return;
    while (g->heap_len) {
        heap_item it = heap_pop(g);
        uint32_t d = it.d;
        if (g->settled[d] & 1 || it.key != g->dist[d])
            continue;
        g->settled[d] |= 1;
        if ((g->settled[d] & 2) && want && --left == 0)
            return;
        uint32_t u = tail_of(g, d);
        for (uint32_t i = g->in_off[u]; i < g->in_off[u + 1]; i++) {
            uint32_t e = g->in[i];
            if (g->closed[e >> 1] || (g->n_forbidden && forbidden(g, e, d)))
                continue;
            if (g->stamp[e] == g->search && (g->settled[e] & 1))
                continue;
            offer(g, e, it.key + g->ms[e], g->track_m ? g->dist_m[d] + g->length_m[e >> 1] : 0, d);
        }
    }
}

/* The best way from source s to the target once the search has settled
 * what it reads: the time and distance; *own, the direction of s's edge
 * driven first (UINT32_MAX: none, the source is at a node and leaves it
 * by another edge), and *next, the directed edge after it (UINT32_MAX:
 * straight along the target's own edge). */
static int64_t answer(disp_roads *g, const disp_roads_pos *s, const disp_roads_pos *t, double *m,
                      uint32_t *own, uint32_t *next)
{
    uint32_t e = s->edge;
    double len = g->length_m[e];
    int64_t best = DISP_ROADS_UNREACHABLE;
    double best_m = -1;
    uint32_t best_own = UINT32_MAX, best_next = UINT32_MAX;
    for (int dir = 0; dir < 2; dir++) {
        uint32_t d = 2 * e + (uint32_t)dir;
        if (g->ms[d] == DISP_ROADS_UNREACHABLE || g->closed[e])
            continue;
        /* Covered already: from the direction's start to the source point. */
        double behind = dir == 0 ? s->offset : 1 - s->offset;
        if (e == t->edge && (dir == 0 ? s->offset <= t->offset : s->offset >= t->offset)) {
            int64_t ms = dir == 0 ? part_ms(g, d, s->offset, t->offset)
                                  : part_ms(g, d, t->offset, s->offset);
            if (ms < best) {
                best = ms;
                best_m = len * fabs(t->offset - s->offset);
                best_own = d;
                best_next = UINT32_MAX;
            }
            continue;
        }
        /* The rest of this edge, then the best allowed turn at its head. */
        uint32_t v = head_of(g, d);
        int64_t rest = part_ms(g, d, behind, 1);
        for (uint32_t i = g->out_off[v]; i < g->out_off[v + 1]; i++) {
            uint32_t f = g->out[i];
            int64_t df = dist_of(g, f);
            if (df == DISP_ROADS_UNREACHABLE || forbidden(g, d, f) || g->closed[f >> 1])
                continue;
            if (rest + df < best) {
                best = rest + df;
                best_m = len * (1 - behind) + g->dist_m[f];
                best_own = d;
                best_next = f;
            }
        }
    }
    /* At a node: any edge out of it, no turn made. */
    uint32_t v = node_of(g, s);
    for (uint32_t i = v == UINT32_MAX ? 0 : g->out_off[v]; v != UINT32_MAX && i < g->out_off[v + 1];
         i++) {
        uint32_t f = g->out[i];
        int64_t df = dist_of(g, f);
        if (df != DISP_ROADS_UNREACHABLE && !g->closed[f >> 1] && df < best) {
            best = df;
            best_m = g->dist_m[f];
            best_own = UINT32_MAX;
            best_next = f;
        }
    }
    if (m)
        *m = best_m;
    if (own)
        *own = best_own;
    if (next)
        *next = best_next;
    return best;
}

/* The directed edges a source's answer reads: those leaving the head of
 * each of its directions, and those leaving its node when it is at one. */
static void wanted(const disp_roads *g, const disp_roads_pos *s, GArray *want)
{
    uint32_t e = s->edge;
    for (int dir = 0; dir < 2; dir++) {
        uint32_t d = 2 * e + (uint32_t)dir;
        if (g->ms[d] == DISP_ROADS_UNREACHABLE)
            continue;
        uint32_t v = head_of(g, d);
        for (uint32_t i = g->out_off[v]; i < g->out_off[v + 1]; i++)
            g_array_append_val(want, g->out[i]);
    }
    uint32_t v = node_of(g, s);
    for (uint32_t i = v == UINT32_MAX ? 0 : g->out_off[v]; v != UINT32_MAX && i < g->out_off[v + 1];
         i++)
        g_array_append_val(want, g->out[i]);
}

void disp_roads_times_to(disp_roads *g, const disp_roads_pos *target, const disp_roads_pos *sources,
                         size_t n, int64_t *ms, double *dist_m)
{
    GArray *want = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        wanted(g, &sources[i], want);
    g->track_m = dist_m != NULL;
    seed(g, target);
    run(g, (const uint32_t *)want->data, want->len);
    for (size_t i = 0; i < n; i++) {
        double m = -1;
        ms[i] = answer(g, &sources[i], target, &m, NULL, NULL);
        if (dist_m)
            dist_m[i] = ms[i] == DISP_ROADS_UNREACHABLE ? -1 : m;
    }
    g_array_free(want, TRUE);
}

void disp_roads_times_from(disp_roads *g, const disp_roads_pos *sources, size_t n, int64_t *node_ms)
{
    /* Here dist[d] is the time to reach the head of directed edge d. */
    g->track_m = 0;
    for (uint32_t v = 0; v < g->n_nodes; v++)
        node_ms[v] = DISP_ROADS_UNREACHABLE;
    begin(g);
    for (size_t i = 0; i < n; i++) {
        uint32_t e = sources[i].edge;
        if (e >= g->n_edges || g->closed[e])
            continue;
        double off = sources[i].offset;
        if (g->ms[2 * e] != DISP_ROADS_UNREACHABLE)
            offer(g, 2 * e, part_ms(g, 2 * e, off, 1), 0, UINT32_MAX);
        if (g->ms[2 * e + 1] != DISP_ROADS_UNREACHABLE)
            offer(g, 2 * e + 1, part_ms(g, 2 * e + 1, 0, off), 0, UINT32_MAX);
        /* At a node: there already, and free to leave by any edge. */
        uint32_t v = node_of(g, &sources[i]);
        if (v == UINT32_MAX)
            continue;
        node_ms[v] = 0;
        for (uint32_t k = g->out_off[v]; k < g->out_off[v + 1]; k++)
            if (!g->closed[g->out[k] >> 1])
                offer(g, g->out[k], g->ms[g->out[k]], 0, UINT32_MAX);
    }
    while (g->heap_len) {
        heap_item it = heap_pop(g);
        uint32_t d = it.d;
        if (g->settled[d] & 1 || it.key != g->dist[d])
            continue;
        g->settled[d] |= 1;
        uint32_t v = head_of(g, d);
        if (it.key < node_ms[v])
            node_ms[v] = it.key;
        for (uint32_t i = g->out_off[v]; i < g->out_off[v + 1]; i++) {
            uint32_t f = g->out[i];
            if (g->closed[f >> 1] || forbidden(g, d, f))
                continue;
            if (g->stamp[f] == g->search && (g->settled[f] & 1))
                continue;
            offer(g, f, it.key + g->ms[f], 0, d);
        }
    }
}

/* Appends the shape of edge e between offsets from and to (either order:
 * reversed when from > to), without repeating the last point added. */
static void add_shape(const disp_roads *g, GArray *out, uint32_t e, double from, double to)
{
    uint32_t a = g->shape_off[e], n = g->shape_off[e + 1] - a;
    const double *p = g->shape + 2 * (size_t)a;
    /* Cumulative lengths along the shape, to place the offsets. */
    double *cum = g_new(double, n);
    cum[0] = 0;
    for (uint32_t i = 1; i < n; i++)
        cum[i] = cum[i - 1] +
                 disp_geofence_distance_m(p[2 * i - 2], p[2 * i - 1], p[2 * i], p[2 * i + 1]);
    double total = cum[n - 1] > 0 ? cum[n - 1] : 1;
    int rev = from > to;
    double lo = (rev ? to : from) * total, hi = (rev ? from : to) * total;
    GArray *pts = g_array_new(FALSE, FALSE, sizeof(double));
    for (uint32_t i = 0; i + 1 < n; i++) {
        double s0 = cum[i], s1 = cum[i + 1];
        if (s1 < lo || s0 > hi)
            continue;
        double seg = s1 - s0 > 0 ? s1 - s0 : 1;
        double f0 = MAX(0, (lo - s0) / seg), f1 = MIN(1, (hi - s0) / seg);
        double x0 = p[2 * i] + (p[2 * i + 2] - p[2 * i]) * f0,
               y0 = p[2 * i + 1] + (p[2 * i + 3] - p[2 * i + 1]) * f0;
        double x1 = p[2 * i] + (p[2 * i + 2] - p[2 * i]) * f1,
               y1 = p[2 * i + 1] + (p[2 * i + 3] - p[2 * i + 1]) * f1;
        if (!pts->len) {
            g_array_append_val(pts, x0);
            g_array_append_val(pts, y0);
        }
        g_array_append_val(pts, x1);
        g_array_append_val(pts, y1);
    }
    g_free(cum);
    const double *q = (const double *)pts->data;
    guint np = pts->len / 2;
    for (guint k = 0; k < np; k++) {
        guint j = rev ? np - 1 - k : k;
        double x = q[2 * j], y = q[2 * j + 1];
        if (out->len >= 2) {
            const double *last = &g_array_index(out, double, out->len - 2);
            if (last[0] == x && last[1] == y)
                continue;
        }
        g_array_append_val(out, x);
        g_array_append_val(out, y);
    }
    g_array_free(pts, TRUE);
}

GArray *disp_roads_path(disp_roads *g, const disp_roads_pos *source, const disp_roads_pos *target,
                        int64_t *ms, double *dist_m)
{
    GArray *want = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    wanted(g, source, want);
    g->track_m = 1;
    seed(g, target);
    run(g, (const uint32_t *)want->data, want->len);
    g_array_free(want, TRUE);
    uint32_t own, f;
    double m;
    int64_t t = answer(g, source, target, &m, &own, &f);
    if (ms)
        *ms = t;
    if (dist_m)
        *dist_m = t == DISP_ROADS_UNREACHABLE ? -1 : m;
    if (t == DISP_ROADS_UNREACHABLE)
        return NULL;
    GArray *out = g_array_new(FALSE, FALSE, sizeof(double));
    if (f == UINT32_MAX) { /* along the target's own edge */
        add_shape(g, out, source->edge, source->offset, target->offset);
        return out;
    }
    /* The rest of the source's edge, then edge after edge to the target. */
    if (own != UINT32_MAX)
        add_shape(g, out, source->edge, source->offset, own & 1 ? 0 : 1);
    for (uint32_t guard = 0; f < SEED_NODE && guard <= 2 * g->n_edges; guard++) {
        uint32_t e = f >> 1;
        double start = f & 1 ? 1 : 0;
        if (g->next[f] == SEED_TARGET) { /* the target's edge: up to the target point */
            add_shape(g, out, e, start, target->offset);
            break;
        }
        add_shape(g, out, e, start, 1 - start);
        f = g->next[f];
    }
    return out;
}

/* ---- snapping ---- */

/* The snapping grid's key of cell column x, row y (in ROADS_CELL_DEG). */
static gsize cell_key(double x, double y)
{
    return (gsize)x | (gsize)y << 24;
}

/* The nearest point of edge e to lon/lat: its offset and distance. */
static double edge_distance(const disp_roads *g, uint32_t e, double lon, double lat, double *offset,
                            double *plon, double *plat)
{
    uint32_t a = g->shape_off[e], n = g->shape_off[e + 1] - a;
    const double *p = g->shape + 2 * (size_t)a;
    double kx = cos(lat * G_PI / 180) * 111320.0, ky = 110540.0;
    double best = INFINITY, at = 0, walked = 0, total = 0;
    for (uint32_t i = 0; i + 1 < n; i++)
        total += disp_geofence_distance_m(p[2 * i], p[2 * i + 1], p[2 * i + 2], p[2 * i + 3]);
    for (uint32_t i = 0; i + 1 < n; i++) {
        double ax = (p[2 * i] - lon) * kx, ay = (p[2 * i + 1] - lat) * ky;
        double bx = (p[2 * i + 2] - lon) * kx, by = (p[2 * i + 3] - lat) * ky;
        double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
        double f = l2 > 0 ? -(ax * dx + ay * dy) / l2 : 0;
        f = f < 0 ? 0 : f > 1 ? 1 : f;
        double cx = ax + f * dx, cy = ay + f * dy, dist = sqrt(cx * cx + cy * cy);
        double seg = disp_geofence_distance_m(p[2 * i], p[2 * i + 1], p[2 * i + 2], p[2 * i + 3]);
        if (dist < best) {
            best = dist;
            at = walked + f * seg;
            *plon = p[2 * i] + f * (p[2 * i + 2] - p[2 * i]);
            *plat = p[2 * i + 1] + f * (p[2 * i + 3] - p[2 * i + 1]);
        }
        walked += seg;
    }
    *offset = total > 0 ? at / total : 0;
    return best;
}

int disp_roads_snap(const disp_roads *g, double lon, double lat, double max_m, disp_roads_pos *out)
{
    if (!isfinite(lon) || !isfinite(lat) || fabs(lat) > 89 || fabs(lon) > 180 || !g->n_edges)
        return CORE_ENOTFOUND;
    double rlat = max_m / 110540.0, rlon = max_m / (111320.0 * cos(lat * G_PI / 180));
    int found = 0;
    out->distance_m = INFINITY;
    for (double y = floor((lat - rlat + 90) / ROADS_CELL_DEG);
         y <= floor((lat + rlat + 90) / ROADS_CELL_DEG); y++)
        for (double x = floor((lon - rlon + 180) / ROADS_CELL_DEG);
             x <= floor((lon + rlon + 180) / ROADS_CELL_DEG); x++) {
            gsize k = cell_key(x, y);
            GArray *c = g_hash_table_lookup(g->cells, GSIZE_TO_POINTER(k));
            for (guint i = 0; c && i < c->len; i++) {
                uint32_t e = g_array_index(c, uint32_t, i);
                if (g->closed[e])
                    continue;
                double off = 0, plon = lon, plat = lat,
                       dist = edge_distance(g, e, lon, lat, &off, &plon, &plat);
                if (dist <= max_m &&
                    (dist < out->distance_m || (dist == out->distance_m && e < out->edge))) {
                    *out = (disp_roads_pos){e, off, plon, plat, dist};
                    found = 1;
                }
            }
        }
    return found ? 0 : CORE_ENOTFOUND;
}

/* ---- closures ---- */

int disp_roads_set_closed(disp_roads *g, int64_t road_id, uint32_t edge, int closed)
{
    int changed = 0;
    if (road_id < 0) {
        if (edge < g->n_edges && g->closed[edge] != !!closed) {
            g->closed[edge] = (uint8_t) !!closed;
            changed = 1;
        }
        return changed;
    }
    for (uint32_t e = 0; e < g->n_edges; e++)
        if (g->road_id[e] == road_id && g->closed[e] != !!closed) {
            g->closed[e] = (uint8_t) !!closed;
            changed++;
        }
    return changed;
}

int disp_roads_is_closed(const disp_roads *g, uint32_t edge)
{
    return edge < g->n_edges && g->closed[edge];
}

/* ---- accessors, export ---- */

uint32_t disp_roads_node_count(const disp_roads *g)
{
    return g->n_nodes;
}

uint32_t disp_roads_edge_count(const disp_roads *g)
{
    return g->n_edges;
}

uint32_t disp_roads_restriction_count(const disp_roads *g)
{
    return g->n_restrictions;
}

size_t disp_roads_memory(const disp_roads *g)
{
    size_t n = g->n_nodes, e = g->n_edges, shape = g->shape_off[e];
    size_t bytes = n * 2 * sizeof(double) +
                   e * (2 * sizeof(uint32_t) + 2 * sizeof(int64_t) + sizeof(double) +
                        sizeof(int64_t) + 1 + sizeof(uint32_t)) +
                   shape * 2 * sizeof(double) + (n + 1) * 2 * sizeof(uint32_t) +
                   4 * e * sizeof(uint32_t) + g->n_forbidden * sizeof(uint64_t);
    /* Scratch per directed edge: time, metres, next, stamp, settled. */
    bytes += 2 * e * (sizeof(int64_t) + sizeof(double) + 2 * sizeof(uint32_t) + 1);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, g->cells);
    while (g_hash_table_iter_next(&it, NULL, &v))
        bytes += 48 + ((GArray *)v)->len * sizeof(uint32_t);
    return bytes;
}

void disp_roads_edge(const disp_roads *g, uint32_t edge, disp_roads_edge_info *out)
{
    out->a = g->ea[edge];
    out->b = g->eb[edge];
    out->forward_ms = g->ms[2 * edge];
    out->backward_ms = g->ms[2 * edge + 1];
    out->length_m = g->length_m[edge];
    out->road_id = g->road_id[edge];
}

void disp_roads_node(const disp_roads *g, uint32_t node, double *lon, double *lat)
{
    *lon = g->node_lonlat[2 * node];
    *lat = g->node_lonlat[2 * node + 1];
}

GArray *disp_roads_edge_shape(const disp_roads *g, uint32_t edge)
{
    uint32_t a = g->shape_off[edge], n = g->shape_off[edge + 1] - a;
    GArray *out = g_array_sized_new(FALSE, FALSE, sizeof(double), 2 * n);
    g_array_append_vals(out, g->shape + 2 * (size_t)a, 2 * n);
    return out;
}

json_t *disp_roads_geojson_line(const GArray *pts)
{
    json_t *coords = json_array();
    for (guint i = 0; i + 1 < pts->len; i += 2)
        json_array_append_new(coords,
                              json_pack("[ff]", round(g_array_index(pts, double, i) * 1e7) / 1e7,
                                        round(g_array_index(pts, double, i + 1) * 1e7) / 1e7));
    return json_pack("{ssso}", "type", "LineString", "coordinates", coords);
}

int disp_roads_export_csv(const disp_roads *g, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return CORE_EIO;
    fprintf(f, "id,source,target,cost,reverse_cost,x1,y1,x2,y2\n");
    for (uint32_t e = 0; e < g->n_edges; e++) {
        int64_t fw = g->closed[e] ? DISP_ROADS_UNREACHABLE : g->ms[2 * e],
                bw = g->closed[e] ? DISP_ROADS_UNREACHABLE : g->ms[2 * e + 1];
        char c1[32], c2[32];
        if (fw == DISP_ROADS_UNREACHABLE)
            g_strlcpy(c1, "-1", sizeof c1);
        else
            g_snprintf(c1, sizeof c1, "%" G_GINT64_FORMAT ".%03d", fw / 1000, (int)(fw % 1000));
        if (bw == DISP_ROADS_UNREACHABLE)
            g_strlcpy(c2, "-1", sizeof c2);
        else
            g_snprintf(c2, sizeof c2, "%" G_GINT64_FORMAT ".%03d", bw / 1000, (int)(bw % 1000));
        const double *a = g->node_lonlat + 2 * (size_t)g->ea[e],
                     *b = g->node_lonlat + 2 * (size_t)g->eb[e];
        fprintf(f, "%u,%u,%u,%s,%s,%.7f,%.7f,%.7f,%.7f\n", e + 1, g->ea[e] + 1, g->eb[e] + 1, c1,
                c2, a[0], a[1], b[0], b[1]);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return CORE_EIO;
    return 0;
}

/* ---- making and freeing ---- */

void disp_roads__forbid(disp_roads *g, GArray *turns, uint32_t from, uint32_t to)
{
    (void)g;
    uint64_t k = (uint64_t)from << 32 | to;
    g_array_append_val(turns, k);
}

static int cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void disp_roads__sort_turns(disp_roads *g, GArray *turns)
{
    g_array_sort(turns, cmp_u64);
    guint w = 0;
    for (guint i = 0; i < turns->len; i++)
        if (!w || g_array_index(turns, uint64_t, i) != g_array_index(turns, uint64_t, w - 1))
            g_array_index(turns, uint64_t, w++) = g_array_index(turns, uint64_t, i);
    g_free(g->forbidden);
    g->n_forbidden = w;
    g->forbidden = g_memdup2(turns->data, (gsize)w * sizeof(uint64_t));
}

void disp_roads__finish(disp_roads *g)
{
    uint32_t n = g->n_nodes, m = g->n_edges;
    g->out_off = g_new0(uint32_t, n + 1);
    g->in_off = g_new0(uint32_t, n + 1);
    for (uint32_t d = 0; d < 2 * m; d++) {
        if (g->ms[d] == DISP_ROADS_UNREACHABLE)
            continue;
        g->out_off[tail_of(g, d) + 1]++;
        g->in_off[head_of(g, d) + 1]++;
    }
    for (uint32_t i = 0; i < n; i++) {
        g->out_off[i + 1] += g->out_off[i];
        g->in_off[i + 1] += g->in_off[i];
    }
    g->out = g_new(uint32_t, g->out_off[n] + 1);
    g->in = g_new(uint32_t, g->in_off[n] + 1);
    uint32_t *fo = g_memdup2(g->out_off, sizeof(uint32_t) * (n + 1)),
             *fi = g_memdup2(g->in_off, sizeof(uint32_t) * (n + 1));
    for (uint32_t d = 0; d < 2 * m; d++) {
        if (g->ms[d] == DISP_ROADS_UNREACHABLE)
            continue;
        g->out[fo[tail_of(g, d)]++] = d;
        g->in[fi[head_of(g, d)]++] = d;
    }
    g_free(fo);
    g_free(fi);
    if (!g->closed)
        g->closed = g_new0(uint8_t, m);
    g->cells =
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)g_array_unref);
    for (uint32_t e = 0; e < m; e++) {
        double w = 180, s = 90, ea = -180, no = -90;
        for (uint32_t i = g->shape_off[e]; i < g->shape_off[e + 1]; i++) {
            w = MIN(w, g->shape[2 * i]);
            ea = MAX(ea, g->shape[2 * i]);
            s = MIN(s, g->shape[2 * i + 1]);
            no = MAX(no, g->shape[2 * i + 1]);
        }
        for (double y = floor((s + 90) / ROADS_CELL_DEG); y <= floor((no + 90) / ROADS_CELL_DEG);
             y++)
            for (double x = floor((w + 180) / ROADS_CELL_DEG);
                 x <= floor((ea + 180) / ROADS_CELL_DEG); x++) {
                gsize k = cell_key(x, y);
                GArray *c = g_hash_table_lookup(g->cells, GSIZE_TO_POINTER(k));
                if (!c) {
                    c = g_array_new(FALSE, FALSE, sizeof(uint32_t));
                    g_hash_table_insert(g->cells, GSIZE_TO_POINTER(k), c);
                }
                g_array_append_val(c, e);
            }
    }
    g->dist = g_new(int64_t, 2 * (size_t)m + 1);
    g->dist_m = g_new(double, 2 * (size_t)m + 1);
    g->next = g_new(uint32_t, 2 * (size_t)m + 1);
    g->stamp = g_new0(uint32_t, 2 * (size_t)m + 1);
    g->settled = g_new0(uint8_t, 2 * (size_t)m + 1);
}

disp_roads *disp_roads_from_edges(const double *lonlat, uint32_t n_nodes,
                                  const disp_roads_edge_spec *edges, size_t n_edges, char **err)
{
    for (size_t i = 0; i < n_edges; i++) {
        const disp_roads_edge_spec *s = &edges[i];
        if (s->a >= n_nodes || s->b >= n_nodes || !(s->length_m > 0) || !(s->speed_kmh > 0)) {
            *err = g_strdup_printf("edge %zu: nodes must be below %u and length and speed positive",
                                   i, n_nodes);
            return NULL;
        }
    }
    disp_roads *g = g_new0(disp_roads, 1);
    g->n_nodes = n_nodes;
    g->n_edges = (uint32_t)n_edges;
    g->node_lonlat = g_memdup2(lonlat, sizeof(double) * 2 * (size_t)n_nodes);
    g->ea = g_new(uint32_t, n_edges + 1);
    g->eb = g_new(uint32_t, n_edges + 1);
    g->ms = g_new(int64_t, 2 * n_edges + 1);
    g->length_m = g_new(double, n_edges + 1);
    g->road_id = g_new(int64_t, n_edges + 1);
    g->shape_off = g_new(uint32_t, n_edges + 1);
    g->shape = g_new(double, 4 * n_edges + 1);
    for (size_t i = 0; i < n_edges; i++) {
        const disp_roads_edge_spec *s = &edges[i];
        g->ea[i] = s->a;
        g->eb[i] = s->b;
        g->length_m[i] = s->length_m;
        g->road_id[i] = s->road_id;
        g->ms[2 * i] = disp_roads__ms(s->length_m, s->speed_kmh);
        g->ms[2 * i + 1] = s->oneway ? DISP_ROADS_UNREACHABLE : g->ms[2 * i];
        g->shape_off[i] = (uint32_t)(2 * i);
        memcpy(g->shape + 4 * i, lonlat + 2 * (size_t)s->a, 2 * sizeof(double));
        memcpy(g->shape + 4 * i + 2, lonlat + 2 * (size_t)s->b, 2 * sizeof(double));
    }
    g->shape_off[n_edges] = (uint32_t)(2 * n_edges);
    disp_roads__finish(g);
    return g;
}

int disp_roads_forbid_turn(disp_roads *g, uint32_t a, uint32_t via, uint32_t b)
{
    uint32_t from = UINT32_MAX, to = UINT32_MAX;
    if (via >= g->n_nodes)
        return CORE_ENOTFOUND;
    for (uint32_t i = g->in_off[via]; i < g->in_off[via + 1]; i++)
        if (tail_of(g, g->in[i]) == a)
            from = g->in[i];
    for (uint32_t i = g->out_off[via]; i < g->out_off[via + 1]; i++)
        if (head_of(g, g->out[i]) == b)
            to = g->out[i];
    if (from == UINT32_MAX || to == UINT32_MAX)
        return CORE_ENOTFOUND;
    GArray *turns = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    g_array_append_vals(turns, g->forbidden, g->n_forbidden);
    disp_roads__forbid(g, turns, from, to);
    disp_roads__sort_turns(g, turns);
    g_array_free(turns, TRUE);
    g->n_restrictions++;
    return 0;
}

void disp_roads_free(disp_roads *g)
{
    if (!g)
        return;
    g_free(g->node_lonlat);
    g_free(g->ea);
    g_free(g->eb);
    g_free(g->ms);
    g_free(g->length_m);
    g_free(g->road_id);
    g_free(g->closed);
    g_free(g->shape_off);
    g_free(g->shape);
    g_free(g->out_off);
    g_free(g->out);
    g_free(g->in_off);
    g_free(g->in);
    g_free(g->forbidden);
    if (g->cells)
        g_hash_table_destroy(g->cells);
    g_free(g->dist);
    g_free(g->dist_m);
    g_free(g->next);
    g_free(g->stamp);
    g_free(g->settled);
    for (int i = 0; i < ROADS_BUCKETS; i++)
        g_free(g->bucket[i]);
    g_free(g);
}

/*
 * pipes_iso.c — isolating a burst: the valves to close, what is shut off,
 * what goes dry, who loses supply, and the order a crew works through.
 *
 * Work happens on the segment graph (segments as vertices, bounding valves
 * as edges; pipes_net.c), never on single pipes:
 *   1. From the burst link's segment, a breadth-first search crosses every
 *      bounding valve that cannot close (inoperable, or failed in this
 *      query). The segments reached are shut off; the closable valves on
 *      their boundary are the ones to close, the closed ones need nothing.
 *   2. Supply before the closures (hops from the nearest source segment,
 *      valves as they are) is cached until a valve or the network changes.
 *      After the closures only segments next to the shut-off area can lose
 *      supply first: from each, a best-first search towards the sources
 *      (by those hops), never entering the shut-off area, stops at the
 *      first source or supplied segment; one that runs out has found a dry
 *      part (the unintended isolation) and lists it. With other work's
 *      closures given, both are plain walks of the whole segment graph.
 *   3. Totals come from the per-segment sums; customers from the
 *      per-segment lists.
 * Each step is linear in the segments and valves it touches, so a query
 * costs what its answer holds plus the way to a source
 * (docs/BENCHMARKS.md), not what the network holds.
 *
 * Several queries at once (planned works overlapping in time) are the same
 * search with every query's seed and closures together.
 *
 * Crew order: the valves whose far side still has supply (they hold the
 * water back from the burst) first, then the rest; within each group the
 * nearest valve next, starting where the crew starts.
 */
#include "pipes_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { EFF_OPEN, EFF_CLOSED, EFF_STUCK };

typedef struct {
    unsigned char *vflag; /* per valve: 1 failed, 2 closed by other work, 4 to close */
    int iso_stamp, reach_stamp;
} iso_ctx;

static int eff_state(const gis_pipenet *n, const iso_ctx *c, int v)
{
    const gis_pipe_valve *va = &g_array_index(n->valves, gis_pipe_valve, v);
    if (c->vflag[v] & 1 || va->state == GIS_VALVE_INOPERABLE)
        return EFF_STUCK;
    if (c->vflag[v] & 2 || va->state == GIS_VALVE_CLOSED)
        return EFF_CLOSED;
    return EFF_OPEN;
}

static int valve_other(const gis_pipenet *n, int v, int s)
{
    const gis_pipe_valve *va = &g_array_index(n->valves, gis_pipe_valve, v);
    int a = n->seg[n->nodes->len + va->link], b = n->seg[va->node];
    return a == s ? b : a;
}

#define SEG_VALVES(n, s)                                                                           \
    for (int k_ = (n)->seg_valve_off[s], v;                                                        \
         k_ < (n)->seg_valve_off[(s) + 1] && ((v = g_array_index((n)->seg_valves, int, k_)), 1);   \
         k_++)

/* Step 1 for one seed segment: marks shut-off segments with iso_stamp. */
static void grow(gis_pipenet *n, iso_ctx *c, int s0, gis_iso_result *r)
{
    GArray *q = n->queue;
    if (n->mark[s0] == c->iso_stamp)
        return;
    n->mark[s0] = c->iso_stamp;
    g_array_append_val(r->isolated, s0);
    g_array_set_size(q, 0);
    g_array_append_val(q, s0);
    for (guint h = 0; h < q->len; h++) {
        int s = g_array_index(q, int, h);
        SEG_VALVES(n, s)
        {
            int o = valve_other(n, v, s);
            if (n->mark[o] == c->iso_stamp || eff_state(n, c, v) != EFF_STUCK)
                continue;
            n->mark[o] = c->iso_stamp;
            g_array_append_val(r->isolated, o);
            g_array_append_val(r->passed, v);
            g_array_append_val(q, o);
        }
    }
}

/* Segments reachable from a source across valves that are open (not
 * closed, not to be closed), avoiding segments marked with avoid_stamp
 * (0: none); marks them in mark2 with stamp. Returns whether any source
 * exists. */
static int reach(gis_pipenet *n, const iso_ctx *c, int avoid_stamp, int stamp)
{
    GArray *q = n->queue;
    g_array_set_size(q, 0);
    int any = 0;
    for (size_t s = 0; s < n->nseg; s++) {
        if (!n->tot[s].has_source)
            continue;
        any = 1;
        if ((avoid_stamp && n->mark[s] == avoid_stamp) || n->mark2[s] == stamp)
            continue;
        n->mark2[s] = stamp;
        int si = (int)s;
        g_array_append_val(q, si);
    }
    for (guint h = 0; h < q->len; h++) {
        int s = g_array_index(q, int, h);
        SEG_VALVES(n, s)
        {
            if (c->vflag[v] & 4 || eff_state(n, c, v) == EFF_CLOSED)
                continue;
            int o = valve_other(n, v, s);
            if (n->mark2[o] == stamp || (avoid_stamp && n->mark[o] == avoid_stamp))
                continue;
            n->mark2[o] = stamp;
            g_array_append_val(q, o);
        }
    }
    return any;
}

/* Stamps mark segments per query; a query takes at most a few. */
static int next_stamp(gis_pipenet *n)
{
    return ++n->stamp;
}

/* Clears the marks before the stamps could wrap (once in ~500 million queries). */
static void stamps_room(gis_pipenet *n)
{
    if (n->stamp < INT_MAX - 16)
        return;
    memset(n->mark, 0, n->nseg * sizeof *n->mark);
    memset(n->mark2, 0, n->nseg * sizeof *n->mark2);
    n->stamp = 0;
}

/* Orders r->close: feeding valves first, nearest next within each group. */
/* Beyond this many valves the nearest-next walk (quadratic) gives way to
 * a walk along a Z-order curve: a few hundred valves is a whole district
 * shut; more is a network whose valves cannot contain a burst. */
#define ORDER_NEAREST_MAX 256

typedef struct {
    guint64 key; /* feeds first, then the Z-order of the position */
    int valve;
} zkey;

static gint zkey_cmp(gconstpointer a, gconstpointer b)
{
    const zkey *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : x->valve - y->valve;
}

static guint64 spread(guint32 v)
{
    guint64 x = v;
    x = (x | x << 16) & 0x0000ffff0000ffffull;
    x = (x | x << 8) & 0x00ff00ff00ff00ffull;
    x = (x | x << 4) & 0x0f0f0f0f0f0f0f0full;
    x = (x | x << 2) & 0x3333333333333333ull;
    return (x | x << 1) & 0x5555555555555555ull;
}

static void order_zcurve(const gis_pipenet *n, const unsigned char *feeds, GArray *close)
{
    double b[4];
    gis_pipenet_bbox(n, b);
    double w = fmax(b[2] - b[0], 1e-12), h = fmax(b[3] - b[1], 1e-12);
    zkey *k = g_new(zkey, close->len + 1);
    for (guint i = 0; i < close->len; i++) {
        const gis_pipe_valve *va =
            &g_array_index(n->valves, gis_pipe_valve, g_array_index(close, int, i));
        guint32 zx = (guint32)(fmin(fmax((va->x - b[0]) / w, 0), 1) * 1073741823.0);
        guint32 zy = (guint32)(fmin(fmax((va->y - b[1]) / h, 0), 1) * 1073741823.0);
        k[i].key = (guint64)!feeds[i] << 62 | spread(zx) | spread(zy) << 1;
        k[i].valve = g_array_index(close, int, i);
    }
    qsort(k, close->len, sizeof *k, zkey_cmp);
    for (guint i = 0; i < close->len; i++)
        g_array_index(close, int, i) = k[i].valve;
    g_free(k);
}

static void order_valves(const gis_pipenet *n, const unsigned char *feeds, double x, double y,
                         GArray *close)
{
    guint m = close->len;
    if (m > ORDER_NEAREST_MAX) {
        order_zcurve(n, feeds, close);
        return;
    }
    int *v = g_memdup2(close->data, m * sizeof(int));
    unsigned char *done = g_new0(unsigned char, m);
    g_array_set_size(close, 0);
    for (int pass = 1; pass >= 0; pass--)
        for (;;) {
            int best = -1;
            double bd = INFINITY;
            for (guint i = 0; i < m; i++) {
                if (done[i] || feeds[i] != pass)
                    continue;
                const gis_pipe_valve *va = &g_array_index(n->valves, gis_pipe_valve, v[i]);
                double dx = (va->x - x) * n->kx, dy = (va->y - y) * n->ky;
                double d = dx * dx + dy * dy; /* squared: only compared */
                if (d < bd || (d == bd && best >= 0 && v[i] < v[best]))
                    bd = d, best = (int)i;
            }
            if (best < 0)
                break;
            done[best] = 1;
            g_array_append_val(close, v[best]);
            const gis_pipe_valve *va = &g_array_index(n->valves, gis_pipe_valve, v[best]);
            x = va->x, y = va->y;
        }
    g_free(v);
    g_free(done);
}

static void result_init(gis_iso_result *r)
{
    memset(r, 0, sizeof *r);
    r->close = g_array_new(FALSE, FALSE, sizeof(int));
    r->already_closed = g_array_new(FALSE, FALSE, sizeof(int));
    r->passed = g_array_new(FALSE, FALSE, sizeof(int));
    r->isolated = g_array_new(FALSE, FALSE, sizeof(int));
    r->dry = g_array_new(FALSE, FALSE, sizeof(int));
}

void gis_iso_result_clear(gis_iso_result *r)
{
    if (!r || !r->close)
        return;
    g_array_free(r->close, TRUE);
    g_array_free(r->already_closed, TRUE);
    g_array_free(r->passed, TRUE);
    g_array_free(r->isolated, TRUE);
    g_array_free(r->dry, TRUE);
    memset(r, 0, sizeof *r);
}

static void add_totals(const pipes__seg_total *t, gis_iso_result *r, int dry)
{
    if (dry) {
        r->dry_links += t->links, r->dry_nodes += t->nodes, r->dry_length_m += t->length_m;
    } else {
        r->isolated_links += t->links, r->isolated_nodes += t->nodes;
        r->isolated_length_m += t->length_m, r->isolated_volume_m3 += t->volume_m3;
    }
    r->customers += t->customers, r->customer_units += t->units;
    r->priority_customers += t->priority;
}

/* The cached supply with the valves as they are: hops from the nearest
 * source segment across valves that are not closed (pipes_internal.h). */
static int baseline(gis_pipenet *n)
{
    if (n->base_valid)
        return n->base_any;
    GArray *q = n->queue;
    g_array_set_size(q, 0);
    n->base_any = 0;
    for (size_t s = 0; s < n->nseg; s++) {
        n->base_dist[s] = INT_MAX;
        if (n->tot[s].has_source) {
            int si = (int)s;
            n->base_dist[s] = 0;
            n->base_any = 1;
            g_array_append_val(q, si);
        }
    }
    for (guint h = 0; h < q->len; h++) {
        int s = g_array_index(q, int, h);
        SEG_VALVES(n, s)
        {
            if (g_array_index(n->valves, gis_pipe_valve, v).state == GIS_VALVE_CLOSED)
                continue;
            int o = valve_other(n, v, s);
            if (n->base_dist[o] != INT_MAX)
                continue;
            n->base_dist[o] = n->base_dist[s] + 1;
            g_array_append_val(q, o);
        }
    }
    n->base_valid = 1;
    return n->base_any;
}

static void heap_push(GArray *h, guint64 key)
{
    g_array_append_val(h, key);
    guint i = h->len - 1;
    guint64 *a = (guint64 *)h->data;
    while (i > 0 && a[(i - 1) / 2] > a[i]) {
        guint64 t = a[i];
        a[i] = a[(i - 1) / 2], a[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static guint64 heap_pop(GArray *h)
{
    guint64 *a = (guint64 *)h->data, top = a[0];
    a[0] = a[h->len - 1];
    g_array_set_size(h, h->len - 1);
    a = (guint64 *)h->data;
    for (guint i = 0;;) {
        guint l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->len && a[l] < a[m])
            m = l;
        if (r < h->len && a[r] < a[m])
            m = r;
        if (m == i)
            break;
        guint64 t = a[i];
        a[i] = a[m], a[m] = t;
        i = m;
    }
    return top;
}

/* After the closures, is segment o (outside the shut-off area, supplied
 * before) still supplied? A best-first search from o towards the sources
 * (by the cached hops) that never enters the shut-off area: everything it
 * explores is connected to o, so all of it is supplied when it meets a
 * source or a segment already known to be supplied, and all of it is dry
 * when it runs out. Marks the explored segments in mark2 with sup (supplied)
 * or dry, and lists the dry ones. Costs what it explores: the way to a
 * source, or the dry part itself. */
static void classify(gis_pipenet *n, const iso_ctx *c, int o, int sup, int dry, gis_iso_result *r)
{
    GArray *seen = n->queue, *h = n->heap;
    g_array_set_size(seen, 0);
    g_array_set_size(h, 0);
    int explore = dry - 1; /* a third stamp: explored by this search, not yet classified */
    n->mark2[o] = explore;
    g_array_append_val(seen, o);
    heap_push(h, (guint64)(guint)n->base_dist[o] << 32 | (guint)o);
    int found = 0;
    while (h->len && !found) {
        int s = (int)(heap_pop(h) & 0xffffffffu);
        if (n->tot[s].has_source) {
            found = 1;
            break;
        }
        SEG_VALVES(n, s)
        {
            if (eff_state(n, c, v) == EFF_CLOSED)
                continue;
            int x = valve_other(n, v, s);
            if (n->mark[x] == c->iso_stamp || n->mark2[x] == explore)
                continue;
            if (n->mark2[x] == sup) {
                found = 1;
                break;
            }
            n->mark2[x] = explore;
            g_array_append_val(seen, x);
            heap_push(h, (guint64)(guint)n->base_dist[x] << 32 | (guint)x);
        }
    }
    for (guint k = 0; k < seen->len; k++) {
        int s = g_array_index(seen, int, k);
        n->mark2[s] = found ? sup : dry;
        if (!found) {
            g_array_append_val(r->dry, s);
            add_totals(&n->tot[s], r, 1);
        }
    }
}

int gis_pipes_isolate_many(gis_pipenet *n, const gis_iso_query *qs, size_t nq, gis_iso_result *r)
{
    result_init(r);
    if (!n->finished || nq == 0)
        return CORE_EINVAL;
    for (size_t i = 0; i < nq; i++) {
        if (qs[i].link < 0 || (size_t)qs[i].link >= n->links->len)
            return CORE_ENOTFOUND;
        if (n->seg[n->nodes->len + (size_t)qs[i].link] < 0)
            return CORE_EINVAL;
    }
    stamps_room(n);
    iso_ctx c = {g_new0(unsigned char, n->valves->len + 1), 0, 0};
    for (size_t i = 0; i < nq; i++) {
        for (size_t k = 0; k < qs[i].n_failed; k++)
            if (qs[i].failed[k] >= 0 && (guint)qs[i].failed[k] < n->valves->len)
                c.vflag[qs[i].failed[k]] |= 1;
        for (size_t k = 0; k < qs[i].n_closed; k++)
            if (qs[i].closed[k] >= 0 && (guint)qs[i].closed[k] < n->valves->len)
                c.vflag[qs[i].closed[k]] |= 2;
    }
    /* Before: supply with the valves as they are; with other work's
     * closures, a walk of the whole segment graph. */
    int extra = 0;
    for (size_t i = 0; i < nq; i++)
        extra |= qs[i].n_closed > 0;
    int before = next_stamp(n), any_source;
    unsigned char *had = NULL;
    if (extra) {
        any_source = reach(n, &c, 0, before);
        had = g_new0(unsigned char, n->nseg + 1);
        for (size_t s = 0; s < n->nseg; s++)
            had[s] = n->mark2[s] == before;
    } else {
        any_source = baseline(n);
    }

    c.iso_stamp = next_stamp(n);
    for (size_t i = 0; i < nq; i++)
        grow(n, &c, n->seg[n->nodes->len + (size_t)qs[i].link], r);
    for (guint i = 0; i < r->isolated->len; i++) {
        int s = g_array_index(r->isolated, int, i);
        add_totals(&n->tot[s], r, 0);
        SEG_VALVES(n, s)
        {
            int o = valve_other(n, v, s);
            if (n->mark[o] == c.iso_stamp)
                continue;
            int st = eff_state(n, &c, v);
            if (st == EFF_OPEN && !(c.vflag[v] & 4)) {
                c.vflag[v] |= 4;
                g_array_append_val(r->close, v);
            } else if (st == EFF_CLOSED) {
                g_array_append_val(r->already_closed, v);
            }
        }
    }
    /* After: what the closures leave with supply. */
    r->no_source = !any_source;
    int after;
    if (extra) {
        after = next_stamp(n);
        reach(n, &c, c.iso_stamp, after);
        for (size_t s = 0; any_source && s < n->nseg; s++)
            if (had[s] && n->mark2[s] != after && n->mark[s] != c.iso_stamp) {
                int si = (int)s;
                g_array_append_val(r->dry, si);
                add_totals(&n->tot[s], r, 1);
            }
    } else {
        /* Only segments next to the shut-off area can lose supply first;
         * the rest of what goes dry is found from them. */
        next_stamp(n); /* the search's own stamp */
        int dry = next_stamp(n);
        after = next_stamp(n);
        for (guint i = 0; any_source && i < r->isolated->len; i++) {
            int s = g_array_index(r->isolated, int, i);
            SEG_VALVES(n, s)
            {
                int o = valve_other(n, v, s);
                if (n->mark[o] != c.iso_stamp && n->base_dist[o] != INT_MAX &&
                    n->mark2[o] != after && n->mark2[o] != dry)
                    classify(n, &c, o, after, dry, r);
            }
        }
    }
    unsigned char *feeds = g_new0(unsigned char, r->close->len + 1);
    for (guint i = 0; i < r->close->len; i++) {
        int v = g_array_index(r->close, int, i);
        const gis_pipe_valve *va = &g_array_index(n->valves, gis_pipe_valve, v);
        int a = n->seg[n->nodes->len + va->link], b = n->seg[va->node];
        int outside = n->mark[a] == c.iso_stamp ? b : a;
        feeds[i] = n->mark2[outside] == after;
    }
    double x = qs[0].at_x, y = qs[0].at_y;
    if (!isfinite(x) || !isfinite(y)) {
        const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, qs[0].link);
        x = (l->xy[0] + l->xy[2 * l->nvert - 2]) / 2, y = (l->xy[1] + l->xy[2 * l->nvert - 1]) / 2;
    }
    order_valves(n, feeds, x, y, r->close);
    g_free(feeds);
    g_free(had);
    g_free(c.vflag);
    return 0;
}

int gis_pipes_isolate(gis_pipenet *n, const gis_iso_query *q, gis_iso_result *r)
{
    return gis_pipes_isolate_many(n, q, 1, r);
}

/* ---- answers as JSON ---- */

static json_t *point(double x, double y)
{
    return json_pack("[f,f]", x, y);
}

static json_t *valve_json(const gis_pipenet *n, int v)
{
    const gis_pipe_valve *va = &g_array_index(n->valves, gis_pipe_valve, v);
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", va->id, "link",
                     g_array_index(n->links, gis_pipe_link, va->link).id, "node",
                     g_array_index(n->nodes, gis_pipe_node, va->node).id, "state",
                     gis_valve_state_name(va->state), "position", point(va->x, va->y));
}

/* The ids of the nodes and links of some segments, and their lines. */
static json_t *part_json(const gis_pipenet *n, const GArray *segs, int detail)
{
    json_t *nodes = json_array(), *links = json_array(), *lines = json_array();
    json_t *segments = json_array();
    int nn = (int)n->nodes->len;
    for (guint i = 0; i < segs->len; i++) {
        int s = g_array_index(segs, int, i);
        json_array_append_new(segments, json_integer(s));
        for (int k = n->seg_elem_off[s]; k < n->seg_elem_off[s + 1]; k++) {
            int e = g_array_index(n->seg_elem, int, k);
            if (e < nn) {
                json_array_append_new(nodes,
                                      json_string(g_array_index(n->nodes, gis_pipe_node, e).id));
                continue;
            }
            const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, e - nn);
            json_array_append_new(links, json_string(l->id));
            if (!detail)
                continue;
            json_t *line = json_array();
            for (size_t v = 0; v < l->nvert; v++)
                json_array_append_new(line, point(l->xy[2 * v], l->xy[2 * v + 1]));
            json_array_append_new(lines, line);
        }
    }
    json_t *o = json_pack("{s:o, s:o, s:o}", "segments", segments, "nodes", nodes, "links", links);
    if (detail)
        json_object_set_new(
            o, "geometry",
            json_pack("{s:s, s:o}", "type", "MultiLineString", "coordinates", lines));
    else
        json_decref(lines);
    return o;
}

void gis_iso_result_customers(const gis_pipenet *n, const gis_iso_result *r, GArray *out)
{
    const GArray *parts[2] = {r->isolated, r->dry};
    for (int p = 0; p < 2; p++)
        for (guint i = 0; i < parts[p]->len; i++) {
            int s = g_array_index(parts[p], int, i);
            for (int k = n->seg_cust_off[s]; k < n->seg_cust_off[s + 1]; k++)
                g_array_append_val(out, g_array_index(n->seg_cust, int, k));
        }
}

static json_t *customers_json(const gis_pipenet *n, const gis_iso_result *r, int detail, size_t max)
{
    GArray *all = g_array_new(FALSE, FALSE, sizeof(int));
    gis_iso_result_customers(n, r, all);
    unsigned char *dry = g_new0(unsigned char, n->nseg + 1);
    for (guint i = 0; i < r->dry->len; i++)
        dry[g_array_index(r->dry, int, i)] = 1;
    json_t *by_kind = json_object(), *prio = json_array(), *list = json_array();
    for (guint i = 0; i < all->len; i++) {
        const gis_pipe_customer *cu =
            &g_array_index(n->customers, gis_pipe_customer, g_array_index(all, int, i));
        json_t *k = json_object_get(by_kind, cu->kind);
        json_object_set_new(by_kind, cu->kind, json_integer((k ? json_integer_value(k) : 0) + 1));
        int e = cu->link >= 0 ? (int)n->nodes->len + cu->link : cu->node;
        int is_dry = dry[n->seg[e]];
        if (cu->priority || (detail && json_array_size(list) < max)) {
            json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:o, s:b}", "id", cu->id, "name", cu->name,
                                  "kind", cu->kind, "units", cu->units, "position",
                                  point(cu->x, cu->y), "dry", is_dry);
            if (cu->priority)
                json_array_append(prio, o);
            if (detail && json_array_size(list) < max)
                json_array_append(list, o);
            json_decref(o);
        }
    }
    g_free(dry);
    g_array_free(all, TRUE);
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:o, s:o}", "count", (json_int_t)r->customers, "units",
                  (json_int_t)r->customer_units, "priority", (json_int_t)r->priority_customers,
                  "by_kind", by_kind, "priority_list", prio);
    if (detail)
        json_object_set_new(o, "list", list);
    else
        json_decref(list);
    return o;
}

json_t *gis_iso_result_json(const gis_pipenet *n, const gis_iso_result *r, int detail,
                            size_t max_customers)
{
    json_t *close = json_array(), *already = json_array(), *passed = json_array();
    double px = NAN, py = NAN;
    for (guint i = 0; i < r->close->len; i++) {
        int v = g_array_index(r->close, int, i);
        json_t *o = valve_json(n, v);
        const gis_pipe_valve *va = &g_array_index(n->valves, gis_pipe_valve, v);
        json_object_set_new(o, "order", json_integer(i + 1));
        if (isfinite(px))
            json_object_set_new(o, "from_previous_m",
                                json_real(round(gis_pipenet_distance(n, px, py, va->x, va->y))));
        px = va->x, py = va->y;
        json_array_append_new(close, o);
    }
    for (guint i = 0; i < r->already_closed->len; i++)
        json_array_append_new(already, valve_json(n, g_array_index(r->already_closed, int, i)));
    for (guint i = 0; i < r->passed->len; i++)
        json_array_append_new(passed, valve_json(n, g_array_index(r->passed, int, i)));
    json_t *iso = part_json(n, r->isolated, detail);
    json_object_set_new(iso, "length_m", json_real(round(r->isolated_length_m * 10) / 10));
    json_object_set_new(iso, "volume_m3", json_real(round(r->isolated_volume_m3 * 10) / 10));
    json_t *dry = part_json(n, r->dry, detail);
    json_object_set_new(dry, "length_m", json_real(round(r->dry_length_m * 10) / 10));
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "network", n->name, "valves",
                     close, "already_closed", already, "cannot_close", passed, "isolated", iso,
                     "dry", dry, "customers", customers_json(n, r, detail, max_customers),
                     "no_source", r->no_source);
}

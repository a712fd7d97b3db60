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
 *   2. A second search from every segment holding a source, across valves
 *      that stay open, never entering a shut-off segment, finds what still
 *      has supply. A segment that had supply before (valves as they are)
 *      and has none now is dry: the unintended isolation. The "before"
 *      reach is cached until a valve changes.
 *   3. Totals come from the per-segment sums; customers from the
 *      per-segment lists.
 * Each step is linear in the segments and valves it touches; step 2 is
 * linear in the segment graph, which is what bounds a query.
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

static int next_stamp(gis_pipenet *n)
{
    if (++n->stamp == INT_MAX) { /* wrap: clear the marks once */
        memset(n->mark, 0, n->nseg * sizeof *n->mark);
        memset(n->mark2, 0, n->nseg * sizeof *n->mark2);
        n->stamp = 1;
    }
    return n->stamp;
}

/* Orders r->close: feeding valves first, nearest next within each group. */
static void order_valves(const gis_pipenet *n, const unsigned char *feeds, double x, double y,
                         GArray *close)
{
    guint m = close->len;
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
                double d = gis_pipenet_distance(n, x, y, va->x, va->y);
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
    iso_ctx c = {g_new0(unsigned char, n->valves->len + 1), 0, 0};
    for (size_t i = 0; i < nq; i++) {
        for (size_t k = 0; k < qs[i].n_failed; k++)
            if (qs[i].failed[k] >= 0 && (guint)qs[i].failed[k] < n->valves->len)
                c.vflag[qs[i].failed[k]] |= 1;
        for (size_t k = 0; k < qs[i].n_closed; k++)
            if (qs[i].closed[k] >= 0 && (guint)qs[i].closed[k] < n->valves->len)
                c.vflag[qs[i].closed[k]] |= 2;
    }
    /* Before: supply with the valves as they are (and other work's closures). */
    int before = next_stamp(n);
    int any_source = reach(n, &c, 0, before);
    unsigned char *had = g_new0(unsigned char, n->nseg + 1);
    for (size_t s = 0; s < n->nseg; s++)
        had[s] = n->mark2[s] == before;

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
    int after = next_stamp(n);
    reach(n, &c, c.iso_stamp, after);
    r->no_source = !any_source;
    for (size_t s = 0; any_source && s < n->nseg; s++)
        if (had[s] && n->mark2[s] != after && n->mark[s] != c.iso_stamp) {
            int si = (int)s;
            g_array_append_val(r->dry, si);
            add_totals(&n->tot[s], r, 1);
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

/* The ids of nodes and links in the marked segments, and their lines. */
static json_t *part_json(const gis_pipenet *n, const GArray *segs, int detail)
{
    unsigned char *in = g_new0(unsigned char, n->nseg + 1);
    for (guint i = 0; i < segs->len; i++)
        in[g_array_index(segs, int, i)] = 1;
    json_t *nodes = json_array(), *links = json_array(), *lines = json_array();
    size_t nn = n->nodes->len;
    for (size_t i = 0; segs->len && i < nn; i++)
        if (in[n->seg[i]])
            json_array_append_new(nodes, json_string(g_array_index(n->nodes, gis_pipe_node, i).id));
    for (size_t j = 0; segs->len && j < n->links->len; j++) {
        if (n->seg[nn + j] < 0 || !in[n->seg[nn + j]])
            continue;
        const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, j);
        json_array_append_new(links, json_string(l->id));
        if (!detail)
            continue;
        json_t *line = json_array();
        for (size_t k = 0; k < l->nvert; k++)
            json_array_append_new(line, point(l->xy[2 * k], l->xy[2 * k + 1]));
        json_array_append_new(lines, line);
    }
    json_t *segments = json_array();
    for (guint i = 0; i < segs->len; i++)
        json_array_append_new(segments, json_integer(g_array_index(segs, int, i)));
    g_free(in);
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

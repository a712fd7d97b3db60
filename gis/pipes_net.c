/*
 * pipes_net.c — building a pipe network, looking up its elements, its
 * valve-isolated segments and the spatial grid over its links.
 *
 * Segments: a union-find over nodes and links (path halving, union by
 * size); a link joins each end node that has no valve between them. Then
 * one pass labels the components 0..nseg-1 and another sums their totals
 * and lists, per segment, the valves on its boundary and its customers
 * (compressed rows). Every change to valves or links runs it again: on
 * 500,000 pipes that is tens of milliseconds (docs/BENCHMARKS.md).
 *
 * Valve states do not change segments (a segment is what valves bound,
 * whether or not they turn); they change isolation answers only.
 *
 * Called by one thread at a time (see pipes.h).
 */
#include "pipes_internal.h"

#include <math.h>
#include <string.h>

static const char *const node_kinds[] = {"junction", "reservoir", "tank"};
static const char *const link_kinds[] = {"pipe", "pump", "valve"};
static const char *const valve_states[] = {"open", "closed", "inoperable"};

const char *gis_node_kind_name(gis_node_kind k)
{
    return node_kinds[k];
}
const char *gis_link_kind_name(gis_link_kind k)
{
    return link_kinds[k];
}
const char *gis_valve_state_name(gis_valve_state s)
{
    return valve_states[s];
}

int gis_valve_state_parse(const char *s)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, valve_states[i]) == 0)
            return i;
    return -1;
}

int gis_customer_kind_priority(const char *kind)
{
    static const char *const prio[] = {"hospital",     "clinic",       "school",
                                       "kindergarten", "care_home",    "nursing_home",
                                       "dialysis",     "fire_station", "critical"};
    for (size_t i = 0; kind && i < G_N_ELEMENTS(prio); i++)
        if (g_ascii_strcasecmp(kind, prio[i]) == 0)
            return 1;
    return 0;
}

gis_pipenet *gis_pipenet_new(const char *name, const char *utility)
{
    gis_pipenet *n = g_new0(gis_pipenet, 1);
    n->name = g_strdup(name ? name : "network");
    n->utility = g_strdup(utility ? utility : "water");
    n->ids = g_string_chunk_new(1 << 16);
    n->nodes = g_array_new(FALSE, TRUE, sizeof(gis_pipe_node));
    n->links = g_array_new(FALSE, TRUE, sizeof(gis_pipe_link));
    n->lx = g_array_new(FALSE, TRUE, sizeof(pipes__link_extra));
    n->verts = g_array_new(FALSE, FALSE, sizeof(double));
    n->valves = g_array_new(FALSE, TRUE, sizeof(gis_pipe_valve));
    n->customers = g_array_new(FALSE, TRUE, sizeof(gis_pipe_customer));
    n->node_ix = g_hash_table_new(g_str_hash, g_str_equal);
    n->link_ix = g_hash_table_new(g_str_hash, g_str_equal);
    n->valve_ix = g_hash_table_new(g_str_hash, g_str_equal);
    n->cust_ix = g_hash_table_new(g_str_hash, g_str_equal);
    n->seg_valves = g_array_new(FALSE, FALSE, sizeof(int));
    n->seg_cust = g_array_new(FALSE, FALSE, sizeof(int));
    n->queue = g_array_new(FALSE, FALSE, sizeof(int));
    n->heap = g_array_new(FALSE, FALSE, sizeof(guint64));
    n->seg_elem = g_array_new(FALSE, FALSE, sizeof(int));
    n->kx = n->ky = 1;
    return n;
}

static void free_index(gis_pipenet *n)
{
    g_clear_pointer(&n->seg, g_free);
    g_clear_pointer(&n->tot, g_free);
    g_clear_pointer(&n->seg_valve_off, g_free);
    g_clear_pointer(&n->seg_cust_off, g_free);
    g_clear_pointer(&n->link_valved, g_free);
    g_clear_pointer(&n->mark, g_free);
    g_clear_pointer(&n->mark2, g_free);
    g_clear_pointer(&n->seg_elem_off, g_free);
    g_clear_pointer(&n->base_dist, g_free);
    n->base_valid = 0;
}

void gis_pipenet_free(gis_pipenet *n)
{
    if (!n)
        return;
    free_index(n);
    g_free(n->grid_off);
    g_free(n->grid_link);
    g_array_free(n->nodes, TRUE);
    g_array_free(n->links, TRUE);
    g_array_free(n->lx, TRUE);
    g_array_free(n->verts, TRUE);
    g_array_free(n->valves, TRUE);
    g_array_free(n->customers, TRUE);
    g_array_free(n->seg_valves, TRUE);
    g_array_free(n->seg_cust, TRUE);
    g_array_free(n->queue, TRUE);
    g_array_free(n->heap, TRUE);
    g_array_free(n->seg_elem, TRUE);
    g_hash_table_destroy(n->node_ix);
    g_hash_table_destroy(n->link_ix);
    g_hash_table_destroy(n->valve_ix);
    g_hash_table_destroy(n->cust_ix);
    g_string_chunk_free(n->ids);
    g_free(n->name);
    g_free(n->utility);
    g_free(n);
}

static int lookup(GHashTable *h, const char *id)
{
    if (!id)
        return -1;
    gpointer v = g_hash_table_lookup(h, id);
    return v ? GPOINTER_TO_INT(v) - 1 : -1;
}

int gis_pipenet_find_node(const gis_pipenet *n, const char *id)
{
    return lookup(n->node_ix, id);
}
int gis_pipenet_find_link(const gis_pipenet *n, const char *id)
{
    return lookup(n->link_ix, id);
}
int gis_pipenet_find_valve(const gis_pipenet *n, const char *id)
{
    return lookup(n->valve_ix, id);
}

int pipes__error(char **err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        *err = g_strdup_vprintf(fmt, ap);
        va_end(ap);
    }
    return code;
}

static const char *intern_new(gis_pipenet *n, GHashTable *h, const char *id, int index)
{
    const char *s = g_string_chunk_insert(n->ids, id);
    g_hash_table_insert(h, (gpointer)s, GINT_TO_POINTER(index + 1));
    return s;
}

int gis_pipenet_add_node(gis_pipenet *n, const char *id, gis_node_kind kind, double x, double y,
                         char **err)
{
    if (!id || !*id)
        return pipes__error(err, CORE_EINVAL, "a node has no id");
    if (!isfinite(x) || !isfinite(y))
        return pipes__error(err, CORE_EINVAL, "node %s: coordinates are not finite", id);
    if (lookup(n->node_ix, id) >= 0)
        return pipes__error(err, CORE_EEXISTS, "node %s: duplicate id", id);
    int i = (int)n->nodes->len;
    gis_pipe_node nd = {intern_new(n, n->node_ix, id, i), kind, x, y};
    g_array_append_val(n->nodes, nd);
    return i;
}

void pipes__fix_pointers(gis_pipenet *n)
{
    for (guint i = 0; i < n->links->len; i++) {
        gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, i);
        l->xy = &g_array_index(n->verts, double, g_array_index(n->lx, pipes__link_extra, i).xy_off);
    }
}

void pipes__lonlat_scale(double lat, double *kx, double *ky)
{
    double r = lat * G_PI / 180;
    *ky = 111132.954 - 559.822 * cos(2 * r);
    *kx = 111412.84 * cos(r) - 93.5 * cos(3 * r);
}

double gis_pipenet_distance(const gis_pipenet *n, double x0, double y0, double x1, double y1)
{
    return hypot((x1 - x0) * n->kx, (y1 - y0) * n->ky);
}

double pipes__geom_length(const gis_pipenet *n, const gis_pipe_link *l)
{
    double len = 0;
    for (size_t k = 1; k < l->nvert; k++)
        len += gis_pipenet_distance(n, l->xy[2 * k - 2], l->xy[2 * k - 1], l->xy[2 * k],
                                    l->xy[2 * k + 1]);
    return len;
}

int gis_pipenet_add_link(gis_pipenet *n, const char *id, gis_link_kind kind, const char *from,
                         const char *to, double length_m, double diameter_mm, const double *xy,
                         size_t nvert, char **err)
{
    if (!id || !*id)
        return pipes__error(err, CORE_EINVAL, "a link has no id");
    if (lookup(n->link_ix, id) >= 0)
        return pipes__error(err, CORE_EEXISTS, "link %s: duplicate id", id);
    int a = lookup(n->node_ix, from), b = lookup(n->node_ix, to);
    if (a < 0 || b < 0)
        return pipes__error(err, CORE_ENOTFOUND, "link %s: unknown node %s", id, a < 0 ? from : to);
    if (!isfinite(length_m) || !isfinite(diameter_mm))
        return pipes__error(err, CORE_EINVAL, "link %s: length or diameter is not finite", id);
    for (size_t k = 0; xy && k < 2 * nvert; k++)
        if (!isfinite(xy[k]))
            return pipes__error(err, CORE_EINVAL, "link %s: a vertex is not finite", id);
    const gis_pipe_node *na = &g_array_index(n->nodes, gis_pipe_node, a);
    const gis_pipe_node *nb = &g_array_index(n->nodes, gis_pipe_node, b);
    pipes__link_extra ex = {n->verts->len};
    const void *before = n->verts->data;
    if (xy && nvert >= 2) {
        g_array_append_vals(n->verts, xy, 2 * nvert);
    } else {
        double pts[4] = {na->x, na->y, nb->x, nb->y};
        g_array_append_vals(n->verts, pts, 4);
        nvert = 2;
    }
    int i = (int)n->links->len;
    gis_pipe_link l = {
        intern_new(n, n->link_ix, id, i), kind, a, b, length_m, diameter_mm, NULL, nvert, 0};
    g_array_append_val(n->links, l);
    g_array_append_val(n->lx, ex);
    gis_pipe_link *lp = &g_array_index(n->links, gis_pipe_link, i);
    if (n->verts->data != before) /* the vertices moved: every link's pointer follows */
        pipes__fix_pointers(n);
    else
        lp->xy = &g_array_index(n->verts, double, ex.xy_off);
    if (lp->length_m <= 0)
        lp->length_m = pipes__geom_length(n, lp);
    if (n->finished && !n->held)
        pipes__segments(n), pipes__grid(n);
    return i;
}

/* A point at distance d (metres) along the link from its from end (or from
 * its to end when reverse). */
static void point_along(const gis_pipenet *n, const gis_pipe_link *l, int reverse, double d,
                        double *x, double *y)
{
    for (size_t s = 1; s < l->nvert; s++) {
        size_t i0 = reverse ? l->nvert - s : s - 1, i1 = reverse ? l->nvert - s - 1 : s;
        double ax = l->xy[2 * i0], ay = l->xy[2 * i0 + 1], bx = l->xy[2 * i1],
               by = l->xy[2 * i1 + 1];
        double seg = gis_pipenet_distance(n, ax, ay, bx, by);
        if (seg >= d || s + 1 == l->nvert) {
            double t = seg > 0 ? fmin(d / seg, 1) : 0;
            *x = ax + (bx - ax) * t;
            *y = ay + (by - ay) * t;
            return;
        }
        d -= seg;
    }
    *x = l->xy[0];
    *y = l->xy[1];
}

void pipes__place_valve(gis_pipenet *n, gis_pipe_valve *v)
{
    const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, v->link);
    double geom = pipes__geom_length(n, l);
    point_along(n, l, v->node != l->from, fmin(2.0, geom / 10), &v->x, &v->y);
}

int gis_pipenet_add_valve(gis_pipenet *n, const char *id, const char *link, const char *node,
                          gis_valve_state state, char **err)
{
    int li = lookup(n->link_ix, link), ni = lookup(n->node_ix, node);
    if (li < 0)
        return pipes__error(err, CORE_ENOTFOUND, "valve %s: unknown link %s", id ? id : "", link);
    if (ni < 0)
        return pipes__error(err, CORE_ENOTFOUND, "valve %s: unknown node %s", id ? id : "", node);
    const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, li);
    if (l->from != ni && l->to != ni)
        return pipes__error(err, CORE_EINVAL, "valve %s: node %s is not an end of link %s",
                            id ? id : "", node, link);
    char auto_id[32];
    if (!id || !*id) {
        g_snprintf(auto_id, sizeof auto_id, "V%u", n->valves->len + 1);
        id = auto_id;
    }
    if (lookup(n->valve_ix, id) >= 0)
        return pipes__error(err, CORE_EEXISTS, "valve %s: duplicate id", id);
    int i = (int)n->valves->len;
    gis_pipe_valve v = {intern_new(n, n->valve_ix, id, i), li, ni, 0, 0, state, 0};
    pipes__place_valve(n, &v);
    g_array_append_val(n->valves, v);
    if (n->finished && !n->held)
        return pipes__segments(n) < 0 ? CORE_ENOMEM : i;
    return i;
}

int gis_pipenet_add_customer(gis_pipenet *n, const char *id, const char *name, const char *kind,
                             int units, double x, double y, const char *link, const char *node,
                             char **err)
{
    if (!id || !*id)
        return pipes__error(err, CORE_EINVAL, "a customer has no id");
    if (lookup(n->cust_ix, id) >= 0)
        return pipes__error(err, CORE_EEXISTS, "customer %s: duplicate id", id);
    if (!isfinite(x) || !isfinite(y))
        return pipes__error(err, CORE_EINVAL, "customer %s: coordinates are not finite", id);
    int li = -1, ni = -1;
    if (link && *link && (li = lookup(n->link_ix, link)) < 0)
        return pipes__error(err, CORE_ENOTFOUND, "customer %s: unknown link %s", id, link);
    if (li < 0 && node && *node && (ni = lookup(n->node_ix, node)) < 0)
        return pipes__error(err, CORE_ENOTFOUND, "customer %s: unknown node %s", id, node);
    int i = (int)n->customers->len;
    kind = kind && *kind ? kind : "residential";
    gis_pipe_customer c = {intern_new(n, n->cust_ix, id, i),
                           g_string_chunk_insert_const(n->ids, name ? name : ""),
                           g_string_chunk_insert_const(n->ids, kind),
                           units > 0 ? units : 1,
                           gis_customer_kind_priority(kind),
                           x,
                           y,
                           li,
                           ni};
    g_array_append_val(n->customers, c);
    return i;
}

const char *gis_pipenet_name(const gis_pipenet *n)
{
    return n->name;
}
const char *gis_pipenet_utility(const gis_pipenet *n)
{
    return n->utility;
}
size_t gis_pipenet_node_count(const gis_pipenet *n)
{
    return n->nodes->len;
}
size_t gis_pipenet_link_count(const gis_pipenet *n)
{
    return n->links->len;
}
size_t gis_pipenet_valve_count(const gis_pipenet *n)
{
    return n->valves->len;
}
size_t gis_pipenet_customer_count(const gis_pipenet *n)
{
    return n->customers->len;
}

const gis_pipe_node *gis_pipenet_node(const gis_pipenet *n, size_t i)
{
    return i < n->nodes->len ? &g_array_index(n->nodes, gis_pipe_node, i) : NULL;
}
const gis_pipe_link *gis_pipenet_link(const gis_pipenet *n, size_t i)
{
    return i < n->links->len ? &g_array_index(n->links, gis_pipe_link, i) : NULL;
}
const gis_pipe_valve *gis_pipenet_valve(const gis_pipenet *n, size_t i)
{
    return i < n->valves->len ? &g_array_index(n->valves, gis_pipe_valve, i) : NULL;
}
const gis_pipe_customer *gis_pipenet_customer(const gis_pipenet *n, size_t i)
{
    return i < n->customers->len ? &g_array_index(n->customers, gis_pipe_customer, i) : NULL;
}

void gis_pipenet_bbox(const gis_pipenet *n, double b[4])
{
    b[0] = b[1] = INFINITY;
    b[2] = b[3] = -INFINITY;
    for (guint i = 0; i + 1 < n->verts->len; i += 2) {
        double x = g_array_index(n->verts, double, i), y = g_array_index(n->verts, double, i + 1);
        b[0] = fmin(b[0], x), b[1] = fmin(b[1], y), b[2] = fmax(b[2], x), b[3] = fmax(b[3], y);
    }
    for (guint i = 0; i < n->nodes->len; i++) {
        const gis_pipe_node *d = &g_array_index(n->nodes, gis_pipe_node, i);
        b[0] = fmin(b[0], d->x), b[1] = fmin(b[1], d->y), b[2] = fmax(b[2], d->x),
        b[3] = fmax(b[3], d->y);
    }
    if (!isfinite(b[0]))
        b[0] = b[1] = b[2] = b[3] = 0;
}

/* ---- segments ---- */

static int uf_find(int *p, int x)
{
    while (p[x] != x) {
        p[x] = p[p[x]];
        x = p[x];
    }
    return x;
}

static void uf_union(int *p, int *size, int a, int b)
{
    a = uf_find(p, a), b = uf_find(p, b);
    if (a == b)
        return;
    if (size[a] < size[b]) {
        int t = a;
        a = b, b = t;
    }
    p[b] = a;
    size[a] += size[b];
}

/* Fills a CSR list: off[seg] .. off[seg+1] in out, for items with key[i]. */
static void csr_fill(const int *key, size_t nitems, size_t nseg, int *off, GArray *out)
{
    memset(off, 0, (nseg + 1) * sizeof *off);
    for (size_t i = 0; i < nitems; i++)
        if (key[i] >= 0)
            off[key[i] + 1]++;
    for (size_t s = 0; s < nseg; s++)
        off[s + 1] += off[s];
    g_array_set_size(out, off[nseg]);
    int *fill = g_new(int, nseg);
    memcpy(fill, off, nseg * sizeof *fill);
    for (size_t i = 0; i < nitems; i++)
        if (key[i] >= 0)
            g_array_index(out, int, fill[key[i]]++) = (int)i;
    g_free(fill);
}

static int customer_element(const gis_pipenet *n, const gis_pipe_customer *c)
{
    if (c->link >= 0)
        return (int)n->nodes->len + c->link;
    return c->node;
}

int pipes__segments(gis_pipenet *n)
{
    size_t nn = n->nodes->len, nl = n->links->len, ne = nn + nl;
    free_index(n);
    n->link_valved = g_new0(unsigned char, nl ? nl : 1);
    for (guint v = 0; v < n->valves->len; v++) {
        const gis_pipe_valve *va = &g_array_index(n->valves, gis_pipe_valve, v);
        if (va->removed)
            continue;
        const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, va->link);
        n->link_valved[va->link] |= va->node == l->from ? 1 : 2;
    }
    int *p = g_new(int, ne ? ne : 1), *size = g_new(int, ne ? ne : 1);
    for (size_t i = 0; i < ne; i++)
        p[i] = (int)i, size[i] = 1;
    for (size_t j = 0; j < nl; j++) {
        const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, j);
        if (l->removed)
            continue;
        if (!(n->link_valved[j] & 1))
            uf_union(p, size, (int)(nn + j), l->from);
        if (!(n->link_valved[j] & 2))
            uf_union(p, size, (int)(nn + j), l->to);
    }
    /* Label components in element order, so labels are stable for a given network. */
    n->seg = g_new(int, ne ? ne : 1);
    int *label = size; /* reuse: label per root */
    for (size_t i = 0; i < ne; i++)
        label[i] = -1;
    n->nseg = 0;
    for (size_t i = 0; i < ne; i++) {
        if (i >= nn && g_array_index(n->links, gis_pipe_link, i - nn).removed) {
            n->seg[i] = -1;
            continue;
        }
        int r = uf_find(p, (int)i);
        if (label[r] < 0)
            label[r] = (int)n->nseg++;
        n->seg[i] = label[r];
    }
    g_free(p);
    g_free(size);

    size_t ns = n->nseg;
    n->tot = g_new0(pipes__seg_total, ns ? ns : 1);
    for (size_t i = 0; i < nn; i++) {
        pipes__seg_total *t = &n->tot[n->seg[i]];
        t->nodes++;
        if (g_array_index(n->nodes, gis_pipe_node, i).kind != GIS_NODE_JUNCTION)
            t->has_source = 1;
    }
    for (size_t j = 0; j < nl; j++) {
        if (n->seg[nn + j] < 0)
            continue;
        const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, j);
        pipes__seg_total *t = &n->tot[n->seg[nn + j]];
        double r = l->diameter_mm / 2000.0;
        t->links++;
        t->length_m += l->length_m;
        t->volume_m3 += G_PI * r * r * l->length_m;
    }
    /* Bounding valves: those whose link and node lie in different segments. A
     * valve inside one segment (a loop around it) bounds nothing. */
    size_t nv = n->valves->len;
    int *vkey = g_new(int, nv ? 2 * nv : 1);
    GArray *pairs = g_array_new(FALSE, FALSE, sizeof(int));
    for (size_t v = 0; v < nv; v++) {
        const gis_pipe_valve *va = &g_array_index(n->valves, gis_pipe_valve, v);
        int a = va->removed ? -1 : n->seg[nn + va->link], b = va->removed ? -1 : n->seg[va->node];
        vkey[2 * v] = a >= 0 && a != b ? a : -1;
        vkey[2 * v + 1] = a >= 0 && a != b ? b : -1;
    }
    n->seg_valve_off = g_new(int, ns + 1);
    csr_fill(vkey, 2 * nv, ns, n->seg_valve_off, n->seg_valves);
    for (guint k = 0; k < n->seg_valves->len; k++)
        g_array_index(n->seg_valves, int, k) /= 2; /* item index -> valve index */
    g_array_free(pairs, TRUE);
    g_free(vkey);

    size_t nc = n->customers->len;
    int *ckey = g_new(int, nc ? nc : 1);
    for (size_t c = 0; c < nc; c++) {
        const gis_pipe_customer *cu = &g_array_index(n->customers, gis_pipe_customer, c);
        int e = customer_element(n, cu);
        ckey[c] = e >= 0 ? n->seg[e] : -1;
        if (ckey[c] >= 0) {
            pipes__seg_total *t = &n->tot[ckey[c]];
            t->customers++;
            t->units += (size_t)cu->units;
            t->priority += (size_t)cu->priority;
        }
    }
    n->seg_cust_off = g_new(int, ns + 1);
    csr_fill(ckey, nc, ns, n->seg_cust_off, n->seg_cust);
    g_free(ckey);
    n->seg_elem_off = g_new(int, ns + 1);
    csr_fill(n->seg, ne, ns, n->seg_elem_off, n->seg_elem);
    n->base_dist = g_new(int, ns ? ns : 1);
    n->base_valid = 0;
    n->mark = g_new0(int, ns ? ns : 1);
    n->mark2 = g_new0(int, ns ? ns : 1);
    n->stamp = 0;
    return 0;
}

size_t gis_pipenet_segment_count(const gis_pipenet *n)
{
    return n->nseg;
}
int gis_pipenet_node_segment(const gis_pipenet *n, size_t i)
{
    return n->seg && i < n->nodes->len ? n->seg[i] : -1;
}
int gis_pipenet_link_segment(const gis_pipenet *n, size_t j)
{
    return n->seg && j < n->links->len ? n->seg[n->nodes->len + j] : -1;
}
size_t gis_pipenet_segment_size(const gis_pipenet *n, int s)
{
    return s >= 0 && (size_t)s < n->nseg ? n->tot[s].links + n->tot[s].nodes : 0;
}

json_t *gis_pipenet_segments_json(const gis_pipenet *n)
{
    json_t *nodes = json_object(), *links = json_object();
    size_t largest = 0;
    for (size_t s = 0; s < n->nseg; s++)
        largest = MAX(largest, gis_pipenet_segment_size(n, (int)s));
    for (guint i = 0; i < n->nodes->len; i++)
        json_object_set_new(nodes, g_array_index(n->nodes, gis_pipe_node, i).id,
                            json_integer(n->seg[i]));
    for (guint j = 0; j < n->links->len; j++)
        if (n->seg[n->nodes->len + j] >= 0)
            json_object_set_new(links, g_array_index(n->links, gis_pipe_link, j).id,
                                json_integer(n->seg[n->nodes->len + j]));
    return json_pack("{s:s, s:I, s:I, s:o, s:o}", "network", n->name, "segments",
                     (json_int_t)n->nseg, "largest", (json_int_t)largest, "nodes", nodes, "links",
                     links);
}

/* ---- spatial grid ---- */

void pipes__grid(gis_pipenet *n)
{
    g_clear_pointer(&n->grid_off, g_free);
    g_clear_pointer(&n->grid_link, g_free);
    double b[4];
    gis_pipenet_bbox(n, b);
    size_t nl = n->links->len;
    double w = fmax((b[2] - b[0]) * n->kx, 1), h = fmax((b[3] - b[1]) * n->ky, 1);
    /* About two links per cell, at least 20 m. */
    double cell_m = fmax(sqrt(w * h / (double)(nl ? nl : 1) * 2), 20);
    n->gcell = cell_m;
    n->gx0 = b[0], n->gy0 = b[1];
    n->gw = (int)fmin(w / cell_m + 1, 4096), n->gh = (int)fmin(h / cell_m + 1, 4096);
    size_t ncell = (size_t)n->gw * (size_t)n->gh;
    int *count = g_new0(int, ncell + 1);
    GArray *pairs = g_array_new(FALSE, FALSE, sizeof(int)); /* cell, link */
    for (size_t j = 0; j < nl; j++) {
        const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, j);
        if (l->removed)
            continue;
        double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
        for (size_t k = 0; k < l->nvert; k++) {
            x0 = fmin(x0, l->xy[2 * k]), x1 = fmax(x1, l->xy[2 * k]);
            y0 = fmin(y0, l->xy[2 * k + 1]), y1 = fmax(y1, l->xy[2 * k + 1]);
        }
        int cx0 = (int)((x0 - n->gx0) * n->kx / cell_m),
            cx1 = (int)((x1 - n->gx0) * n->kx / cell_m);
        int cy0 = (int)((y0 - n->gy0) * n->ky / cell_m),
            cy1 = (int)((y1 - n->gy0) * n->ky / cell_m);
        cx1 = MIN(cx1, n->gw - 1), cy1 = MIN(cy1, n->gh - 1);
        for (int cy = MAX(cy0, 0); cy <= cy1; cy++)
            for (int cx = MAX(cx0, 0); cx <= cx1; cx++) {
                int pr[2] = {cy * n->gw + cx, (int)j};
                g_array_append_vals(pairs, pr, 2);
                count[pr[0] + 1]++;
            }
    }
    for (size_t c = 0; c < ncell; c++)
        count[c + 1] += count[c];
    n->grid_off = count;
    n->grid_link = g_new(int, pairs->len / 2 + 1);
    int *fill = g_new(int, ncell);
    memcpy(fill, count, ncell * sizeof *fill);
    for (guint k = 0; k + 1 < pairs->len; k += 2)
        n->grid_link[fill[g_array_index(pairs, int, k)]++] = g_array_index(pairs, int, k + 1);
    g_free(fill);
    g_array_free(pairs, TRUE);
}

static double seg_dist(const gis_pipenet *n, double px, double py, double ax, double ay, double bx,
                       double by)
{
    double ux = (bx - ax) * n->kx, uy = (by - ay) * n->ky;
    double vx = (px - ax) * n->kx, vy = (py - ay) * n->ky;
    double len2 = ux * ux + uy * uy;
    double t = len2 > 0 ? fmax(0, fmin(1, (ux * vx + uy * vy) / len2)) : 0;
    return hypot(vx - t * ux, vy - t * uy);
}

int gis_pipenet_nearest_link(const gis_pipenet *n, double x, double y, double max_m, double *dist_m)
{
    return pipes__nearest_link_except(n, x, y, max_m, -1, dist_m);
}

int pipes__nearest_link_any(const gis_pipenet *n, double x, double y, double *dist_m)
{
    /* Growing rings: a search out to the whole network's size at once
     * would visit every cell of the grid for every point. */
    for (double r = 2 * n->gcell; r < 4e7; r *= 4) {
        int li = pipes__nearest_link_except(n, x, y, r, -1, dist_m);
        if (li >= 0)
            return li;
        if (r > (n->gw + n->gh) * n->gcell)
            break;
    }
    return -1;
}

int pipes__nearest_link_except(const gis_pipenet *n, double x, double y, double max_m, int except,
                               double *dist_m)
{
    if (!n->grid_off || !isfinite(x) || !isfinite(y))
        return -1;
    int best = -1;
    double bestd = max_m;
    int r = (int)ceil(max_m / n->gcell);
    int cx = (int)floor((x - n->gx0) * n->kx / n->gcell),
        cy = (int)floor((y - n->gy0) * n->ky / n->gcell);
    for (int gy = MAX(cy - r, 0); gy <= MIN(cy + r, n->gh - 1); gy++)
        for (int gx = MAX(cx - r, 0); gx <= MIN(cx + r, n->gw - 1); gx++) {
            int c = gy * n->gw + gx;
            for (int k = n->grid_off[c]; k < n->grid_off[c + 1]; k++) {
                if (n->grid_link[k] == except)
                    continue;
                const gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, n->grid_link[k]);
                for (size_t s = 1; s < l->nvert; s++) {
                    double d = seg_dist(n, x, y, l->xy[2 * s - 2], l->xy[2 * s - 1], l->xy[2 * s],
                                        l->xy[2 * s + 1]);
                    if (d < bestd || (d == bestd && (best < 0 || n->grid_link[k] < best)))
                        bestd = d, best = n->grid_link[k];
                }
            }
        }
    if (best >= 0 && dist_m)
        *dist_m = bestd;
    return best;
}

/* ---- finishing and changes ---- */

int gis_pipenet_finish(gis_pipenet *n, int geographic, char **err)
{
    n->geographic = geographic;
    if (geographic) {
        double b[4];
        gis_pipenet_bbox(n, b);
        if (b[0] < -180 || b[2] > 180 || b[1] < -90 || b[3] > 90)
            return pipes__error(err, CORE_EINVAL,
                                "network %s: coordinates are not longitude/latitude", n->name);
        pipes__lonlat_scale((b[1] + b[3]) / 2, &n->kx, &n->ky);
    }
    for (guint v = 0; v < n->valves->len; v++)
        pipes__place_valve(n, &g_array_index(n->valves, gis_pipe_valve, v));
    pipes__grid(n);
    for (guint c = 0; c < n->customers->len; c++) {
        gis_pipe_customer *cu = &g_array_index(n->customers, gis_pipe_customer, c);
        if (cu->link < 0 && cu->node < 0)
            cu->link = pipes__nearest_link_any(n, cu->x, cu->y, NULL);
    }
    n->finished = 1;
    return pipes__segments(n);
}

void gis_pipenet_hold(gis_pipenet *n, int hold)
{
    n->held = hold;
    if (!hold && n->finished) {
        pipes__grid(n);
        pipes__segments(n);
    }
}

int gis_pipenet_set_valve_state(gis_pipenet *n, size_t v, gis_valve_state state)
{
    if (v >= n->valves->len)
        return CORE_ENOTFOUND;
    g_array_index(n->valves, gis_pipe_valve, v).state = state;
    n->base_valid = 0;
    return 0;
}

int gis_pipenet_remove_valve(gis_pipenet *n, size_t v)
{
    if (v >= n->valves->len)
        return CORE_ENOTFOUND;
    g_array_index(n->valves, gis_pipe_valve, v).removed = 1;
    return n->finished && !n->held ? pipes__segments(n) : 0;
}

int gis_pipenet_remove_link(gis_pipenet *n, size_t j)
{
    if (j >= n->links->len)
        return CORE_ENOTFOUND;
    g_array_index(n->links, gis_pipe_link, j).removed = 1;
    for (guint v = 0; v < n->valves->len; v++)
        if (g_array_index(n->valves, gis_pipe_valve, v).link == (int)j)
            g_array_index(n->valves, gis_pipe_valve, v).removed = 1;
    for (guint c = 0; c < n->customers->len; c++) {
        gis_pipe_customer *cu = &g_array_index(n->customers, gis_pipe_customer, c);
        if (cu->link == (int)j) /* a service line moves to the nearer end */
            cu->link = -1, cu->node = g_array_index(n->links, gis_pipe_link, j).from;
    }
    if (!n->finished || n->held)
        return 0;
    pipes__grid(n);
    return pipes__segments(n);
}

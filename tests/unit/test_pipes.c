/* Unit tests: pipe networks, valve segments and isolation (gis/pipes_*.c).
 *
 * Against third-party answers (CITYCMD_WATER, the shared water data):
 * WNTR's segment counts and partitions of Net3 for its random and
 * strategic-1 valve layers, and CCWI17 with its five valves.
 *
 * Against independent computations written here over the element graph
 * (nodes and links, a link joined to each end node unless a valve sits
 * there), never over the engine's segments:
 *   - a failed valve gives the answer of a network without that valve,
 *     recomputed from scratch, for every valve of Net3 and ky4;
 *   - for every pipe of Net3, ky4 and Net6, the shut-off part is exactly
 *     what the burst reaches without crossing a valve to close or a closed
 *     one, no valve to close is inoperable, and the dry part is exactly
 *     what a search from the sources reached before the closures and does
 *     not reach after them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../gis/pipes.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *water(const char *file)
{
    const char *d = getenv("CITYCMD_WATER");
    return g_build_filename(d ? d : "../shared/data/water", file, NULL);
}

static gis_pipenet *load(const char *inp, const char *valves)
{
    char *path = water(inp), *err = NULL;
    gis_pipenet *n = NULL;
    int rc = gis_pipenet_read_inp(path, inp, "water", &n, &err);
    if (rc)
        fail_msg("%s: %s", path, err);
    g_free(path);
    if (valves) {
        path = water(valves);
        rc = gis_pipenet_read_valves_csv(n, path, &err);
        if (rc < 0)
            fail_msg("%s: %s", path, err);
        g_free(path);
    }
    assert_int_equal(gis_pipenet_finish(n, 0, &err), 0);
    return n;
}

static size_t largest(const gis_pipenet *n)
{
    size_t best = 0;
    for (size_t s = 0; s < gis_pipenet_segment_count(n); s++)
        best = MAX(best, gis_pipenet_segment_size(n, (int)s));
    return best;
}

/* Checks that two labellings of the same items are the same partition: a
 * bijection between labels. */
static void assert_same_partition(const int *a, const int *b, size_t count)
{
    GHashTable *ab = g_hash_table_new(g_direct_hash, g_direct_equal);
    GHashTable *ba = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (size_t i = 0; i < count; i++) {
        gpointer ka = GINT_TO_POINTER(a[i] + 1), kb = GINT_TO_POINTER(b[i] + 1);
        gpointer x = g_hash_table_lookup(ab, ka), y = g_hash_table_lookup(ba, kb);
        if (x)
            assert_ptr_equal(x, kb);
        else
            g_hash_table_insert(ab, ka, kb);
        if (y)
            assert_ptr_equal(y, ka);
        else
            g_hash_table_insert(ba, kb, ka);
    }
    g_hash_table_destroy(ab);
    g_hash_table_destroy(ba);
}

/* Compares the engine's segments of nodes or links with WNTR's CSV. */
static void assert_csv_partition(const gis_pipenet *n, const char *csv, int links)
{
    char *path = water(csv), *text = NULL;
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    char **lines = g_strsplit(text, "\n", -1);
    GArray *mine = g_array_new(FALSE, FALSE, sizeof(int)),
           *theirs = g_array_new(FALSE, FALSE, sizeof(int));
    for (size_t i = 1; lines[i]; i++) {
        char **c = g_strsplit(g_strstrip(lines[i]), ",", 2);
        if (c[0] && c[1]) {
            int ix = links ? gis_pipenet_find_link(n, c[0]) : gis_pipenet_find_node(n, c[0]);
            if (ix < 0)
                fail_msg("%s: unknown element %s", csv, c[0]);
            int s = links ? gis_pipenet_link_segment(n, (size_t)ix)
                          : gis_pipenet_node_segment(n, (size_t)ix);
            int t = atoi(c[1]);
            g_array_append_val(mine, s);
            g_array_append_val(theirs, t);
        }
        g_strfreev(c);
    }
    assert_int_equal(mine->len, links ? gis_pipenet_link_count(n) : gis_pipenet_node_count(n));
    assert_same_partition((int *)mine->data, (int *)theirs->data, mine->len);
    g_array_free(mine, TRUE);
    g_array_free(theirs, TRUE);
    g_strfreev(lines);
    g_free(text);
    g_free(path);
}

static void test_net3_random(void **state)
{
    (void)state;
    gis_pipenet *n = load("Net3.inp", "valve_layer_random.csv");
    assert_int_equal(gis_pipenet_segment_count(n), 23);
    assert_int_equal(largest(n), 125);
    assert_csv_partition(n, "node_segments_random.csv", 0);
    assert_csv_partition(n, "link_segments_random.csv", 1);
    gis_pipenet_free(n);
}

static void test_net3_strategic(void **state)
{
    (void)state;
    gis_pipenet *n = load("Net3.inp", "valve_layer_stategic_1.csv");
    assert_int_equal(gis_pipenet_segment_count(n), 119);
    assert_int_equal(largest(n), 3);
    assert_csv_partition(n, "node_segments_strategic.csv", 0);
    assert_csv_partition(n, "link_segments_strategic.csv", 1);
    gis_pipenet_free(n);
    const int expect[] = {238, 141, 60, 9, 0};
    for (int k = 0; k < 5; k++) {
        char file[64];
        g_snprintf(file, sizeof file, "valve_layer_stategic_%d.csv", k);
        n = load("Net3.inp", file);
        assert_int_equal(gis_pipenet_valve_count(n), expect[k]);
        gis_pipenet_free(n);
    }
}

static void test_ccwi17(void **state)
{
    (void)state;
    gis_pipenet *n = NULL;
    char *path = water("CCWI17-HermanMahmoud.inp"), *err = NULL;
    assert_int_equal(gis_pipenet_read_inp(path, "ccwi17", "water", &n, &err), 0);
    const char *pairs[][2] = {{"p1", "n1"}, {"p3", "n2"}, {"p7", "n5"}, {"p7", "n6"}, {"p8", "n6"}};
    for (size_t i = 0; i < 5; i++)
        assert_true(
            gis_pipenet_add_valve(n, NULL, pairs[i][0], pairs[i][1], GIS_VALVE_OPEN, NULL) >= 0);
    assert_int_equal(gis_pipenet_finish(n, 0, NULL), 0);
    assert_int_equal(gis_pipenet_segment_count(n), 4);
    assert_int_equal(largest(n), 11);
    /* A valve whose node is not an end of its link is refused by name. */
    assert_int_equal(gis_pipenet_add_valve(n, NULL, "p1", "n5", GIS_VALVE_OPEN, &err), CORE_EINVAL);
    assert_non_null(strstr(err, "p1"));
    g_free(err);
    g_free(path);
    gis_pipenet_free(n);
}

/* A deterministic valve layer: at each node of degree d, valves on d - keep
 * of its links (pseudo-random which), like WNTR's strategic layers. */
static void add_layer(gis_pipenet *n, int keep, unsigned seed)
{
    size_t nn = gis_pipenet_node_count(n), nl = gis_pipenet_link_count(n);
    GArray **inc = g_new0(GArray *, nn);
    for (size_t i = 0; i < nn; i++)
        inc[i] = g_array_new(FALSE, FALSE, sizeof(int));
    for (size_t j = 0; j < nl; j++) {
        const gis_pipe_link *l = gis_pipenet_link(n, j);
        int jj = (int)j;
        g_array_append_val(inc[l->from], jj);
        if (l->to != l->from)
            g_array_append_val(inc[l->to], jj);
    }
    GRand *r = g_rand_new_with_seed(seed);
    for (size_t i = 0; i < nn; i++) {
        GArray *a = inc[i];
        for (guint k = a->len; k > 1; k--) { /* shuffle */
            guint m = (guint)g_rand_int_range(r, 0, (gint32)k);
            int t = g_array_index(a, int, k - 1);
            g_array_index(a, int, k - 1) = g_array_index(a, int, m);
            g_array_index(a, int, m) = t;
        }
        for (guint k = 0; (int)k < (int)a->len - keep; k++)
            gis_pipenet_add_valve(n, NULL,
                                  gis_pipenet_link(n, (size_t)g_array_index(a, int, k))->id,
                                  gis_pipenet_node(n, i)->id, GIS_VALVE_OPEN, NULL);
        g_array_free(a, TRUE);
    }
    g_rand_free(r);
    g_free(inc);
}

/* ---- the element graph, independent of the engine's segments ---- */

typedef struct {
    size_t nn, nl;
    GArray **adj; /* per node: its links */
} elements;

static elements *elements_of(const gis_pipenet *n)
{
    elements *e = g_new0(elements, 1);
    e->nn = gis_pipenet_node_count(n), e->nl = gis_pipenet_link_count(n);
    e->adj = g_new0(GArray *, e->nn);
    for (size_t i = 0; i < e->nn; i++)
        e->adj[i] = g_array_new(FALSE, FALSE, sizeof(int));
    for (size_t j = 0; j < e->nl; j++) {
        const gis_pipe_link *l = gis_pipenet_link(n, j);
        int jj = (int)j;
        g_array_append_val(e->adj[l->from], jj);
        g_array_append_val(e->adj[l->to], jj);
    }
    return e;
}

static void elements_free(elements *e)
{
    for (size_t i = 0; i < e->nn; i++)
        g_array_free(e->adj[i], TRUE);
    g_free(e->adj);
    g_free(e);
}

/* Link ends (2 * link + 0 for its from end, + 1 for its to end) where a
 * valve with blocked[v] sits. */
static void blocked_ends(const gis_pipenet *n, const unsigned char *blocked, unsigned char *ends)
{
    memset(ends, 0, 2 * gis_pipenet_link_count(n));
    for (size_t v = 0; v < gis_pipenet_valve_count(n); v++) {
        const gis_pipe_valve *va = gis_pipenet_valve(n, v);
        if (va->removed || !blocked[v])
            continue;
        ends[2 * va->link + (va->node == gis_pipenet_link(n, (size_t)va->link)->from ? 0 : 1)] = 1;
    }
}

/* Marks (1) the elements reachable from seeds, never crossing a blocked
 * link end, never entering avoid[e]. */
static void flood(const gis_pipenet *n, const elements *e, GArray *seeds, const unsigned char *ends,
                  const unsigned char *avoid, unsigned char *seen)
{
    memset(seen, 0, e->nn + e->nl);
    GArray *q = g_array_new(FALSE, FALSE, sizeof(int));
    for (guint i = 0; i < seeds->len; i++) {
        int s = g_array_index(seeds, int, i);
        if (!avoid[s] && !seen[s])
            seen[s] = 1, g_array_append_val(q, s);
    }
    for (guint h = 0; h < q->len; h++) {
        int x = g_array_index(q, int, h);
        if ((size_t)x < e->nn) {
            for (guint k = 0; k < e->adj[x]->len; k++) {
                int j = g_array_index(e->adj[x], int, k);
                const gis_pipe_link *l = gis_pipenet_link(n, (size_t)j);
                if ((l->from == x && ends[2 * j]) || (l->to == x && ends[2 * j + 1]))
                    continue;
                int o = (int)e->nn + j;
                if (!seen[o] && !avoid[o])
                    seen[o] = 1, g_array_append_val(q, o);
            }
        } else {
            int j = x - (int)e->nn;
            const gis_pipe_link *l = gis_pipenet_link(n, (size_t)j);
            int ends2[2] = {l->from, l->to};
            for (int side = 0; side < 2; side++) {
                int o = ends2[side];
                if (ends[2 * j + side] || seen[o] || avoid[o])
                    continue;
                seen[o] = 1, g_array_append_val(q, o);
            }
        }
    }
    g_array_free(q, TRUE);
}

static void mark_segments(const gis_pipenet *n, const GArray *segs, unsigned char *out)
{
    size_t nn = gis_pipenet_node_count(n), nl = gis_pipenet_link_count(n);
    unsigned char *in = g_malloc0(gis_pipenet_segment_count(n) + 1);
    for (guint k = 0; k < segs->len; k++)
        in[g_array_index(segs, int, k)] = 1;
    for (size_t i = 0; i < nn; i++)
        out[i] = in[gis_pipenet_node_segment(n, i)];
    for (size_t j = 0; j < nl; j++)
        out[nn + j] = gis_pipenet_link_segment(n, j) >= 0 && in[gis_pipenet_link_segment(n, j)];
    g_free(in);
}

/* Every pipe's answer against the brute force; returns how many had a dry part. */
static int check_every_pipe(gis_pipenet *n)
{
    elements *e = elements_of(n);
    size_t ne = e->nn + e->nl, nv = gis_pipenet_valve_count(n);
    unsigned char *iso = g_malloc(ne), *dry = g_malloc(ne), *seen = g_malloc(ne),
                  *before = g_malloc(ne), *after = g_malloc(ne), *none = g_malloc0(ne);
    unsigned char *blocked = g_malloc0(nv + 1), *ends = g_malloc0(2 * e->nl + 1);
    GArray *src = g_array_new(FALSE, FALSE, sizeof(int)),
           *seed = g_array_new(FALSE, FALSE, sizeof(int));
    for (size_t i = 0; i < e->nn; i++)
        if (gis_pipenet_node(n, i)->kind != GIS_NODE_JUNCTION) {
            int ii = (int)i;
            g_array_append_val(src, ii);
        }
    for (size_t v = 0; v < nv; v++)
        blocked[v] = gis_pipenet_valve(n, v)->state == GIS_VALVE_CLOSED;
    blocked_ends(n, blocked, ends);
    flood(n, e, src, ends, none, before);
    int with_dry = 0;
    for (size_t j = 0; j < e->nl; j++) {
        gis_iso_query q = {.link = (int)j, .at_x = NAN, .at_y = NAN};
        gis_iso_result r;
        assert_int_equal(gis_pipes_isolate(n, &q, &r), 0);
        memset(blocked, 0, nv + 1);
        for (guint k = 0; k < r.close->len; k++) {
            int v = g_array_index(r.close, int, k);
            assert_int_equal(gis_pipenet_valve(n, (size_t)v)->state, GIS_VALVE_OPEN);
            blocked[v] = 1;
        }
        for (size_t v = 0; v < nv; v++)
            blocked[v] |= gis_pipenet_valve(n, v)->state == GIS_VALVE_CLOSED;
        blocked_ends(n, blocked, ends);
        /* The shut-off part is what the burst reaches inside the closures. */
        g_array_set_size(seed, 0);
        int el = (int)(e->nn + j);
        g_array_append_val(seed, el);
        flood(n, e, seed, ends, none, seen);
        mark_segments(n, r.isolated, iso);
        assert_memory_equal(seen, iso, ne);
        /* Dry: supplied before, not after, not shut off. */
        flood(n, e, src, ends, iso, after);
        mark_segments(n, r.dry, dry);
        for (size_t x = 0; x < ne; x++)
            assert_int_equal(dry[x], before[x] && !after[x] && !iso[x]);
        with_dry += r.dry->len > 0;
        gis_iso_result_clear(&r);
    }
    g_array_free(src, TRUE);
    g_array_free(seed, TRUE);
    g_free(iso), g_free(dry), g_free(seen), g_free(before), g_free(after), g_free(none);
    g_free(blocked), g_free(ends);
    elements_free(e);
    return with_dry;
}

static void test_unintended_isolation(void **state)
{
    (void)state;
    struct {
        const char *inp, *layer;
        int keep;
    } nets[] = {
        {"Net3.inp", "valve_layer_random.csv", 0}, {"ky4.inp", NULL, 1}, {"Net6.inp", NULL, 2}};
    for (size_t i = 0; i < G_N_ELEMENTS(nets); i++) {
        gis_pipenet *n = load(nets[i].inp, nets[i].layer);
        if (!nets[i].layer)
            add_layer(n, nets[i].keep, 42);
        int dry = check_every_pipe(n);
        print_message("%s: %zu pipes, %zu valves, %zu segments, %d answers with a dry part\n",
                      nets[i].inp, gis_pipenet_link_count(n), gis_pipenet_valve_count(n),
                      gis_pipenet_segment_count(n), dry);
        assert_true(dry > 0);
        /* Some valves will not turn, some are closed already: still exact. */
        for (size_t v = 0; v < gis_pipenet_valve_count(n); v += 7)
            gis_pipenet_set_valve_state(n, v, v % 14 ? GIS_VALVE_CLOSED : GIS_VALVE_INOPERABLE);
        check_every_pipe(n);
        gis_pipenet_free(n);
    }
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids of a result's parts and valves, for comparing across networks. */
static char *describe(const gis_pipenet *n, const gis_iso_result *r)
{
    json_t *j = gis_iso_result_json(n, r, 0, 0);
    GString *s = g_string_new(NULL);
    GPtrArray *v = g_ptr_array_new_with_free_func(g_free);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(j, "valves"), i, x)
        g_ptr_array_add(v, g_strdup_printf("%s|%s", json_string_value(json_object_get(x, "link")),
                                           json_string_value(json_object_get(x, "node"))));
    g_ptr_array_sort(v, cmp_str);
    for (guint k = 0; k < v->len; k++)
        g_string_append_printf(s, "%s ", (char *)g_ptr_array_index(v, k));
    const char *parts[] = {"isolated", "dry"}, *kinds[] = {"nodes", "links"};
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++) {
            g_ptr_array_set_size(v, 0);
            json_array_foreach(json_object_get(json_object_get(j, parts[p]), kinds[k]), i, x)
                g_ptr_array_add(v, g_strdup(json_string_value(x)));
            g_ptr_array_sort(v, cmp_str);
            g_string_append_printf(s, "\n%s.%s:", parts[p], kinds[k]);
            for (guint m = 0; m < v->len; m++)
                g_string_append_printf(s, " %s", (char *)g_ptr_array_index(v, m));
        }
    g_ptr_array_free(v, TRUE);
    json_decref(j);
    return g_string_free(s, FALSE);
}

static void failed_equals_removed(const char *inp, const char *layer)
{
    gis_pipenet *n = load(inp, layer), *m = load(inp, layer);
    if (!layer)
        add_layer(n, 1, 7), add_layer(m, 1, 7);
    size_t nv = gis_pipenet_valve_count(n), grew = 0;
    for (size_t v = 0; v < nv; v++) {
        const gis_pipe_valve *va = gis_pipenet_valve(n, v);
        int link = va->link, failed = (int)v;
        gis_iso_query q = {
            .link = link, .failed = &failed, .n_failed = 1, .at_x = NAN, .at_y = NAN};
        gis_iso_result a, b;
        assert_int_equal(gis_pipes_isolate(n, &q, &a), 0);
        /* The same burst on a network without that valve, from scratch. */
        const gis_pipe_valve *vb = gis_pipenet_valve(m, v);
        char *lid = g_strdup(gis_pipenet_link(m, (size_t)vb->link)->id);
        char *nid = g_strdup(gis_pipenet_node(m, (size_t)vb->node)->id);
        assert_int_equal(gis_pipenet_remove_valve(m, v), 0);
        gis_iso_query qb = {.link = link, .at_x = NAN, .at_y = NAN};
        assert_int_equal(gis_pipes_isolate(m, &qb, &b), 0);
        char *da = describe(n, &a), *db = describe(m, &b);
        assert_string_equal(da, db);
        gis_iso_query q0 = {.link = link, .at_x = NAN, .at_y = NAN};
        gis_iso_result c;
        assert_int_equal(gis_pipes_isolate(n, &q0, &c), 0);
        grew += a.isolated_links > c.isolated_links;
        gis_iso_result_clear(&c);
        g_free(da), g_free(db);
        gis_iso_result_clear(&a), gis_iso_result_clear(&b);
        /* Put it back (under a new id) for the next round. */
        char id[32];
        g_snprintf(id, sizeof id, "again-%zu", v);
        assert_true(gis_pipenet_add_valve(m, id, lid, nid, GIS_VALVE_OPEN, NULL) >= 0);
        g_free(lid), g_free(nid);
    }
    print_message("%s: %zu valves failed one by one, %zu answers grew\n", inp, nv, grew);
    assert_true(grew > nv / 4);
    gis_pipenet_free(n);
    gis_pipenet_free(m);
}

static void test_failed_valve(void **state)
{
    (void)state;
    failed_equals_removed("Net3.inp", "valve_layer_random.csv");
    failed_equals_removed("Net3.inp", "valve_layer_stategic_1.csv");
    failed_equals_removed("ky4.inp", NULL);
}

/* A small line: reservoir R - a - b - c - d with valves; customers on it. */
static void test_small_line(void **state)
{
    (void)state;
    gis_pipenet *n = gis_pipenet_new("line", "water");
    const char *nodes[] = {"R", "a", "b", "c", "d"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(gis_pipenet_add_node(n, nodes[i],
                                              i ? GIS_NODE_JUNCTION : GIS_NODE_RESERVOIR, i * 100.0,
                                              0, NULL),
                         i);
    const char *links[][3] = {
        {"p1", "R", "a"}, {"p2", "a", "b"}, {"p3", "b", "c"}, {"p4", "c", "d"}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(gis_pipenet_add_link(n, links[i][0], GIS_LINK_PIPE, links[i][1],
                                              links[i][2], 0, 200, NULL, 0, NULL),
                         i);
    assert_true(gis_pipenet_add_valve(n, "v1", "p2", "a", GIS_VALVE_OPEN, NULL) >= 0);
    assert_true(gis_pipenet_add_valve(n, "v2", "p2", "b", GIS_VALVE_OPEN, NULL) >= 0);
    assert_true(gis_pipenet_add_valve(n, "v3", "p4", "c", GIS_VALVE_OPEN, NULL) >= 0);
    assert_true(gis_pipenet_add_customer(n, "h", "General Hospital", "hospital", 1, 350, 5, NULL,
                                         NULL, NULL) >= 0);
    assert_true(gis_pipenet_add_customer(n, "k", "Flat", NULL, 12, 150, 5, "p2", NULL, NULL) >= 0);
    assert_int_equal(gis_pipenet_finish(n, 0, NULL), 0);
    /* The hospital hangs on the nearest pipe, p4. */
    assert_int_equal(gis_pipenet_customer(n, 0)->link, 3);
    gis_iso_query q = {.link = 1, .at_x = NAN, .at_y = NAN};
    gis_iso_result r;
    assert_int_equal(gis_pipes_isolate(n, &q, &r), 0);
    assert_int_equal(r.close->len, 2);
    /* v1 holds back the reservoir's side: it comes first. */
    assert_int_equal(g_array_index(r.close, int, 0), 0);
    assert_int_equal(r.isolated_links, 1);
    assert_true(fabs(r.isolated_length_m - 100) < 1e-9);
    assert_true(fabs(r.isolated_volume_m3 - G_PI * 0.01 * 100) < 1e-9);
    /* c-p3-b and p4-d lose supply: dry, with the hospital. */
    assert_int_equal(r.dry_links, 2);
    assert_int_equal(r.customers, 2);
    assert_int_equal(r.customer_units, 13);
    assert_int_equal(r.priority_customers, 1);
    json_t *j = gis_iso_result_json(n, &r, 1, 10);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(j, "customers"), "priority_list"), 0),
            "name")),
        "General Hospital");
    json_decref(j);
    gis_iso_result_clear(&r);
    /* v1 will not turn: the isolation grows to the reservoir's pipe. */
    gis_pipenet_set_valve_state(n, 0, GIS_VALVE_INOPERABLE);
    assert_int_equal(gis_pipes_isolate(n, &q, &r), 0);
    assert_int_equal(r.isolated_links, 2);
    assert_int_equal(r.passed->len, 1);
    assert_int_equal(r.close->len, 1);
    gis_iso_result_clear(&r);
    /* Two bursts at once: the union, with the closures of both. */
    gis_pipenet_set_valve_state(n, 0, GIS_VALVE_OPEN);
    gis_iso_query two[2] = {{.link = 1, .at_x = NAN, .at_y = NAN},
                            {.link = 3, .at_x = NAN, .at_y = NAN}};
    assert_int_equal(gis_pipes_isolate_many(n, two, 2, &r), 0);
    assert_int_equal(r.isolated_links, 2);
    assert_int_equal(r.dry_links, 1);
    gis_iso_result_clear(&r);
    /* Unknown and removed links are refused; a link removed splits nothing open. */
    q.link = 99;
    assert_int_equal(gis_pipes_isolate(n, &q, &r), CORE_ENOTFOUND);
    gis_iso_result_clear(&r);
    assert_int_equal(gis_pipenet_remove_link(n, 2), 0);
    q.link = 2;
    assert_int_equal(gis_pipes_isolate(n, &q, &r), CORE_EINVAL);
    gis_iso_result_clear(&r);
    assert_int_equal(gis_pipenet_nearest_link(n, 250, 3, 50, NULL), -1);
    assert_int_equal(gis_pipenet_nearest_link(n, 350, 3, 50, NULL), 3);
    gis_pipenet_free(n);
}

static void test_bad_input(void **state)
{
    (void)state;
    gis_pipenet *n = gis_pipenet_new("bad", "gas");
    char *err = NULL;
    assert_int_equal(gis_pipenet_add_node(n, "a", GIS_NODE_JUNCTION, NAN, 0, &err), CORE_EINVAL);
    g_free(err), err = NULL;
    assert_int_equal(gis_pipenet_add_node(n, "a", GIS_NODE_JUNCTION, 0, 0, NULL), 0);
    assert_int_equal(gis_pipenet_add_node(n, "a", GIS_NODE_JUNCTION, 1, 0, &err), CORE_EEXISTS);
    g_free(err), err = NULL;
    assert_int_equal(gis_pipenet_add_link(n, "p", GIS_LINK_PIPE, "a", "zz", 1, 1, NULL, 0, &err),
                     CORE_ENOTFOUND);
    assert_non_null(strstr(err, "zz"));
    g_free(err), err = NULL;
    double bad[4] = {0, 0, INFINITY, 1};
    assert_int_equal(gis_pipenet_add_node(n, "b", GIS_NODE_JUNCTION, 5, 0, NULL), 1);
    assert_int_equal(gis_pipenet_add_link(n, "p", GIS_LINK_PIPE, "a", "b", 0, 1, bad, 2, &err),
                     CORE_EINVAL);
    g_free(err), err = NULL;
    assert_int_equal(gis_pipenet_add_valve(n, NULL, "nope", "a", GIS_VALVE_OPEN, &err),
                     CORE_ENOTFOUND);
    g_free(err), err = NULL;
    /* A file that is not there; a file with no nodes; a geographic check. */
    gis_pipenet *m = NULL;
    assert_int_equal(gis_pipenet_read_inp("/nonexistent.inp", "x", "water", &m, &err), CORE_EIO);
    g_free(err), err = NULL;
    char *tmp = g_build_filename(g_get_tmp_dir(), "citycmd-empty.inp", NULL);
    g_file_set_contents(tmp, "[TITLE]\nnothing\n[PIPES]\n p1 a\n", -1, NULL);
    assert_true(gis_pipenet_read_inp(tmp, "x", "water", &m, &err) < 0);
    assert_non_null(err);
    g_free(err), err = NULL;
    g_file_set_contents(tmp, "link,node\nq,a\n", -1, NULL);
    assert_true(gis_pipenet_read_valves_csv(n, tmp, &err) < 0);
    assert_non_null(strstr(err, "line 2"));
    g_free(err), err = NULL;
    g_unlink(tmp);
    g_free(tmp);
    assert_int_equal(gis_pipenet_add_node(n, "far", GIS_NODE_JUNCTION, 1e9, 0, NULL), 2);
    assert_int_equal(gis_pipenet_finish(n, 1, &err), CORE_EINVAL);
    g_free(err);
    gis_pipenet_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net3_random),
        cmocka_unit_test(test_net3_strategic),
        cmocka_unit_test(test_ccwi17),
        cmocka_unit_test(test_small_line),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_failed_valve),
        cmocka_unit_test(test_unintended_isolation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

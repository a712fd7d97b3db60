/*
 * avl.c — positions per unit: the filters, the newest position, the grid.
 *
 * The grid divides the world into cells of CELL_DEG degrees (about 550 m of
 * latitude); each cell lists the units whose newest position lies in it, and
 * each unit knows its cell and its slot there, so a move is two O(1) edits.
 * A viewport query visits the cells it covers, or every occupied cell when
 * that is fewer (a viewport of the whole world). Loop thread only.
 */
#include "avl.h"

#include "../core/core.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define CELL_DEG 0.005
#define FUTURE_MS (60 * 1000)         /* ahead of the server's clock */
#define STALE_MS (24 * 3600 * 1000LL) /* older than this at receipt */
#define JUMP_GRACE_MS (60 * 1000)     /* after this, any move is plausible */
#define JUMP_MIN_M 100.0              /* moves below this are never jumps */

typedef struct {
    disp_avl_pos p;
    gsize cell;
    guint slot;
} entry;

typedef struct {
    disp_avl_fn fn;
    void *user;
} watcher;

struct disp_avl {
    disp_avl_lookup_fn lookup;
    void *lookup_user;
    GHashTable *units; /* unit id (as pointer) -> entry* */
    GHashTable *cells; /* cell key -> GPtrArray of entry* */
    GArray *watchers;
    uint64_t counted[DISP_AVL_VERDICTS];
};

static const char *const verdict_names[] = {"accepted", "unknown_device", "outdated", "future",
                                            "stale",    "invalid",        "jump"};
G_STATIC_ASSERT(G_N_ELEMENTS(verdict_names) == DISP_AVL_VERDICTS);

const char *disp_avl_verdict_name(disp_avl_verdict v)
{
    return v < DISP_AVL_VERDICTS ? verdict_names[v] : "unknown";
}

static guint cell_x(double lon)
{
    return (guint)floor((lon + 180.0) / CELL_DEG);
}

static guint cell_y(double lat)
{
    return (guint)floor((lat + 90.0) / CELL_DEG);
}

static gsize cell_key(guint x, guint y)
{
    return (gsize)x | (gsize)y << 20;
}

disp_avl *disp_avl_new(disp_avl_lookup_fn lookup, void *user)
{
    disp_avl *a = g_new0(disp_avl, 1);
    a->lookup = lookup;
    a->lookup_user = user;
    a->units = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    a->cells = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                     (GDestroyNotify)g_ptr_array_unref);
    a->watchers = g_array_new(FALSE, FALSE, sizeof(watcher));
    return a;
}

void disp_avl_free(disp_avl *a)
{
    if (!a)
        return;
    g_hash_table_destroy(a->cells);
    g_hash_table_destroy(a->units);
    g_array_free(a->watchers, TRUE);
    g_free(a);
}

static void cell_remove(disp_avl *a, entry *e)
{
    GPtrArray *c = g_hash_table_lookup(a->cells, GSIZE_TO_POINTER(e->cell));
    if (!c)
        return;
    g_ptr_array_remove_index_fast(c, e->slot);
    if (e->slot < c->len)
        ((entry *)c->pdata[e->slot])->slot = e->slot;
    if (c->len == 0)
        g_hash_table_remove(a->cells, GSIZE_TO_POINTER(e->cell));
}

static void cell_add(disp_avl *a, entry *e)
{
    e->cell = cell_key(cell_x(e->p.lon), cell_y(e->p.lat));
    GPtrArray *c = g_hash_table_lookup(a->cells, GSIZE_TO_POINTER(e->cell));
    if (!c) {
        c = g_ptr_array_new();
        g_hash_table_insert(a->cells, GSIZE_TO_POINTER(e->cell), c);
    }
    e->slot = c->len;
    g_ptr_array_add(c, e);
}

/* Metres between two lon/lat points (equirectangular: exact enough for the
 * distances a vehicle covers between two reports). */
static double distance_m(double lon1, double lat1, double lon2, double lat2)
{
    double k = cos((lat1 + lat2) / 2 * G_PI / 180);
    double dx = (lon2 - lon1) * 111320.0 * k, dy = (lat2 - lat1) * 110540.0;
    return sqrt(dx * dx + dy * dy);
}

static disp_avl_verdict check(const entry *last, const disp_gps_fix *f, int64_t now_ms)
{
    if (!f->valid || (f->lon == 0 && f->lat == 0) || !isfinite(f->lon) || !isfinite(f->lat))
        return DISP_AVL_INVALID;
    if (f->fix_ms > now_ms + FUTURE_MS)
        return DISP_AVL_FUTURE;
    if (f->fix_ms < now_ms - STALE_MS)
        return DISP_AVL_STALE;
    if (!last)
        return DISP_AVL_ACCEPTED;
    if (f->fix_ms <= last->p.fix_ms)
        return DISP_AVL_OUTDATED;
    int64_t dt = f->fix_ms - last->p.fix_ms;
    double d = distance_m(last->p.lon, last->p.lat, f->lon, f->lat);
    if (d > JUMP_MIN_M && dt < JUMP_GRACE_MS && d / (dt / 1000.0) * 3.6 > DISP_AVL_MAX_KMH)
        return DISP_AVL_JUMP;
    return DISP_AVL_ACCEPTED;
}

int disp_avl_known(disp_avl *a, const char *device)
{
    const char *agency = "";
    return a->lookup && a->lookup(device, &agency, a->lookup_user) > 0;
}

disp_avl_verdict disp_avl_report(disp_avl *a, const disp_gps_fix *fix, int64_t now_ms)
{
    const char *agency = "";
    int64_t unit = a->lookup ? a->lookup(fix->device, &agency, a->lookup_user) : 0;
    return disp_avl_report_unit(a, unit, agency, fix, now_ms);
}

disp_avl_verdict disp_avl_report_unit(disp_avl *a, int64_t unit, const char *agency,
                                      const disp_gps_fix *fix, int64_t now_ms)
{
    disp_avl_verdict v = DISP_AVL_UNKNOWN_DEVICE;
    entry *e = NULL;
    if (unit > 0) {
        e = g_hash_table_lookup(a->units, GSIZE_TO_POINTER((gsize)unit));
        v = check(e, fix, now_ms);
    }
    a->counted[v]++;
    if (v != DISP_AVL_ACCEPTED)
        return v;
    int new_cell = 1;
    if (e) {
        new_cell = e->cell != cell_key(cell_x(fix->lon), cell_y(fix->lat));
        if (new_cell)
            cell_remove(a, e);
    } else {
        e = g_new0(entry, 1);
        g_hash_table_insert(a->units, GSIZE_TO_POINTER((gsize)unit), e);
    }
    disp_avl_pos *p = &e->p;
    p->unit_id = unit;
    g_strlcpy(p->device, fix->device, sizeof p->device);
    g_strlcpy(p->agency, agency ? agency : "", sizeof p->agency);
    p->fix_ms = fix->fix_ms;
    p->recv_ms = now_ms;
    p->lon = fix->lon;
    p->lat = fix->lat;
    p->speed_kmh = fix->speed_kmh;
    p->course_deg = fix->course_deg;
    if (new_cell)
        cell_add(a, e);
    for (guint i = 0; i < a->watchers->len; i++) {
        watcher *w = &g_array_index(a->watchers, watcher, i);
        w->fn(p, w->user);
    }
    return v;
}

void disp_avl_watch(disp_avl *a, disp_avl_fn fn, void *user)
{
    watcher w = {fn, user};
    g_array_append_val(a->watchers, w);
}

void disp_avl_unwatch(disp_avl *a, disp_avl_fn fn, void *user)
{
    for (guint i = 0; i < a->watchers->len; i++) {
        watcher *w = &g_array_index(a->watchers, watcher, i);
        if (w->fn == fn && w->user == user) {
            g_array_remove_index(a->watchers, i);
            return;
        }
    }
}

const disp_avl_pos *disp_avl_get(const disp_avl *a, int64_t unit_id)
{
    entry *e = g_hash_table_lookup(a->units, GSIZE_TO_POINTER((gsize)unit_id));
    return e ? &e->p : NULL;
}

static int inside(const disp_avl_pos *p, const double *b)
{
    return !b || (p->lon >= b[0] && p->lon <= b[2] && p->lat >= b[1] && p->lat <= b[3]);
}

static void visit(GPtrArray *c, const double *bbox, disp_avl_fn fn, void *user)
{
    for (guint i = 0; c && i < c->len; i++) {
        const disp_avl_pos *p = &((entry *)c->pdata[i])->p;
        if (inside(p, bbox))
            fn(p, user);
    }
}

void disp_avl_foreach(const disp_avl *a, const double *bbox, disp_avl_fn fn, void *user)
{
    if (bbox) {
        guint x0 = cell_x(MAX(bbox[0], -180)), x1 = cell_x(MIN(bbox[2], 180));
        guint y0 = cell_y(MAX(bbox[1], -90)), y1 = cell_y(MIN(bbox[3], 90));
        double cells = ((double)x1 - x0 + 1) * ((double)y1 - y0 + 1);
        if (cells <= g_hash_table_size(a->cells)) {
            for (guint y = y0; y <= y1; y++)
                for (guint x = x0; x <= x1; x++)
                    visit(g_hash_table_lookup(a->cells, GSIZE_TO_POINTER(cell_key(x, y))), bbox, fn,
                          user);
            return;
        }
    }
    GHashTableIter it;
    gpointer c;
    g_hash_table_iter_init(&it, a->cells);
    while (g_hash_table_iter_next(&it, NULL, &c))
        visit(c, bbox, fn, user);
}

unsigned disp_avl_count(const disp_avl *a)
{
    return g_hash_table_size(a->units);
}

uint64_t disp_avl_counted(const disp_avl *a, disp_avl_verdict v)
{
    return v < DISP_AVL_VERDICTS ? a->counted[v] : 0;
}

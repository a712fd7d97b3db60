/*
 * ws_units.c — the "units" topic of the WebSocket: where the units are.
 *
 * Positions arrive far more often than a screen needs them (a fleet of
 * thousands reporting every few seconds), so nothing is sent per position.
 * An accepted position (dispatch/avl) or a change of a unit (unit.* events:
 * status, call sign, removal) only marks the unit dirty and arms a tick of
 * --ws-units-interval ms.
 *
 * Each subscribed client's view is registered in a grid of VIEW_CELL_DEG
 * cells over its viewport (a viewport of more than MAX_VIEW_CELLS cells, or
 * none, is "wide" and hears of every unit). At the tick each dirty unit is
 * offered to the views registered in its cell and in the cell it was last
 * offered from: a view that can see it (inside the viewport, and role and
 * agency allow) owes it to its client; a view that held it and no longer
 * can owes its removal. So a tick costs what it delivers, not the size of
 * every viewport. Then each client that is owed something gets one message:
 * the units with their newest position and status, and the ids that left.
 * A unit's JSON is made once per tick and shared by every client that gets
 * it.
 *
 * What a view owes is kept until its client takes the message: a client
 * that has not taken its last one gets it replaced by one carrying
 * everything since the one it did take, the newest state of each unit,
 * never a backlog.
 *
 * Loop thread only.
 */
#include "ws_client.h"

#include "../core/core.h"
#include "../dispatch/avl.h"
#include "../gis/gis.h"
#include "../dispatch/units.h"

#include <math.h>
#include <string.h>

#define ID_KEY(id) GSIZE_TO_POINTER((gsize)(id))
#define VIEW_CELL_DEG 0.01 /* about 1 km */
#define MAX_VIEW_CELLS 1024
#define NO_CELL ((gsize)-1)

static gsize cell_of(double lon, double lat)
{
    if (!isfinite(lon) || !isfinite(lat))
        return NO_CELL;
    gsize x = (gsize)floor((lon + 180.0) / VIEW_CELL_DEG),
          y = (gsize)floor((lat + 90.0) / VIEW_CELL_DEG);
    return x | y << 20;
}

void ws_units_view_init(ws_units_view *v, const int *has_bbox, const double *bbox,
                        core_session *const *session)
{
    memset(v, 0, sizeof *v);
    v->shown = g_hash_table_new(g_direct_hash, g_direct_equal);
    v->owed = g_hash_table_new(g_direct_hash, g_direct_equal);
    v->owed_removed = g_hash_table_new(g_direct_hash, g_direct_equal);
    v->has_bbox_of = has_bbox;
    v->bbox_of = bbox;
    v->session_of = session;
}

static const double *view_bbox(const ws_units_view *v)
{
    return *v->has_bbox_of ? v->bbox_of : NULL;
}

/* ---- the grid of views ---- */

static void unregister(web_server *srv, ws_units_view *v)
{
    if (!v->registered)
        return;
    if (v->wide) {
        g_ptr_array_remove_fast(srv->units_wide, v);
    } else {
        for (guint i = 0; i < v->cells->len; i++) {
            gsize k = g_array_index(v->cells, gsize, i);
            GPtrArray *list = g_hash_table_lookup(srv->units_views, GSIZE_TO_POINTER(k));
            g_ptr_array_remove_fast(list, v);
            if (!list->len)
                g_hash_table_remove(srv->units_views, GSIZE_TO_POINTER(k));
        }
        g_array_set_size(v->cells, 0);
    }
    v->registered = v->wide = 0;
}

static void register_view(web_server *srv, ws_units_view *v)
{
    unregister(srv, v);
    const double *b = view_bbox(v);
    double nx = b ? floor((b[2] + 180) / VIEW_CELL_DEG) - floor((b[0] + 180) / VIEW_CELL_DEG) + 1
                  : 0,
           ny = b ? floor((b[3] + 90) / VIEW_CELL_DEG) - floor((b[1] + 90) / VIEW_CELL_DEG) + 1 : 0;
    v->registered = 1;
    if (!b || nx * ny > MAX_VIEW_CELLS) {
        v->wide = 1;
        g_ptr_array_add(srv->units_wide, v);
        return;
    }
    if (!v->cells)
        v->cells = g_array_new(FALSE, FALSE, sizeof(gsize));
    gsize x0 = (gsize)floor((b[0] + 180) / VIEW_CELL_DEG),
          y0 = (gsize)floor((b[1] + 90) / VIEW_CELL_DEG);
    for (gsize y = y0; y < y0 + (gsize)ny; y++)
        for (gsize x = x0; x < x0 + (gsize)nx; x++) {
            gsize k = x | y << 20;
            GPtrArray *list = g_hash_table_lookup(srv->units_views, GSIZE_TO_POINTER(k));
            if (!list) {
                list = g_ptr_array_new();
                g_hash_table_insert(srv->units_views, GSIZE_TO_POINTER(k), list);
            }
            g_ptr_array_add(list, v);
            g_array_append_val(v->cells, k);
        }
}

void ws_units_view_leave(web_server *srv, ws_units_view *v)
{
    unregister(srv, v);
    g_hash_table_remove_all(v->shown);
    g_hash_table_remove_all(v->owed);
    g_hash_table_remove_all(v->owed_removed);
}

void ws_units_view_clear(web_server *srv, ws_units_view *v)
{
    if (!v->shown)
        return;
    unregister(srv, v);
    g_hash_table_destroy(v->shown);
    g_hash_table_destroy(v->owed);
    g_hash_table_destroy(v->owed_removed);
    if (v->cells)
        g_array_free(v->cells, TRUE);
    v->shown = v->owed = v->owed_removed = NULL;
    v->cells = NULL;
}

static int in_box(const disp_avl_pos *p, const double *bbox)
{
    return !bbox ||
           (p->lon >= bbox[0] && p->lon <= bbox[2] && p->lat >= bbox[1] && p->lat <= bbox[3]);
}

/* Inside the viewport: its box, and its district's area when it is one. */
static int in_view(web_server *srv, const ws_units_view *v, const disp_avl_pos *p,
                   const double *bbox)
{
    return in_box(p, bbox) &&
           (!v->district || gis_district_contains(srv->deps.city, v->district, p->lon, p->lat));
}

/* The unit as screens see it: registry fields and the newest position. */
static char *unit_text(web_server *srv, const disp_avl_pos *p)
{
    const disp_unit_info *u = srv->deps.units ? disp_units_get(srv->deps.units, p->unit_id) : NULL;
    char at[32], id[32];
    core_iso8601(p->fix_ms, at, sizeof at);
    g_snprintf(id, sizeof id, "U-%" G_GINT64_FORMAT, p->unit_id);
    json_t *j = json_pack("{sssfsfss}", "id", id, "lon", p->lon, "lat", p->lat, "fix_at", at);
    json_object_set_new(j, "speed_kmh",
                        isfinite(p->speed_kmh) ? json_real(round(p->speed_kmh * 10) / 10)
                                               : json_null());
    json_object_set_new(j, "course",
                        isfinite(p->course_deg) ? json_real(round(p->course_deg)) : json_null());
    json_object_set_new(j, "agency", json_string(p->agency));
    if (u) {
        json_object_set_new(j, "call_sign", json_string(u->call_sign));
        json_object_set_new(j, "kind", json_string(u->kind));
        json_object_set_new(j, "status", json_string(u->status));
        json_object_set_new(j, "primary", json_string(u->primary));
        if (u->incident_id) {
            char inc[32];
            g_snprintf(inc, sizeof inc, "I-%" G_GINT64_FORMAT, u->incident_id);
            json_object_set_new(j, "incident", json_string(inc));
        }
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(j);
    return s;
}

static int may_see(web_server *srv, const core_session *s, const disp_avl_pos *p)
{
    if (!s)
        return 0;
    /* A unit no longer in the registry is no longer shown. */
    if (srv->deps.units && !disp_units_get(srv->deps.units, p->unit_id))
        return 0;
    return core_may(s, CORE_ACT_UNITS_READ, p->agency);
}

typedef struct {
    web_server *srv;
    ws_units_view *v;
    const core_session *s;
    const double *bbox;
    GHashTable *snippets; /* unit id -> its text this tick */
    GString *out;
    int n;
} pass;

static void add(pass *a, const disp_avl_pos *p)
{
    if (!in_view(a->srv, a->v, p, a->bbox) || !may_see(a->srv, a->s, p))
        return;
    const char *t = g_hash_table_lookup(a->snippets, ID_KEY(p->unit_id));
    if (!t) {
        t = unit_text(a->srv, p);
        g_hash_table_insert(a->snippets, ID_KEY(p->unit_id), (gpointer)t);
    }
    g_string_append(a->out, a->n++ ? "," : "");
    g_string_append(a->out, t);
    g_hash_table_add(a->v->shown, ID_KEY(p->unit_id));
    g_hash_table_remove(a->v->owed_removed, ID_KEY(p->unit_id));
    /* Where the screens holding it will look for it when it moves. */
    g_hash_table_insert(a->srv->units_cell, ID_KEY(p->unit_id),
                        GSIZE_TO_POINTER(cell_of(p->lon, p->lat)));
}

static void add_pos(const disp_avl_pos *p, void *user)
{
    add(user, p);
}

static GBytes *frame_of(GString *s)
{
    gsize n = s->len;
    guint8 *b = g_malloc(LWS_PRE + n);
    memcpy(b + LWS_PRE, s->str, n);
    g_string_free(s, TRUE);
    return g_bytes_new_take(b, LWS_PRE + n);
}

GBytes *ws_units_snapshot(web_server *srv, ws_units_view *v)
{
    ws_units_view_leave(srv, v);
    register_view(srv, v);
    const double *bbox = view_bbox(v);
    GHashTable *snippets = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, free);
    pass a = {srv,  v,        *v->session_of,
              bbox, snippets, g_string_new("{\"type\":\"units.snapshot\",\"data\":{\"units\":["),
              0};
    if (srv->deps.avl)
        disp_avl_foreach(srv->deps.avl, bbox, add_pos, &a);
    g_string_append(a.out, "],\"bbox\":");
    if (bbox)
        g_string_append_printf(a.out, "[%.12g,%.12g,%.12g,%.12g]", bbox[0], bbox[1], bbox[2],
                               bbox[3]);
    else
        g_string_append(a.out, "null");
    g_string_append(a.out, "}}");
    g_hash_table_destroy(snippets);
    return frame_of(a.out);
}

/* ---- the tick ---- */

void ws_units_view_begin(ws_units_view *v, int still_queued)
{
    if (still_queued)
        return;
    if (g_hash_table_size(v->owed))
        g_hash_table_remove_all(v->owed);
    if (g_hash_table_size(v->owed_removed))
        g_hash_table_remove_all(v->owed_removed);
}

static void offer(web_server *srv, ws_units_view *v, const disp_avl_pos *p, int64_t id)
{
    gpointer k = ID_KEY(id);
    if (p && in_view(srv, v, p, view_bbox(v)) && may_see(srv, *v->session_of, p)) {
        g_hash_table_add(v->owed, k);
        g_hash_table_remove(v->owed_removed, k);
        g_hash_table_add(v->shown, k);
    } else if (g_hash_table_remove(v->shown, k)) {
        g_hash_table_remove(v->owed, k);
        g_hash_table_add(v->owed_removed, k);
    } else {
        return;
    }
    v->touched = 1;
}

static void offer_list(web_server *srv, GPtrArray *list, const disp_avl_pos *p, int64_t id)
{
    for (guint i = 0; list && i < list->len; i++)
        offer(srv, list->pdata[i], p, id);
}

void ws_units_collect(web_server *srv)
{
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, srv->units_dirty);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        int64_t id = (int64_t)GPOINTER_TO_SIZE(k);
        const disp_avl_pos *p = srv->deps.avl ? disp_avl_get(srv->deps.avl, id) : NULL;
        gsize now = p ? cell_of(p->lon, p->lat) : NO_CELL;
        gpointer was_p = NULL;
        gsize was = g_hash_table_lookup_extended(srv->units_cell, k, NULL, &was_p)
                        ? GPOINTER_TO_SIZE(was_p)
                        : NO_CELL;
        if (now != NO_CELL)
            offer_list(srv, g_hash_table_lookup(srv->units_views, GSIZE_TO_POINTER(now)), p, id);
        if (was != NO_CELL && was != now)
            offer_list(srv, g_hash_table_lookup(srv->units_views, GSIZE_TO_POINTER(was)), p, id);
        offer_list(srv, srv->units_wide, p, id);
        if (now != NO_CELL)
            g_hash_table_insert(srv->units_cell, k, GSIZE_TO_POINTER(now));
        else
            g_hash_table_remove(srv->units_cell, k);
    }
    g_hash_table_remove_all(srv->units_dirty);
}

GBytes *ws_units_message(web_server *srv, ws_units_view *v, GHashTable *snippets)
{
    if (!v->touched)
        return NULL;
    v->touched = 0;
    pass a = {srv,
              v,
              *v->session_of,
              view_bbox(v),
              snippets,
              g_string_new("{\"type\":\"units\",\"data\":{\"units\":["),
              0};
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, v->owed);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        const disp_avl_pos *p = disp_avl_get(srv->deps.avl, (int64_t)GPOINTER_TO_SIZE(k));
        if (p)
            add(&a, p);
    }
    g_string_append(a.out, "],\"removed\":[");
    int removed = 0;
    g_hash_table_iter_init(&it, v->owed_removed);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_string_append_printf(a.out, "%s\"U-%" G_GSIZE_FORMAT "\"", removed++ ? "," : "",
                               GPOINTER_TO_SIZE(k));
    g_string_append(a.out, "]}}");
    if (!a.n && !removed) {
        g_string_free(a.out, TRUE);
        return NULL;
    }
    return frame_of(a.out);
}

/* ---- what changed ---- */

/* The next tick comes one interval after the last one began, not after it
 * ended: a tick that takes a while (a thousand screens) does not stretch the
 * period, and a change after a quiet spell goes out at once. */
static void mark(web_server *srv, int64_t unit)
{
    g_hash_table_add(srv->units_dirty, ID_KEY(unit));
    ws_rec_changed(srv);
    if (srv->units_timer)
        return;
    int64_t since_ms = (core_mono_us() - srv->units_tick_us) / 1000;
    int64_t wait = srv->cfg->ws_units_interval - since_ms;
    srv->units_timer =
        g_timeout_add((guint)CLAMP(wait, 0, srv->cfg->ws_units_interval), web_ws__units_tick, srv);
}

static void on_position(const disp_avl_pos *p, void *user)
{
    mark(user, p->unit_id);
}

static void on_unit_event(core_event *ev, void *user)
{
    web_server *srv = user;
    if (!g_str_has_prefix(ev->subject, "unit/"))
        return;
    int64_t id = g_ascii_strtoll(ev->subject + 5, NULL, 10);
    if (id > 0 && srv->deps.avl && disp_avl_get(srv->deps.avl, id))
        mark(srv, id);
}

void ws_units_init(web_server *srv)
{
    srv->units_dirty = g_hash_table_new(g_direct_hash, g_direct_equal);
    srv->units_cell = g_hash_table_new(g_direct_hash, g_direct_equal);
    srv->units_views = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                             (GDestroyNotify)g_ptr_array_unref);
    srv->units_wide = g_ptr_array_new();
    if (srv->deps.avl)
        disp_avl_watch(srv->deps.avl, on_position, srv);
    srv->units_sub = core_bus_subscribe(srv->deps.bus, "unit.", on_unit_event, srv);
}

void ws_units_fini(web_server *srv)
{
    if (srv->deps.avl)
        disp_avl_unwatch(srv->deps.avl, on_position, srv);
    if (srv->units_sub)
        core_bus_unsubscribe(srv->deps.bus, srv->units_sub);
    srv->units_sub = 0;
    if (srv->units_timer)
        g_source_remove(srv->units_timer);
    srv->units_timer = 0;
    if (srv->rec_timer)
        g_source_remove(srv->rec_timer);
    srv->rec_timer = 0;
    if (srv->units_dirty) {
        g_hash_table_destroy(srv->units_dirty);
        g_hash_table_destroy(srv->units_cell);
        g_hash_table_destroy(srv->units_views);
        g_ptr_array_unref(srv->units_wide);
    }
    srv->units_dirty = srv->units_cell = srv->units_views = NULL;
    srv->units_wide = NULL;
}

/* The units tick: each subscribed client gets what changed in its view. */
gboolean web_ws__units_tick(gpointer p)
{
    web_server *srv = p;
    srv->units_timer = 0;
    srv->units_tick_us = core_mono_us();
    /* A client still holding its last message queued gets it replaced by
     * one that also carries what that one did: the newest state of each
     * unit, never a backlog. */
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (c->sub_units)
            ws_units_view_begin(&c->uview, g_hash_table_contains(c->keyed, ID_KEY(UNITS_KEY)));
    }
    ws_units_collect(srv);
    GHashTable *snippets = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, free);
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (!c->sub_units || c->closing || !c->session)
            continue;
        GBytes *f = ws_units_message(srv, &c->uview, snippets);
        if (f) {
            ws_enqueue(c, f, UNITS_KEY, Q_DIRECT);
            g_bytes_unref(f);
            ws_write_now(c);
        }
    }
    g_hash_table_destroy(snippets);
    return G_SOURCE_REMOVE;
}

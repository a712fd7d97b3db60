/*
 * ws_units.c — the "units" topic of the WebSocket: where the units are.
 *
 * Positions arrive far more often than a screen needs them (a fleet of
 * thousands reporting every few seconds), so nothing is sent per position.
 * An accepted position (dispatch/avl) or a change of a unit (unit.* events:
 * status, call sign, removal) only marks the unit dirty and arms a tick of
 * --ws-units-interval ms. At the tick each subscribed client gets one
 * message: the dirty units inside its viewport that it may read (role and
 * agency), each with its newest position and status, and the ids of the
 * units it held that left its view. A unit's JSON is made once per tick
 * and shared by every client that gets it. So a client gets at most one
 * message per tick whatever the fleet does, and a slow client's queue holds
 * at most the newest state per tick.
 *
 * Each client's view keeps the ids it holds. Loop thread only.
 */
#include "internal.h"

#include "../core/core.h"
#include "../dispatch/avl.h"
#include "../gis/gis.h"
#include "../dispatch/units.h"

#include <math.h>
#include <string.h>

#define ID_KEY(id) GSIZE_TO_POINTER((gsize)(id))

void ws_units_view_init(ws_units_view *v)
{
    v->shown = g_hash_table_new(g_direct_hash, g_direct_equal);
    v->owed = g_hash_table_new(g_direct_hash, g_direct_equal);
    v->owed_removed = g_hash_table_new(g_direct_hash, g_direct_equal);
}

void ws_units_view_clear(ws_units_view *v)
{
    if (v->shown) {
        g_hash_table_destroy(v->shown);
        g_hash_table_destroy(v->owed);
        g_hash_table_destroy(v->owed_removed);
    }
    v->shown = v->owed = v->owed_removed = NULL;
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
    GHashTable *dirty;    /* NULL: every unit (a snapshot) */
    GHashTable *snippets; /* unit id -> its text this tick */
    GString *out;
    int n;
} pass;

static void add(pass *a, const disp_avl_pos *p)
{
    if ((a->dirty && !g_hash_table_contains(a->dirty, ID_KEY(p->unit_id))) ||
        !in_view(a->srv, a->v, p, a->bbox) || !may_see(a->srv, a->s, p))
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

GBytes *ws_units_snapshot(web_server *srv, ws_units_view *v, const core_session *s,
                          const double *bbox)
{
    g_hash_table_remove_all(v->shown);
    g_hash_table_remove_all(v->owed);
    g_hash_table_remove_all(v->owed_removed);
    GHashTable *snippets = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, free);
    pass a = {srv,
              v,
              s,
              bbox,
              NULL,
              snippets,
              g_string_new("{\"type\":\"units.snapshot\",\"data\":{\"units\":["),
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

GBytes *ws_units_changes(web_server *srv, ws_units_view *v, const core_session *s,
                         const double *bbox, GHashTable *dirty, GHashTable *snippets,
                         int still_queued)
{
    if (!still_queued) {
        g_hash_table_remove_all(v->owed);
        g_hash_table_remove_all(v->owed_removed);
    }
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, dirty);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_hash_table_add(v->owed, k);
    dirty = v->owed;
    if (!g_hash_table_size(dirty))
        return NULL;
    pass a = {
        srv, v, s, bbox, dirty, snippets, g_string_new("{\"type\":\"units\",\"data\":{\"units\":["),
        0};
    /* A viewport covering few of the dirty units: the grid; else the dirty set. */
    if (bbox && g_hash_table_size(dirty) > 64) {
        disp_avl_foreach(srv->deps.avl, bbox, add_pos, &a);
    } else {
        g_hash_table_iter_init(&it, dirty);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
            const disp_avl_pos *p = disp_avl_get(srv->deps.avl, (int64_t)GPOINTER_TO_SIZE(k));
            if (p)
                add(&a, p);
        }
    }
    /* Held units that changed and can no longer be seen. */
    g_hash_table_iter_init(&it, v->shown);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (!g_hash_table_contains(dirty, k))
            continue;
        const disp_avl_pos *p = disp_avl_get(srv->deps.avl, (int64_t)GPOINTER_TO_SIZE(k));
        if (p && in_view(srv, v, p, bbox) && may_see(srv, s, p))
            continue;
        g_hash_table_add(v->owed_removed, k);
        g_hash_table_iter_remove(&it);
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

static void mark(web_server *srv, int64_t unit)
{
    g_hash_table_add(srv->units_dirty, ID_KEY(unit));
    if (!srv->units_timer)
        srv->units_timer =
            g_timeout_add((guint)srv->cfg->ws_units_interval, web_ws__units_tick, srv);
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
    if (srv->units_dirty)
        g_hash_table_destroy(srv->units_dirty);
    srv->units_dirty = NULL;
}

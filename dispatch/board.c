/*
 * board.c — the live board: every open incident in memory (loop thread).
 *
 * Loaded from the store when the module starts; after that it follows the
 * bus. Every incident event the writer emits carries the incident as it
 * stands after the change (core_event.state), so the board never reads the
 * store again and never sees a change out of order: events arrive in
 * commit order. An event whose incident is closed, cancelled or merged
 * removes it. Watchers (the WebSocket feed) hear of every change.
 */
#include "internal.h"

#include "../core/log.h"

typedef struct {
    disp_live_fn fn;
    void *user;
} watcher;

static void live_free(gpointer p)
{
    disp_live *l = p;
    g_strfreev(l->agencies);
    json_decref(l->incident);
    json_decref(l->changed);
    g_free(l);
}

/* {"id", and every top-level field of now that differs from before}. */
static json_t *changes(const json_t *before, json_t *now)
{
    json_t *d = json_pack("{sO}", "id", json_object_get(now, "id"));
    const char *k;
    json_t *v;
    json_object_foreach(now, k, v) if (!json_equal(v, json_object_get(before, k)))
        json_object_set(d, k, v);
    return d;
}

static int64_t incident_id(const json_t *inc)
{
    const char *id = json_string_value(json_object_get(inc, "id"));
    return id && g_str_has_prefix(id, "I-") ? g_ascii_strtoll(id + 2, NULL, 10) : 0;
}

/* Takes inc. Returns the entry, or NULL when inc is not a usable incident. */
static disp_live *live_put(disp_incidents *d, json_t *inc)
{
    int64_t id = incident_id(inc);
    json_t *loc = json_object_get(inc, "location");
    if (id <= 0 || !json_is_object(loc)) {
        json_decref(inc);
        return NULL;
    }
    disp_live *l = g_hash_table_lookup(d->live, &id);
    json_decref(l ? l->changed : NULL);
    if (!l) {
        l = g_new0(disp_live, 1);
        l->id = id;
        g_hash_table_insert(d->live, &l->id, l);
    } else {
        l->changed = changes(l->incident, inc);
        json_decref(l->incident);
    }
    l->incident = inc;
    l->lon = json_number_value(json_object_get(loc, "lon"));
    l->lat = json_number_value(json_object_get(loc, "lat"));
    if (!l->changed || json_object_get(l->changed, "agency") ||
        json_object_get(l->changed, "joint")) {
        g_strfreev(l->agencies);
        l->agencies = disp_incident_agencies(inc);
    }
    return l;
}

static void notify(disp_incidents *d, const disp_live *l, int gone)
{
    for (guint i = 0; i < d->watchers->len; i++) {
        watcher *w = &g_array_index(d->watchers, watcher, i);
        w->fn(l, gone, w->user);
    }
}

static void on_event(core_event *ev, void *user)
{
    disp_incidents *d = user;
    if (!ev->state || !g_str_has_prefix(ev->subject, "incident/"))
        return;
    const char *status = json_string_value(json_object_get(ev->state, "status"));
    int i = status ? disp__status_index(status) : -1;
    if (i >= 0 && i < 5) {
        disp_live *l = live_put(d, json_incref(ev->state));
        if (l)
            notify(d, l, 0);
        return;
    }
    int64_t id = incident_id(ev->state);
    disp_live *l = g_hash_table_lookup(d->live, &id);
    if (l) {
        /* Watchers see it as it ended. */
        live_put(d, json_incref(ev->state));
        notify(d, l, 1);
        g_hash_table_remove(d->live, &id);
    }
}

static void load(sqlite3 *db, void *arg)
{
    disp_incidents *d = arg;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE closed_ms = 0", -1,
                           &s, NULL) != SQLITE_OK) {
        log_error("board.load", "error=\"%s\"", sqlite3_errmsg(db));
        return;
    }
    while (sqlite3_step(s) == SQLITE_ROW)
        live_put(d, disp__incident_row(s));
    sqlite3_finalize(s);
}

void disp__board_start(disp_incidents *d)
{
    d->live = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, live_free);
    d->watchers = g_array_new(FALSE, FALSE, sizeof(watcher));
    if (core_store_load(d->store, load, d) != 0)
        log_error("board.load", "error=\"cannot read the store\"");
    if (d->bus)
        d->live_sub = core_bus_subscribe(d->bus, "", on_event, d);
}

void disp__board_stop(disp_incidents *d)
{
    if (d->live_sub)
        core_bus_unsubscribe(d->bus, d->live_sub);
    g_hash_table_destroy(d->live);
    g_array_free(d->watchers, TRUE);
}

void disp_live_watch(disp_incidents *d, disp_live_fn fn, void *user)
{
    watcher w = {fn, user};
    g_array_append_val(d->watchers, w);
}

void disp_live_unwatch(disp_incidents *d, disp_live_fn fn, void *user)
{
    for (guint i = 0; i < d->watchers->len; i++) {
        watcher *w = &g_array_index(d->watchers, watcher, i);
        if (w->fn == fn && w->user == user) {
            g_array_remove_index(d->watchers, i);
            return;
        }
    }
}

void disp_live_foreach(disp_incidents *d, disp_live_fn fn, void *user)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, d->live);
    while (g_hash_table_iter_next(&it, NULL, &v))
        fn(v, 0, user);
}

const disp_live *disp_live_get(disp_incidents *d, int64_t id)
{
    return g_hash_table_lookup(d->live, &id);
}

unsigned disp_live_count(const disp_incidents *d)
{
    return g_hash_table_size(d->live);
}

/*
 * ws_board.c — the "incidents" topic of /ws: the live board by viewport (a
 * snapshot, then each change as the fields it changed, keyed by incident;
 * a removal when one ends or leaves the view), who holds which incident
 * (a bit per client slot), and the viewport message for both the incidents
 * and the units topics. Loop thread only.
 */
#include "ws_client.h"

#include "../dispatch/incident.h"

#include <math.h>
#include <string.h>

static int parse_bbox(json_t *v, double out[4])
{
    if (!json_is_array(v) || json_array_size(v) != 4)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        json_t *n = json_array_get(v, i);
        if (!json_is_number(n) || !isfinite(json_number_value(n)))
            return -1;
        out[i] = json_number_value(n);
    }
    return out[0] >= -180 && out[2] <= 180 && out[1] >= -90 && out[3] <= 90 && out[0] < out[2] &&
                   out[1] < out[3]
               ? 0
               : -1;
}

static int live_visible(const ws_client *c, const disp_live *l)
{
    if (c->has_bbox &&
        (l->lon < c->bbox[0] || l->lon > c->bbox[2] || l->lat < c->bbox[1] || l->lat > c->bbox[3]))
        return 0;
    if (c->district && !gis_district_contains(c->srv->deps.city, c->district, l->lon, l->lat))
        return 0;
    return core_may_any(c->session, CORE_ACT_INCIDENTS_READ, l->agencies);
}

/* The viewport of data: "bbox" [w,s,e,n] (null or absent: the whole city)
 * or "district" (an id of /api/v1/gis/districts: its area). 0, or -1 after
 * sending the error. */
int ws_parse_view(ws_client *c, const json_t *re, json_t *data, ws_view *v)
{
    json_t *bbox = json_object_get(data, "bbox"), *district = json_object_get(data, "district");
    memset(v, 0, sizeof *v);
    if (district && !json_is_null(district)) {
        if (!json_is_integer(district) || !c->srv->deps.city ||
            gis_district_bbox(c->srv->deps.city, json_integer_value(district), v->bbox) != 0) {
            ws_send_error(c, re, "invalid_message",
                          "\"data.district\" must be the id of one of the city's districts");
            return -1;
        }
        v->district = json_integer_value(district);
        v->has_bbox = 1;
        return 0;
    }
    if (bbox && !json_is_null(bbox) && parse_bbox(bbox, v->bbox) != 0) {
        ws_send_error(c, re, "invalid_message",
                      "\"data.bbox\" must be [west, south, east, north] in degrees, or null");
        return -1;
    }
    v->has_bbox = bbox && !json_is_null(bbox);
    return 0;
}

void ws_set_view(ws_client *c, const ws_view *v)
{
    c->has_bbox = v->has_bbox;
    memcpy(c->bbox, v->bbox, sizeof c->bbox);
    c->district = v->district;
    c->uview.district = v->district;
}

static GBytes *json_frame(const char *type, json_t *data /* stolen */)
{
    char *s = web_envelope_reply(type, NULL, data);
    GBytes *b = ws_frame_bytes(s, strlen(s));
    free(s);
    return b;
}

/* reason: "ended" (closed, cancelled, merged; with the incident as it
 * ended) or "hidden" (out of the viewport, or no longer readable). */
static GBytes *removed_frame(const disp_live *l, int ended)
{
    json_t *d = json_pack("{sOss}", "id", json_object_get(l->incident, "id"), "reason",
                          ended ? "ended" : "hidden");
    if (ended)
        json_object_set(d, "incident", l->incident);
    return json_frame("incident.removed", d);
}

/* ---- who holds which incident ----
 * Per incident, a bit per client slot: a change costs one lookup, then a
 * bit per client, where a set per client cost a hash lookup per client. */

typedef struct {
    guint n;
    guint64 w[];
} slot_bits;

static slot_bits *holders_of(web_server *srv, int64_t id)
{
    return g_hash_table_lookup(srv->ws_holders, ID_KEY(id));
}

static int holds(const ws_client *c, const slot_bits *b)
{
    guint i = (guint)c->slot / 64;
    return b && i < b->n && ((b->w[i] >> (c->slot % 64)) & 1);
}

static void show(ws_client *c, const disp_live *l)
{
    web_server *srv = c->srv;
    slot_bits *b = holders_of(srv, l->id);
    guint i = (guint)c->slot / 64;
    if (!b || i >= b->n) {
        guint n = MAX(i + 1, srv->ws_slot_words);
        slot_bits *nb = g_malloc0(sizeof *nb + n * sizeof nb->w[0]);
        nb->n = n;
        if (b)
            memcpy(nb->w, b->w, b->n * sizeof b->w[0]);
        g_hash_table_replace(srv->ws_holders, ID_KEY(l->id), nb);
        b = nb;
    }
    if (!holds(c, b)) {
        b->w[i] |= (guint64)1 << (c->slot % 64);
        c->shown++;
    }
}

/* Returns whether the client held it. */
static int unshow(ws_client *c, int64_t id)
{
    slot_bits *b = holders_of(c->srv, id);
    if (!holds(c, b))
        return 0;
    b->w[c->slot / 64] &= ~((guint64)1 << (c->slot % 64));
    c->shown--;
    return 1;
}

void ws_board_unshow_all(ws_client *c)
{
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, c->srv->ws_holders);
    while (c->shown && g_hash_table_iter_next(&it, &k, NULL))
        unshow(c, (int64_t)GPOINTER_TO_SIZE(k));
    c->shown = 0;
}

/* The lowest free slot (the connection count is capped by --ws-max-clients). */
int ws_board_take_slot(web_server *srv)
{
    guint w = 0;
    while (w < srv->ws_slot_map->len && g_array_index(srv->ws_slot_map, guint64, w) == ~(guint64)0)
        w++;
    if (w == srv->ws_slot_map->len) {
        guint64 zero = 0;
        g_array_append_val(srv->ws_slot_map, zero);
        srv->ws_slot_words = srv->ws_slot_map->len;
    }
    guint64 *word = &g_array_index(srv->ws_slot_map, guint64, w);
    int bit = __builtin_ctzll(~*word);
    *word |= (guint64)1 << bit;
    return (int)(w * 64 + (guint)bit);
}

void ws_board_give_slot(web_server *srv, int slot)
{
    g_array_index(srv->ws_slot_map, guint64, slot / 64) &= ~((guint64)1 << (slot % 64));
}

/* A client that holds the incident, with nothing about it still queued,
 * holds the board's previous state: the changed fields bring it up to date.
 * Otherwise it gets the whole state, which also replaces whatever about the
 * incident is still waiting in its queue. */
void ws_board_on_live(const disp_live *l, int gone, void *user)
{
    web_server *srv = user;
    GBytes *full = NULL, *delta = NULL, *rem = NULL;
    int nothing = l->changed && json_object_size(l->changed) <= 1; /* only the id */
    for (GList *it = srv->ws_clients; it; it = it->next) {
        ws_client *c = it->data;
        if (!c->sub_incidents || c->closing || !c->session)
            continue;
        int had = holds(c, holders_of(srv, l->id));
        if (!gone && live_visible(c, l)) {
            int queued =
                g_hash_table_size(c->keyed) > 0 && g_hash_table_contains(c->keyed, ID_KEY(l->id));
            if (had && !queued && l->changed) {
                if (nothing)
                    continue;
                if (!delta)
                    delta = json_frame("incident.changed", json_incref(l->changed));
                ws_enqueue(c, delta, l->id, Q_SOON);
            } else {
                if (!full)
                    full = json_frame("incident", json_incref(l->incident));
                show(c, l);
                ws_enqueue(c, full, l->id, Q_SOON);
            }
        } else if (had) {
            unshow(c, l->id);
            if (!rem)
                rem = removed_frame(l, gone);
            ws_enqueue(c, rem, l->id, Q_SOON);
        }
    }
    if (gone)
        g_hash_table_remove(srv->ws_holders, ID_KEY(l->id));
    if (full)
        g_bytes_unref(full);
    if (delta)
        g_bytes_unref(delta);
    if (rem)
        g_bytes_unref(rem);
}

typedef struct {
    ws_client *c;
    json_t *list; /* snapshot: the visible ones */
    int entered;  /* viewport change: counts */
    int left;
} live_pass;

static void snapshot_one(const disp_live *l, int gone, void *p)
{
    live_pass *a = p;
    (void)gone;
    if (live_visible(a->c, l)) {
        json_array_append(a->list, l->incident);
        show(a->c, l);
    }
}

void ws_board_snapshot(ws_client *c)
{
    web_server *srv = c->srv;
    live_pass a = {.c = c, .list = json_array()};
    ws_board_unshow_all(c);
    disp_live_foreach(srv->deps.incidents, snapshot_one, &a);
    json_t *d =
        json_pack("{soso}", "incidents", a.list, "bbox",
                  c->has_bbox ? json_pack("[ffff]", c->bbox[0], c->bbox[1], c->bbox[2], c->bbox[3])
                              : json_null());
    GBytes *f = json_frame("incidents.snapshot", d);
    ws_enqueue(c, f, 0, Q_FORCE);
    g_bytes_unref(f);
}

static void viewport_one(const disp_live *l, int gone, void *p)
{
    live_pass *a = p;
    (void)gone;
    int had = holds(a->c, holders_of(a->c->srv, l->id));
    if (live_visible(a->c, l)) {
        if (!had) {
            GBytes *f = json_frame("incident", json_incref(l->incident));
            show(a->c, l);
            ws_enqueue(a->c, f, l->id, Q_FORCE);
            g_bytes_unref(f);
            a->entered++;
        }
    } else if (had) {
        unshow(a->c, l->id);
        GBytes *f = removed_frame(l, 0);
        ws_enqueue(a->c, f, l->id, Q_FORCE);
        g_bytes_unref(f);
        a->left++;
    }
}

/* The units in the client's ws_view now (replacing what it held). */
void ws_send_units_snapshot(ws_client *c)
{
    /* A units message still queued would arrive before the snapshot with
     * what the snapshot has anyway: empty it. */
    if (g_hash_table_contains(c->keyed, ID_KEY(UNITS_KEY))) {
        static const char empty[] = "{\"type\":\"units\",\"data\":{\"units\":[],\"removed\":[]}}";
        GBytes *e = ws_frame_bytes(empty, sizeof empty - 1);
        ws_enqueue(c, e, UNITS_KEY, 0);
        g_bytes_unref(e);
    }
    GBytes *f = ws_units_snapshot(c->srv, &c->uview);
    ws_enqueue(c, f, 0, Q_FORCE);
    g_bytes_unref(f);
}

/* {"type":"viewport","data":{"bbox":[w,s,e,n] or null}}: the incidents that
 * came into ws_view arrive, the ones that left are removed, the units in view
 * come as a new snapshot, then the reply. */
void ws_on_viewport(ws_client *c, web_envelope *env)
{
    ws_view v;
    if (ws_parse_view(c, env->id, env->data, &v) != 0)
        return;
    if (!c->sub_incidents && !c->sub_units) {
        ws_send_error(c, env->id, "not_subscribed",
                      "subscribe to \"incidents\" or \"units\" first");
        return;
    }
    ws_set_view(c, &v);
    live_pass a = {.c = c};
    if (c->sub_incidents)
        disp_live_foreach(c->srv->deps.incidents, viewport_one, &a);
    if (c->sub_units)
        ws_send_units_snapshot(c);
    ws_send_text(c, web_envelope_reply("viewport", env->id,
                                       json_pack("{sisisi}", "entered", a.entered, "left", a.left,
                                                 "shown", (int)c->shown)));
}

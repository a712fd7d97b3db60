/*
 * ws_recommend.c — recommendations pushed to the screen that follows an
 * incident (the WebSocket message "recommendations").
 *
 * A screen follows one incident at a time. Its answer (dispatch/recommend)
 * is sent at once, and again whenever units move or change (the units
 * topic's changes arm a tick of REC_TICK_MS), when it differs from the last
 * one sent; a screen that has not taken the previous one gets it replaced.
 * When the incident closes, the screen is told and stops following it.
 * Loop thread.
 */
#include "ws_client.h"

#include "../core/core.h"
#include "../dispatch/plans.h"
#include "../dispatch/recommend.h"

#include <string.h>
#include <time.h>

#define REC_TICK_MS 1000

void ws_rec_clear(ws_rec_watch *w)
{
    g_free(w->last);
    w->last = NULL;
    w->incident = 0;
}

static json_t *compute(web_server *srv, const disp_live *inc, const char **code, const char **why)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    const json_t *plan =
        disp_plans_match(srv->deps.plans, json_string_value(json_object_get(inc->incident, "type")),
                         (int)json_integer_value(json_object_get(inc->incident, "priority")),
                         json_object_get(inc->incident, "districts"), tm.tm_hour);
    return disp_recommend(srv->deps.roads, srv->deps.units, srv->deps.avl, srv->deps.incidents,
                          inc->incident, plan, code, why);
}

json_t *ws_rec_follow(web_server *srv, ws_rec_watch *w, const core_session *s, json_t *data,
                      const char **code, const char **why)
{
    json_t *id = json_object_get(data, "incident");
    ws_rec_clear(w);
    *code = NULL;
    if (!id || json_is_null(id))
        return NULL;
    const char *text = json_string_value(id);
    int64_t n = text && g_str_has_prefix(text, "I-") ? g_ascii_strtoll(text + 2, NULL, 10) : 0;
    const disp_live *inc =
        n > 0 && srv->deps.incidents ? disp_live_get(srv->deps.incidents, n) : NULL;
    if (!inc || !core_may_any(s, CORE_ACT_INCIDENTS_READ, (char **)inc->agencies)) {
        /* One answer for both: an incident one may not read is not told apart. */
        *code = "not_found";
        *why = "\"data.incident\" must be an open incident you may read, or null";
        return NULL;
    }
    if (!srv->deps.roads) {
        *code = "no_road_graph";
        *why = "the server runs without a city road graph";
        return NULL;
    }
    json_t *r = compute(srv, inc, code, why);
    if (!r)
        return NULL;
    w->incident = n;
    w->last = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
    return r;
}

json_t *ws_rec_recompute(web_server *srv, ws_rec_watch *w, const core_session *s,
                         GHashTable *answers)
{
    const disp_live *inc = disp_live_get(srv->deps.incidents, w->incident);
    if (!inc || !core_may_any(s, CORE_ACT_INCIDENTS_READ, (char **)inc->agencies)) {
        json_t *gone = json_pack("{sIsb}", "incident_id", (json_int_t)w->incident, "ended", 1);
        ws_rec_clear(w);
        return gone;
    }
    /* The answer depends on the incident alone (its agencies decide the
     * candidates), so a tick computes it once for all its followers. */
    json_t *r = g_hash_table_lookup(answers, &w->incident);
    if (!r) {
        const char *code, *why;
        r = compute(srv, inc, &code, &why);
        if (!r)
            return NULL;
        g_hash_table_insert(answers, g_memdup2(&w->incident, sizeof w->incident), r);
    }
    json_incref(r);
    char *text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
    if (w->last && strcmp(text, w->last) == 0) {
        free(text);
        json_decref(r);
        return NULL;
    }
    free(w->last);
    w->last = text;
    return r;
}

void ws_rec_changed(web_server *srv)
{
    if (!srv->rec_timer)
        srv->rec_timer = g_timeout_add(REC_TICK_MS, web_ws__rec_tick, srv);
}

/* The recommendations tick: each follower whose incident's answer changed
 * gets the new one, coalesced like the units (the newest only). */
gboolean web_ws__rec_tick(gpointer p)
{
    web_server *srv = p;
    srv->rec_timer = 0;
    GHashTable *answers =
        g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, (GDestroyNotify)json_decref);
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (c->closing || !c->session || !c->rec.incident)
            continue;
        json_t *now = ws_rec_recompute(srv, &c->rec, c->session, answers);
        if (!now)
            continue;
        char *text = web_envelope_reply("recommendations", NULL, now);
        GBytes *f = ws_frame_bytes(text, strlen(text));
        free(text);
        ws_enqueue(c, f, REC_KEY, 0);
        g_bytes_unref(f);
    }
    g_hash_table_destroy(answers);
    return G_SOURCE_REMOVE;
}

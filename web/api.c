/*
 * api.c — the HTTP routes: health, readiness, metrics, events, journal.
 *
 * Handlers validate synchronously and reply 400 naming the field; writes and
 * reads go to the store and reply from its callback. Loop thread only.
 */
#include "internal.h"

#include "../core/core.h"
#include "../dispatch/dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The actor for requests until accounts and sessions exist. */
#define ANONYMOUS "anonymous"

/* Parses an optional integer query parameter within [min, max]; replies 400 on error. */
static int query_int(web_req *req, const char *name, int64_t def, int64_t min, int64_t max,
                     int64_t *out)
{
    const char *v = web_query_get(req, name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || !*v || *end || n < min || n > max) {
        web_reply_error(req, 400, "invalid_parameter",
                        "query parameter '%s' must be an integer from %" G_GINT64_FORMAT
                        " to %" G_GINT64_FORMAT,
                        name, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

static void healthz(web_req *req)
{
    web_reply_json(req, 200, json_pack("{ss}", "status", "ok"));
}

static void readyz(web_req *req)
{
    web_server *srv = req->srv;
    core_store_status_t st;
    core_store_status(srv->deps.store, &st);
    json_t *store = json_pack("{sbsisIsI}", "ok", st.ok, "queued", st.queued, "last_seq",
                              (json_int_t)st.last_seq, "commits", (json_int_t)st.commits);
    if (st.error)
        json_object_set_new(store, "error", json_string(st.error));
    json_t *redis;
    int redis_ok = 1;
    if (srv->deps.redis) {
        core_redis_status_t rs;
        core_redis_status(srv->deps.redis, &rs);
        redis =
            json_pack("{sbsssbsIsI}", "configured", 1, "state", rs.state, "connected", rs.connected,
                      "published_seq", (json_int_t)rs.published_seq, "lag", (json_int_t)rs.lag);
        if (rs.last_error && !rs.connected)
            json_object_set_new(redis, "error", json_string(rs.last_error));
        redis_ok = rs.connected;
    } else {
        redis = json_pack("{sb}", "configured", 0);
    }
    const char *status = !st.ok || srv->draining ? "unready" : redis_ok ? "ready" : "degraded";
    json_t *body = json_pack("{sssoso sI}", "status", status, "store", store, "redis", redis,
                             "uptime_s", (json_int_t)((core_now_ms() - srv->started_ms) / 1000));
    web_reply_json(req, strcmp(status, "unready") == 0 ? 503 : 200, body);
}

static void metrics(web_req *req)
{
    char *text = core_metrics_render();
    web_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8",
              g_bytes_new_take(text, strlen(text)));
}

/* ---- events ---- */

static void events_done(GPtrArray *events, void *arg)
{
    web_req *req = arg;
    GString *out = g_string_new("{\"events\":[");
    for (guint i = 0; i < events->len; i++) {
        if (i)
            g_string_append_c(out, ',');
        g_string_append(out, core_event_json(events->pdata[i]));
    }
    g_string_append_printf(out, "],\"last_seq\":%" G_GINT64_FORMAT "}",
                           core_bus_last_seq(req->srv->deps.bus));
    gsize n = out->len;
    web_reply(req, 200, "application/json", g_bytes_new_take(g_string_free(out, FALSE), n));
}

static void events_list(web_req *req)
{
    int64_t after, limit;
    if (query_int(req, "after", 0, 0, INT64_MAX, &after) ||
        query_int(req, "limit", 100, 1, 1000, &limit))
        return;
    int rc = core_store_read_events(req->srv->deps.store, after, (int)limit, events_done, req);
    if (rc)
        web_reply_core_error(req, rc);
}

/* ---- journal ---- */

static void journal_created(int rc, json_t *entry, void *arg)
{
    web_req *req = arg;
    if (rc) {
        web_reply_core_error(req, rc);
        return;
    }
    char loc[64];
    g_snprintf(loc, sizeof loc, "/api/v1/journal/%" G_GINT64_FORMAT,
               (int64_t)json_integer_value(json_object_get(entry, "id")));
    web_req_add_header(req, "location", loc);
    web_reply_json(req, 201, json_pack("{so}", "entry", entry));
}

static void journal_add(web_req *req)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    char *field = NULL, *message = NULL;
    int rc = disp_journal_add(req->srv->deps.store, body, ANONYMOUS, req->peer, journal_created,
                              req, &field, &message);
    json_decref(body);
    if (rc == CORE_EINVAL) {
        json_t *err = json_pack("{s{ssssss}}", "error", "code", "invalid_field", "message", message,
                                "field", field);
        web_reply_json(req, 400, err);
    } else if (rc) {
        web_reply_core_error(req, rc);
    }
    g_free(field);
    g_free(message);
}

static void journal_listed(int rc, json_t *entries, void *arg)
{
    web_req *req = arg;
    if (rc)
        web_reply_core_error(req, rc);
    else
        web_reply_json(req, 200, json_pack("{so}", "entries", entries));
}

static void journal_list(web_req *req)
{
    int64_t before, limit;
    if (query_int(req, "before", 0, 0, INT64_MAX, &before) ||
        query_int(req, "limit", 50, 1, 500, &limit))
        return;
    int rc = disp_journal_list(req->srv->deps.store, before, (int)limit, journal_listed, req);
    if (rc)
        web_reply_core_error(req, rc);
}

static void journal_got(int rc, json_t *entry, void *arg)
{
    web_req *req = arg;
    if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 404, "not_found", "no journal entry %s",
                        web_param(&req->params, "id"));
    else if (rc)
        web_reply_core_error(req, rc);
    else
        web_reply_json(req, 200, json_pack("{so}", "entry", entry));
}

static void journal_get(web_req *req)
{
    const char *idtext = web_param(&req->params, "id");
    char *end;
    errno = 0;
    long long id = strtoll(idtext, &end, 10);
    if (errno || *end || id <= 0) {
        web_reply_error(req, 400, "invalid_parameter", "journal id must be a positive integer");
        return;
    }
    int rc = disp_journal_get(req->srv->deps.store, id, journal_got, req);
    if (rc)
        web_reply_core_error(req, rc);
}

void web_api_register(web_server *srv)
{
    static const struct {
        web_method m;
        const char *pattern;
        web_handler h;
    } routes[] = {
        {WEB_GET, "/healthz", healthz},
        {WEB_GET, "/readyz", readyz},
        {WEB_GET, "/metrics", metrics},
        {WEB_GET, "/api/v1/events", events_list},
        {WEB_GET, "/api/v1/journal", journal_list},
        {WEB_POST, "/api/v1/journal", journal_add},
        {WEB_GET, "/api/v1/journal/{id}", journal_get},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(routes); i++)
        web_router_add(srv->router, routes[i].m, routes[i].pattern, (void *)routes[i].h);
}

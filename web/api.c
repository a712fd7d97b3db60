/*
 * api.c — the HTTP routes: health, readiness, metrics, events, journal.
 *
 * Handlers validate synchronously and reply 400 naming the field; writes and
 * reads go to the store and reply from its callback. Loop thread only.
 */
#include "internal.h"

#include "../core/core.h"
#include "../dispatch/dispatch.h"

#include <sodium.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

typedef struct {
    web_req *req;
    core_session who; /* a copy: the session may end while the read runs */
} scoped;

static scoped *scoped_new(web_req *req)
{
    scoped *sc = g_new0(scoped, 1);
    sc->req = req;
    sc->who = *req->session;
    sc->who.username = g_strdup(req->session->username);
    sc->who.display_name = NULL;
    sc->who.agency = g_strdup(req->session->agency);
    sc->who.leads = g_strdup(req->session->leads);
    return sc;
}

static void scoped_free(scoped *sc)
{
    g_free(sc->who.username);
    g_free(sc->who.agency);
    g_free(sc->who.leads);
    g_free(sc);
}

static void events_done(GPtrArray *events, void *arg)
{
    scoped *sc = arg;
    web_req *req = sc->req;
    GString *out = g_string_new("{\"events\":[");
    int n = 0;
    for (guint i = 0; i < events->len; i++) {
        if (!core_may_see_event(&sc->who, events->pdata[i]))
            continue;
        if (n++)
            g_string_append_c(out, ',');
        g_string_append(out, core_event_json(events->pdata[i]));
    }
    scoped_free(sc);
    g_string_append_printf(out, "],\"last_seq\":%" G_GINT64_FORMAT "}",
                           core_bus_last_seq(req->srv->deps.bus));
    gsize len = out->len;
    web_reply(req, 200, "application/json", g_bytes_new_take(g_string_free(out, FALSE), len));
}

static void events_list(web_req *req)
{
    int64_t after, limit;
    if (query_int(req, "after", 0, 0, INT64_MAX, &after) ||
        query_int(req, "limit", 100, 1, 1000, &limit))
        return;
    scoped *sc = scoped_new(req);
    int rc = core_store_read_events(req->srv->deps.store, after, (int)limit, events_done, sc);
    if (rc) {
        scoped_free(sc);
        web_reply_core_error(req, rc);
    }
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
    int rc =
        disp_journal_add(req->srv->deps.store, body, req->session->username, req->session->agency,
                         req->peer, journal_created, req, &field, &message);
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
    char **agencies = web_visible_agencies(req);
    int rc =
        disp_journal_list(req->srv->deps.store, agencies, before, (int)limit, journal_listed, req);
    g_strfreev(agencies);
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
    char **agencies = web_visible_agencies(req);
    int rc = disp_journal_get(req->srv->deps.store, agencies, id, journal_got, req);
    g_strfreev(agencies);
    if (rc)
        web_reply_core_error(req, rc);
}

char **web_visible_agencies(const web_req *req)
{
    const core_session *se = req->session;
    if ((se->roles & CORE_ROLE_leader) && se->leads && strcmp(se->leads, "*") == 0)
        return NULL; /* leads every agency */
    GPtrArray *a = g_ptr_array_new();
    g_ptr_array_add(a, g_strdup(se->agency));
    g_ptr_array_add(a, g_strdup("command"));
    if ((se->roles & CORE_ROLE_leader) && se->leads) {
        char **leads = g_strsplit(se->leads, ",", -1);
        for (char **l = leads; *l; l++)
            if (**l)
                g_ptr_array_add(a, g_strdup(*l));
        g_strfreev(leads);
    }
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

/* ---- sessions ---- */

static json_t *session_json(const core_session *s)
{
    char *roles = core_roles_format(s->roles);
    char expires[32];
    core_iso8601(s->expires_ms, expires, sizeof expires);
    json_t *j = json_pack("{s{sIssssssssss}ss}", "user", "id", (json_int_t)s->user_id, "username",
                          s->username, "display_name", s->display_name, "agency", s->agency,
                          "roles", roles, "leads", s->leads ? s->leads : "", "expires_at", expires);
    g_free(roles);
    return j;
}

static void logged_in(int rc, char *token, const core_session *s, void *arg)
{
    web_req *req = arg;
    if (rc == CORE_EINVAL) {
        web_reply_error(req, 401, "invalid_credentials",
                        "wrong username or password, or the account is locked or disabled");
    } else if (rc) {
        web_reply_core_error(req, rc);
    } else {
        json_t *body = session_json(s);
        json_object_set_new(body, "token", json_string(token));
        sodium_memzero(token, strlen(token));
        g_free(token);
        web_reply_json(req, 201, body);
    }
}

static void session_create(web_req *req)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    json_t *u = json_object_get(body, "username"), *p = json_object_get(body, "password");
    if (!json_is_string(u) || !json_is_string(p) || json_string_length(u) > 64 ||
        json_string_length(p) > CORE_PASSWORD_MAX) {
        json_decref(body);
        web_reply_json(req, 400,
                       json_pack("{s{ssssss}}", "error", "code", "invalid_field", "message",
                                 "\"username\" and \"password\" are required strings", "field",
                                 json_is_string(u) ? "password" : "username"));
        return;
    }
    int rc = core_sessions_login(req->srv->deps.sessions, json_string_value(u),
                                 json_string_value(p), req->peer, logged_in, req);
    json_decref(body);
    if (rc)
        web_reply_core_error(req, rc);
}

static void session_current(web_req *req)
{
    web_reply_json(req, 200, session_json(req->session));
}

static void logged_out(int rc, void *arg)
{
    web_req *req = arg;
    if (rc)
        web_reply_core_error(req, rc);
    else
        web_reply(req, 204, "application/json", g_bytes_new_static("", 0));
}

static void session_delete(web_req *req)
{
    int rc = core_sessions_end(req->srv->deps.sessions, req->session, req->peer, logged_out, req);
    if (rc)
        web_reply_core_error(req, rc);
}

/* ---- audit trail ---- */

typedef struct {
    web_req *req;
    char *actor, *action, *outcome;
    int64_t after;
    int limit;
    json_t *rows;
} audit_op;

static void audit_read(sqlite3 *db, void *arg)
{
    audit_op *op = arg;
    op->rows = json_array();
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, at_ms, actor, action, object, source, outcome, detail, hash"
                           " FROM audit WHERE seq > ?1 AND (?2 IS NULL OR actor = ?2)"
                           " AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR outcome = ?4)"
                           " ORDER BY seq LIMIT ?5",
                           -1, &s, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(s, 1, op->after);
    if (op->actor)
        sqlite3_bind_text(s, 2, op->actor, -1, SQLITE_STATIC);
    if (op->action)
        sqlite3_bind_text(s, 3, op->action, -1, SQLITE_STATIC);
    if (op->outcome)
        sqlite3_bind_text(s, 4, op->outcome, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, op->limit);
    while (sqlite3_step(s) == SQLITE_ROW) {
        char at[32];
        core_iso8601(sqlite3_column_int64(s, 1), at, sizeof at);
        json_array_append_new(
            op->rows,
            json_pack("{sIsssssssssssssssss}", "seq", (json_int_t)sqlite3_column_int64(s, 0), "at",
                      at, "actor", sqlite3_column_text(s, 2), "action", sqlite3_column_text(s, 3),
                      "object", sqlite3_column_text(s, 4), "source", sqlite3_column_text(s, 5),
                      "outcome", sqlite3_column_text(s, 6), "detail", sqlite3_column_text(s, 7),
                      "hash", sqlite3_column_text(s, 8)));
    }
    sqlite3_finalize(s);
}

static void audit_done(void *arg)
{
    audit_op *op = arg;
    web_reply_json(op->req, 200, json_pack("{so}", "entries", op->rows));
    g_free(op->actor);
    g_free(op->action);
    g_free(op->outcome);
    g_free(op);
}

static void audit_list(web_req *req)
{
    int64_t after, limit;
    if (query_int(req, "after", 0, 0, INT64_MAX, &after) ||
        query_int(req, "limit", 100, 1, 1000, &limit))
        return;
    const char *outcome = web_query_get(req, "outcome");
    if (outcome && strcmp(outcome, "ok") && strcmp(outcome, "denied") &&
        strcmp(outcome, "failed")) {
        web_reply_error(req, 400, "invalid_parameter", "'outcome' is ok, denied or failed");
        return;
    }
    audit_op *op = g_new0(audit_op, 1);
    op->req = req;
    op->actor = g_strdup(web_query_get(req, "actor"));
    op->action = g_strdup(web_query_get(req, "action"));
    op->outcome = g_strdup(outcome);
    op->after = after;
    op->limit = (int)limit;
    int rc = core_store_read(req->srv->deps.store, audit_read, audit_done, op);
    if (rc) {
        g_free(op->actor);
        g_free(op->action);
        g_free(op->outcome);
        g_free(op);
        web_reply_core_error(req, rc);
    }
}

/* ---- users (read) ---- */

static void users_read(sqlite3 *db, void *arg)
{
    audit_op *op = arg;
    GPtrArray *list = core_users_list(db);
    op->rows = json_array();
    int64_t now = core_now_ms();
    for (guint i = 0; i < list->len; i++) {
        core_user *u = list->pdata[i];
        char *roles = core_roles_format(u->roles);
        json_array_append_new(op->rows,
                              json_pack("{sIsssssssssssb}", "id", (json_int_t)u->id, "username",
                                        u->username, "display_name", u->display_name, "agency",
                                        u->agency, "roles", roles, "leads", u->leads, "state",
                                        u->disabled                ? "disabled"
                                        : u->locked_until_ms > now ? "locked"
                                                                   : "active",
                                        "disabled", u->disabled));
        g_free(roles);
    }
    g_ptr_array_free(list, TRUE);
}

static void users_done(void *arg)
{
    audit_op *op = arg;
    web_reply_json(op->req, 200, json_pack("{so}", "users", op->rows));
    g_free(op);
}

static void users_list(web_req *req)
{
    audit_op *op = g_new0(audit_op, 1);
    op->req = req;
    int rc = core_store_read(req->srv->deps.store, users_read, users_done, op);
    if (rc) {
        g_free(op);
        web_reply_core_error(req, rc);
    }
}

void web_api_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_GET, "/healthz", healthz, WEB_PUBLIC},
        {WEB_GET, "/readyz", readyz, WEB_PUBLIC},
        {WEB_GET, "/metrics", metrics, CORE_ACT_METRICS_READ},
        {WEB_POST, "/api/v1/sessions", session_create, WEB_PUBLIC},
        {WEB_GET, "/api/v1/sessions/current", session_current, WEB_SIGNED_IN},
        {WEB_DELETE, "/api/v1/sessions/current", session_delete, WEB_SIGNED_IN},
        {WEB_GET, "/api/v1/events", events_list, CORE_ACT_EVENTS_READ},
        {WEB_GET, "/api/v1/journal", journal_list, CORE_ACT_JOURNAL_READ},
        {WEB_POST, "/api/v1/journal", journal_add, CORE_ACT_JOURNAL_WRITE},
        {WEB_GET, "/api/v1/journal/{id}", journal_get, CORE_ACT_JOURNAL_READ},
        {WEB_GET, "/api/v1/audit", audit_list, CORE_ACT_AUDIT_READ},
        {WEB_GET, "/api/v1/users", users_list, CORE_ACT_USERS_READ},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(routes); i++)
        web_router_add(srv->router, routes[i].method, routes[i].pattern, (void *)&routes[i]);
}

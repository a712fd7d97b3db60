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
#include <math.h>
#include <stdlib.h>
#include <string.h>

void web_reply_invalid(web_req *req, const char *field, const char *message)
{
    web_reply_json(req, 400,
                   json_pack("{s{ssssss}}", "error", "code", "invalid_field", "message", message,
                             "field", field));
}

int web_path_id(web_req *req, const char *what, int64_t *id)
{
    const char *text = web_param(&req->params, "id");
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v <= 0) {
        web_reply_error(req, 400, "invalid_parameter", "%s id must be a positive integer", what);
        return -1;
    }
    *id = v;
    return 0;
}

/* Parses an optional integer query parameter within [min, max]; replies 400 on error. */
int web_query_int(web_req *req, const char *name, int64_t def, int64_t min, int64_t max,
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

int web_query_double(web_req *req, const char *name, int required, double def, double min,
                     double max, double *out)
{
    const char *v = web_query_get(req, name);
    *out = def;
    if (!v && !required)
        return 0;
    char *end = NULL;
    errno = 0;
    double d = v ? g_ascii_strtod(v, &end) : NAN;
    if (!v || errno || !*v || *end || !isfinite(d) || d < min || d > max) {
        web_reply_error(req, 400, "invalid_parameter",
                        "query parameter '%s' must be a number from %g to %g", name, min, max);
        return -1;
    }
    *out = d;
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
    core_session *who; /* a copy: the session may end while the read runs */
    int64_t after;     /* events: where the page started */
} scoped;

static scoped *scoped_new(web_req *req)
{
    scoped *sc = g_new0(scoped, 1);
    sc->req = req;
    sc->who = core_session_copy(req->session);
    return sc;
}

static void scoped_free(scoped *sc)
{
    core_session_copy_free(sc->who);
    g_free(sc);
}

static void events_done(GPtrArray *events, void *arg)
{
    scoped *sc = arg;
    web_req *req = sc->req;
    GString *out = g_string_new("{\"events\":[");
    int n = 0;
    for (guint i = 0; i < events->len; i++) {
        if (!core_may_see_event(sc->who, events->pdata[i]))
            continue;
        if (n++)
            g_string_append_c(out, ',');
        g_string_append(out, core_event_json(events->pdata[i]));
    }
    /* Filtering can hide a whole page: next_after continues past what was
     * examined, not past what was shown. */
    int64_t next = events->len ? ((core_event *)events->pdata[events->len - 1])->seq : sc->after;
    scoped_free(sc);
    g_string_append_printf(
        out, "],\"next_after\":%" G_GINT64_FORMAT ",\"last_seq\":%" G_GINT64_FORMAT "}", next,
        core_bus_last_seq(req->srv->deps.bus));
    gsize len = out->len;
    web_reply(req, 200, "application/json", g_bytes_new_take(g_string_free(out, FALSE), len));
}

static void events_list(web_req *req)
{
    int64_t after, limit;
    if (web_query_int(req, "after", 0, 0, INT64_MAX, &after) ||
        web_query_int(req, "limit", 100, 1, 1000, &limit))
        return;
    scoped *sc = scoped_new(req);
    sc->after = after;
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
        web_reply_invalid(req, field, message);
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
    if (web_query_int(req, "before", 0, 0, INT64_MAX, &before) ||
        web_query_int(req, "limit", 50, 1, 500, &limit))
        return;
    char **agencies = core_readable_agencies(req->session, CORE_ACT_JOURNAL_READ);
    int rc =
        disp_journal_list(req->srv->deps.store, agencies, before, (int)limit, journal_listed, req);
    g_strfreev(agencies);
    if (rc)
        web_reply_core_error(req, rc);
}

static void journal_got(int rc, json_t *entry, void *arg)
{
    scoped *sc = arg;
    web_req *req = sc->req;
    const char *agency = entry ? json_string_value(json_object_get(entry, "agency")) : NULL;
    if (!rc && !core_may(sc->who, CORE_ACT_JOURNAL_READ, agency)) {
        web_reply_forbidden(req, sc->who->username, "journal.read", req->path);
        json_decref(entry);
    } else if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 404, "not_found", "no journal entry %s",
                        web_param(&req->params, "id"));
    else if (rc)
        web_reply_core_error(req, rc);
    else
        web_reply_json(req, 200, json_pack("{so}", "entry", entry));
    scoped_free(sc);
}

static void journal_get(web_req *req)
{
    int64_t id;
    if (web_path_id(req, "journal", &id))
        return;
    scoped *sc = scoped_new(req);
    int rc = disp_journal_get(req->srv->deps.store, id, journal_got, sc);
    if (rc) {
        scoped_free(sc);
        web_reply_core_error(req, rc);
    }
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
        int user_bad = !json_is_string(u) || json_string_length(u) > 64;
        web_reply_invalid(req, user_bad ? "username" : "password",
                          user_bad ? "\"username\" is a required string of at most 64 bytes"
                                   : "\"password\" is a required string of at most 512 bytes");
        json_decref(body);
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
    static const char *const names[] = {"actor",   "action", "object", "source",
                                        "outcome", "detail", "hash"};
    while (sqlite3_step(s) == SQLITE_ROW) {
        char at[32];
        core_iso8601(sqlite3_column_int64(s, 1), at, sizeof at);
        json_t *row = json_pack("{sIss}", "seq", (json_int_t)sqlite3_column_int64(s, 0), "at", at);
        for (int i = 0; i < (int)G_N_ELEMENTS(names); i++) {
            const char *v = (const char *)sqlite3_column_text(s, 2 + i);
            json_object_set_new(row, names[i], json_string(v ? v : ""));
        }
        json_array_append_new(op->rows, row);
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
    if (web_query_int(req, "after", 0, 0, INT64_MAX, &after) ||
        web_query_int(req, "limit", 100, 1, 1000, &limit))
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

/* ---- users ---- */

static json_t *user_json(const core_user *u, int64_t now)
{
    char *roles = core_roles_format(u->roles);
    json_t *j = json_pack("{sIsssssssssssssb}", "id", (json_int_t)u->id, "username", u->username,
                          "display_name", u->display_name, "agency", u->agency, "roles", roles,
                          "leads", u->leads ? u->leads : "", "state",
                          u->disabled                ? "disabled"
                          : u->locked_until_ms > now ? "locked"
                                                     : "active",
                          "disabled", u->disabled);
    g_free(roles);
    return j;
}

typedef struct {
    web_req *req;
    char **agencies; /* visible agencies, NULL: all */
    json_t *rows;
} users_op;

static void users_read(sqlite3 *db, void *arg)
{
    users_op *op = arg;
    GPtrArray *list = core_users_list(db);
    op->rows = json_array();
    int64_t now = core_now_ms();
    for (guint i = 0; i < list->len; i++) {
        core_user *u = list->pdata[i];
        if (!op->agencies || g_strv_contains((const char *const *)op->agencies, u->agency))
            json_array_append_new(op->rows, user_json(u, now));
    }
    g_ptr_array_free(list, TRUE);
}

static void users_done(void *arg)
{
    users_op *op = arg;
    web_reply_json(op->req, 200, json_pack("{so}", "users", op->rows));
    g_strfreev(op->agencies);
    g_free(op);
}

static void users_list(web_req *req)
{
    users_op *op = g_new0(users_op, 1);
    op->req = req;
    op->agencies = core_readable_agencies(req->session, CORE_ACT_USERS_READ);
    int rc = core_store_read(req->srv->deps.store, users_read, users_done, op);
    if (rc) {
        g_strfreev(op->agencies);
        g_free(op);
        web_reply_core_error(req, rc);
    }
}

/* A string field, or an array of strings joined with commas; NULL if neither. */
static char *csv_field(json_t *v)
{
    if (json_is_string(v))
        return g_strdup(json_string_value(v));
    if (!json_is_array(v))
        return NULL;
    GString *out = g_string_new("");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        if (!json_is_string(x) || strchr(json_string_value(x), ',')) {
            g_string_free(out, TRUE);
            return NULL;
        }
        g_string_append_printf(out, "%s%s", i ? "," : "", json_string_value(x));
    }
    return g_string_free(out, FALSE);
}

typedef struct {
    web_req *req;
    core_sessions *sessions;
    core_user user;
    char *password, *actor;
    char hash[128];
    int hash_rc, disabled;
    int64_t id;
} user_op;

static void user_op_free(user_op *op)
{
    if (op->password)
        sodium_memzero(op->password, strlen(op->password));
    g_free(op->password);
    g_free(op->actor);
    g_free(op->user.username);
    g_free(op->user.display_name);
    g_free(op->user.agency);
    g_free(op->user.leads);
    g_free(op);
}

static int user_insert(core_txn *txn, void *arg)
{
    user_op *op = arg;
    op->user.password_hash = op->hash;
    return core_user_insert(txn, &op->user, op->actor, op->req->peer, &op->id);
}

static void user_inserted(int rc, GPtrArray *events, void *arg)
{
    user_op *op = arg;
    if (rc == CORE_ECONFLICT) {
        web_reply_error(op->req, 409, "conflict", "user '%s' already exists", op->user.username);
    } else if (rc) {
        web_reply_core_error(op->req, rc);
    } else {
        op->user.id = op->id;
        web_reply_json(op->req, 201, json_pack("{so}", "user", user_json(&op->user, 0)));
    }
    user_op_free(op);
}

static void user_hash(void *arg)
{
    user_op *op = arg;
    op->hash_rc = core_password_hash(op->password, op->hash);
}

static void user_hashed(void *arg)
{
    user_op *op = arg;
    int rc = op->hash_rc
                 ? op->hash_rc
                 : core_store_write(op->req->srv->deps.store, user_insert, user_inserted, op);
    if (rc) {
        web_reply_core_error(op->req, rc);
        user_op_free(op);
    }
}

static void user_create(web_req *req)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    const char *username = json_string_value(json_object_get(body, "username"));
    const char *display = json_string_value(json_object_get(body, "display_name"));
    const char *agency = json_string_value(json_object_get(body, "agency"));
    const char *password = json_string_value(json_object_get(body, "password"));
    char *roles = csv_field(json_object_get(body, "roles"));
    json_t *leads_v = json_object_get(body, "leads");
    char *leads = leads_v ? csv_field(leads_v) : g_strdup("");
    char *field = NULL, *message = NULL;
    unsigned bits = 0;
    const char *weak = password ? core_password_weakness(password) : "a password is required";
    if (!roles || !leads) {
        web_reply_invalid(req, roles ? "leads" : "roles", "a string or an array of strings");
    } else if (core_user_check(username, display, roles, agency, leads, req->srv->cfg->agencies,
                               &bits, &field, &message)) {
        web_reply_invalid(req, field, message);
    } else if (weak) {
        web_reply_invalid(req, "password", weak);
    } else {
        user_op *op = g_new0(user_op, 1);
        op->req = req;
        op->actor = g_strdup(req->session->username);
        op->password = g_strdup(password);
        op->user.username = g_strdup(username);
        op->user.display_name = g_strdup(display ? display : username);
        op->user.agency = g_strdup(agency);
        op->user.leads = g_strdup(leads);
        op->user.roles = bits;
        int rc = core_work_submit(req->srv->deps.loop, user_hash, user_hashed, op);
        if (rc) {
            user_op_free(op);
            web_reply_core_error(req, rc);
        }
    }
    g_free(field);
    g_free(message);
    g_free(roles);
    g_free(leads);
    json_decref(body);
}

static int user_set_disabled(core_txn *txn, void *arg)
{
    user_op *op = arg;
    return core_user_set_disabled(txn, op->id, op->disabled, op->actor, op->req->peer);
}

static void user_updated(int rc, GPtrArray *events, void *arg)
{
    user_op *op = arg;
    if (rc == CORE_ENOTFOUND) {
        web_reply_error(op->req, 404, "not_found", "no user %" G_GINT64_FORMAT, op->id);
    } else if (rc) {
        web_reply_core_error(op->req, rc);
    } else {
        /* A disabled user's sessions and WebSockets end now, not at the next poll. */
        core_sessions_refresh(op->sessions);
        web_reply_json(
            op->req, 200,
            json_pack("{s{sIsb}}", "user", "id", (json_int_t)op->id, "disabled", op->disabled));
    }
    user_op_free(op);
}

static void user_update(web_req *req)
{
    int64_t id;
    if (web_path_id(req, "user", &id))
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    json_t *disabled = json_object_get(body, "disabled");
    if (!json_is_boolean(disabled) || json_object_size(body) != 1) {
        web_reply_invalid(req, "disabled",
                          "the one field that can change is \"disabled\" (true or false)");
    } else if (id == req->session->user_id && json_is_true(disabled)) {
        web_reply_invalid(req, "disabled", "you cannot disable your own account");
    } else {
        user_op *op = g_new0(user_op, 1);
        op->req = req;
        op->sessions = req->srv->deps.sessions;
        op->actor = g_strdup(req->session->username);
        op->id = id;
        op->disabled = json_is_true(disabled);
        int rc = core_store_write(req->srv->deps.store, user_set_disabled, user_updated, op);
        if (rc) {
            user_op_free(op);
            web_reply_core_error(req, rc);
        }
    }
    json_decref(body);
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
        {WEB_POST, "/api/v1/users", user_create, CORE_ACT_USERS_MANAGE},
        {WEB_PATCH, "/api/v1/users/{id}", user_update, CORE_ACT_USERS_MANAGE},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

void web_routes_add(web_server *srv, const web_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        web_router_add(srv->router, routes[i].method, routes[i].pattern, (void *)&routes[i]);
}

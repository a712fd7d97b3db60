/*
 * api_incidents.c — calls and incidents over HTTP: intake, the incident
 * queue, one incident with its calls and timeline, and changes to it.
 * Reading and changing an incident need the action and one of its
 * agencies (owner or joint); refusals are 403 and audited.
 */
#include "internal.h"

#include "../dispatch/incident.h"
#include "../gis/gis.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct inc_ctx inc_ctx;
/* Runs once every incident in `check` was read and the caller may update it. */
typedef int (*inc_action)(inc_ctx *c);

struct inc_ctx {
    web_req *req;
    core_session *who; /* a copy: the session may end while the store works */
    json_t *body;      /* PATCH: applied once the incident is read */
    int64_t check[2];  /* merge/split: incidents to authorise first */
    int nchecks, checked;
    inc_action action;
    int64_t id, into;
    GArray *calls;
};

static inc_ctx *ctx_new(web_req *req)
{
    inc_ctx *c = g_new0(inc_ctx, 1);
    c->req = req;
    c->who = core_session_copy(req->session);
    return c;
}

static void ctx_free(inc_ctx *c)
{
    if (c->calls)
        g_array_free(c->calls, TRUE);
    core_session_copy_free(c->who);
    json_decref(c->body);
    g_free(c);
}

/* A 400 naming the field, freeing what the dispatch module allocated. */
static void reply_invalid(web_req *req, char *field, char *message)
{
    web_reply_invalid(req, field, message);
    g_free(field);
    g_free(message);
}

int64_t web_parse_ext(const char *s, char prefix)
{
    if (!s)
        return 0;
    if (s[0] == prefix && s[1] == '-')
        s += 2;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || !*s || *end || v <= 0 ? 0 : v;
}

/* The {id} of the path ("I-12" or "12"); replies 400 otherwise. */
static int incident_id(web_req *req, int64_t *id)
{
    *id = web_parse_ext(web_param(&req->params, "id"), 'I');
    if (!*id)
        web_reply_error(req, 400, "invalid_parameter", "an incident id is I-<number>");
    return *id ? 0 : -1;
}

/* ---- POST /api/v1/calls ---- */

/* A call taker may take a call for an incident they may not read (a police
 * call taker answering a cardiac arrest): then the reply names the
 * incident but does not show it. */
static void call_added(int rc, json_t *result, void *arg)
{
    inc_ctx *c = arg;
    web_req *req = c->req;
    if (rc) {
        web_reply_core_error(req, rc);
        ctx_free(c);
        return;
    }
    json_t *inc = json_object_get(result, "incident");
    char **agencies = disp_incident_agencies(inc);
    if (!core_may_any(c->who, CORE_ACT_INCIDENTS_READ, agencies))
        json_object_set_new(result, "incident",
                            json_pack("{sO}", "id", json_object_get(inc, "id")));
    g_strfreev(agencies);
    const char *iid =
        json_string_value(json_object_get(json_object_get(result, "call"), "incident_id"));
    char *loc = g_strdup_printf("/api/v1/incidents/%s", iid ? iid : "");
    web_req_add_header(req, "location", loc);
    g_free(loc);
    web_reply_json(req, 201, result);
    ctx_free(c);
}

static void call_create(web_req *req)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    char *field = NULL, *message = NULL;
    inc_ctx *c = ctx_new(req);
    int rc = disp_call_add(req->srv->deps.incidents, body, req->session->username,
                           req->session->agency, req->peer, call_added, c, &field, &message);
    json_decref(body);
    if (rc)
        ctx_free(c);
    if (rc == CORE_EINVAL)
        reply_invalid(req, field, message);
    else if (rc)
        web_reply_core_error(req, rc);
}

/* ---- GET /api/v1/incidents ---- */

static void listed(int rc, json_t *list, void *arg)
{
    web_req *req = arg;
    if (rc)
        web_reply_core_error(req, rc);
    else
        web_reply_json(req, 200, json_pack("{so}", "incidents", list));
}

static void incidents_list(web_req *req)
{
    int64_t limit;
    if (web_query_int(req, "limit", 500, 1, 5000, &limit))
        return;
    const char *all = web_query_get(req, "all");
    char **agencies = core_readable_agencies(req->session, CORE_ACT_INCIDENTS_READ);
    int rc = disp_incidents_list(req->srv->deps.incidents, agencies,
                                 all && strcmp(all, "true") == 0, (int)limit, listed, req);
    g_strfreev(agencies);
    if (rc)
        web_reply_core_error(req, rc);
}

/* ---- GET and PATCH /api/v1/incidents/{id} ---- */

static int allowed(inc_ctx *c, json_t *inc, core_action action)
{
    char **agencies = disp_incident_agencies(inc);
    int ok = core_may_any(c->who, action, agencies);
    g_strfreev(agencies);
    if (!ok)
        web_reply_forbidden(c->req, c->who->username, core_action_name(action), c->req->path);
    return ok;
}

static void got(int rc, json_t *inc, void *arg)
{
    inc_ctx *c = arg;
    if (rc == CORE_ENOTFOUND)
        web_reply_error(c->req, 404, "not_found", "no incident %s",
                        web_param(&c->req->params, "id"));
    else if (rc)
        web_reply_core_error(c->req, rc);
    else if (allowed(c, inc, CORE_ACT_INCIDENTS_READ))
        web_reply_json(c->req, 200, json_pack("{sO}", "incident", inc));
    json_decref(inc);
    ctx_free(c);
}

static void incident_get(web_req *req)
{
    int64_t id;
    if (incident_id(req, &id))
        return;
    inc_ctx *c = ctx_new(req);
    int rc = disp_incident_get(req->srv->deps.incidents, id, got, c);
    if (rc) {
        ctx_free(c);
        web_reply_core_error(req, rc);
    }
}

static void updated(int rc, json_t *result, void *arg)
{
    inc_ctx *c = arg;
    if (rc == CORE_ECONFLICT && result)
        web_reply_error(c->req, 409, "conflict", "%s",
                        json_string_value(json_object_get(result, "message")));
    else if (rc)
        web_reply_core_error(c->req, rc);
    else
        web_reply_json(c->req, 200, json_pack("{sO}", "incident", result));
    json_decref(result);
    ctx_free(c);
}

/* ---- merge and split ---- */

static void authorised(int rc, json_t *inc, void *arg);

/* Reads the next incident to authorise, or runs the action. */
static void next_check(inc_ctx *c)
{
    int rc = c->checked < c->nchecks ? disp_incident_get(c->req->srv->deps.incidents,
                                                         c->check[c->checked], authorised, c)
                                     : c->action(c);
    if (rc) {
        if (rc != CORE_EINVAL)
            web_reply_core_error(c->req, rc);
        ctx_free(c);
    }
}

static void authorised(int rc, json_t *inc, void *arg)
{
    inc_ctx *c = arg;
    if (rc == CORE_ENOTFOUND) {
        web_reply_error(c->req, 404, "not_found", "no incident I-%" G_GINT64_FORMAT,
                        c->check[c->checked]);
    } else if (rc) {
        web_reply_core_error(c->req, rc);
    } else if (allowed(c, inc, CORE_ACT_INCIDENTS_UPDATE)) {
        json_decref(inc);
        c->checked++;
        next_check(c);
        return;
    }
    json_decref(inc);
    ctx_free(c);
}

/* PATCH, once the caller may update the incident. */
static int do_update(inc_ctx *c)
{
    char *field = NULL, *message = NULL;
    int rc = disp_incident_update(c->req->srv->deps.incidents, c->id, c->body, c->who->username,
                                  c->req->peer, updated, c, &field, &message);
    if (rc == CORE_EINVAL)
        reply_invalid(c->req, field, message);
    return rc;
}

static void incident_update(web_req *req)
{
    int64_t id;
    if (incident_id(req, &id))
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    inc_ctx *c = ctx_new(req);
    c->body = body;
    c->id = c->check[0] = id;
    c->nchecks = 1;
    c->action = do_update;
    next_check(c);
}

static int do_merge(inc_ctx *c)
{
    return disp_incident_merge(c->req->srv->deps.incidents, c->id, c->into, c->who->username,
                               c->req->peer, updated, c);
}

static int do_split(inc_ctx *c)
{
    return disp_incident_split(c->req->srv->deps.incidents, c->id, (int64_t *)c->calls->data,
                               c->calls->len, c->who->username, c->req->peer, updated, c);
}

static void incident_merge(web_req *req)
{
    int64_t id;
    if (incident_id(req, &id))
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    int64_t into = web_parse_ext(json_string_value(json_object_get(body, "into")), 'I');
    json_decref(body);
    if (!into) {
        reply_invalid(req, g_strdup("into"), g_strdup("the incident to merge into: \"I-n\""));
        return;
    }
    inc_ctx *c = ctx_new(req);
    c->id = id;
    c->into = into;
    c->check[0] = id;
    c->check[1] = into;
    c->nchecks = 2;
    c->action = do_merge;
    next_check(c);
}

static void incident_split(web_req *req)
{
    int64_t id;
    if (incident_id(req, &id))
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    json_t *calls = json_object_get(body, "calls");
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
    size_t i;
    json_t *v;
    int ok = json_is_array(calls) && json_array_size(calls) > 0 && json_array_size(calls) <= 1000;
    json_array_foreach(calls, i, v)
    {
        int64_t cid = web_parse_ext(json_string_value(v), 'C');
        ok = ok && cid > 0;
        g_array_append_val(ids, cid);
    }
    json_decref(body);
    if (!ok) {
        g_array_free(ids, TRUE);
        reply_invalid(req, g_strdup("calls"), g_strdup("the calls to split out: [\"C-n\", …]"));
        return;
    }
    inc_ctx *c = ctx_new(req);
    c->id = id;
    c->calls = ids;
    c->check[0] = id;
    c->nchecks = 1;
    c->action = do_split;
    next_check(c);
}

/* ---- exports ---- */

/* The centre's name in identifiers: the city's, else "citycmd". */
static char *origin_name(web_server *srv)
{
    const char *n = srv->deps.city ? gis_city_name(srv->deps.city) : "citycmd";
    char *o = g_ascii_strdown(n, -1);
    g_strdelimit(o, " /:", '-');
    return o;
}

static void exported(int rc, json_t *inc, void *arg)
{
    inc_ctx *c = arg;
    web_req *req = c->req;
    if (rc == CORE_ENOTFOUND) {
        web_reply_error(req, 404, "not_found", "no incident %s", web_param(&req->params, "id"));
    } else if (rc) {
        web_reply_core_error(req, rc);
    } else if (allowed(c, inc, CORE_ACT_INCIDENTS_READ)) {
        char *origin = origin_name(req->srv);
        if (g_str_has_suffix(req->path, "/eido")) {
            web_reply_json(req, 200, disp_incident_eido(inc, origin));
        } else {
            const char *headline = web_query_get(req, "headline");
            double radius = 0.5;
            char *xml = NULL;
            if (web_query_double(req, "radius_km", 0, 0.5, 0.01, 100, &radius) == 0) {
                char *sender = g_strdup_printf("citycmd@%s", origin);
                char *fallback =
                    g_strdup_printf("%s: %s", json_string_value(json_object_get(inc, "type")),
                                    json_string_value(json_object_get(inc, "address")));
                xml = disp_incident_cap(inc, sender, headline ? headline : fallback,
                                        web_query_get(req, "description"),
                                        web_query_get(req, "instruction"), radius);
                g_free(sender);
                g_free(fallback);
                web_reply(req, 200, "application/cap+xml; charset=utf-8",
                          g_bytes_new_take(xml, strlen(xml)));
            }
        }
        g_free(origin);
    }
    json_decref(inc);
    ctx_free(c);
}

static void incident_export(web_req *req)
{
    int64_t id;
    if (incident_id(req, &id))
        return;
    const char *h = web_query_get(req, "headline");
    if (h && (strlen(h) > 200 || !g_utf8_validate(h, -1, NULL))) {
        web_reply_error(req, 400, "invalid_parameter", "'headline' is at most 200 bytes of text");
        return;
    }
    inc_ctx *c = ctx_new(req);
    int rc = disp_incident_get(req->srv->deps.incidents, id, exported, c);
    if (rc) {
        ctx_free(c);
        web_reply_core_error(req, rc);
    }
}

/* ---- hazards ---- */

static void hazard_reply(int rc, json_t *result, void *arg)
{
    web_req *req = arg;
    if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 404, "not_found", "no hazard %s", web_param(&req->params, "id"));
    else if (rc)
        web_reply_core_error(req, rc);
    else if (req->method == WEB_POST)
        web_reply_json(req, 201, json_pack("{so}", "hazard", result));
    else if (req->method == WEB_DELETE)
        web_reply(req, 204, "application/json", g_bytes_new_static("", 0));
    else
        web_reply_json(req, 200, json_pack("{so}", "hazards", result));
    if (rc == 0 && req->method == WEB_DELETE)
        json_decref(result);
}

static void hazard_add(web_req *req)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    char *field = NULL, *message = NULL;
    int rc = disp_hazard_add(req->srv->deps.incidents, body, req->session->username,
                             req->session->agency, req->peer, hazard_reply, req, &field, &message);
    json_decref(body);
    if (rc == CORE_EINVAL)
        reply_invalid(req, field, message);
    else if (rc)
        web_reply_core_error(req, rc);
}

static void hazards_list(web_req *req)
{
    double lon, lat, within;
    if (web_query_double(req, "lon", 1, 0, -180, 180, &lon) ||
        web_query_double(req, "lat", 1, 0, -90, 90, &lat) ||
        web_query_double(req, "within", 0, 50, 0, 5000, &within))
        return;
    int rc = disp_hazards_near(req->srv->deps.incidents, lon, lat, within, hazard_reply, req);
    if (rc)
        web_reply_core_error(req, rc);
}

static void hazard_remove(web_req *req)
{
    int64_t id = web_parse_ext(web_param(&req->params, "id"), 'H');
    if (!id) {
        web_reply_error(req, 400, "invalid_parameter", "a hazard id is H-<number>");
        return;
    }
    int rc = disp_hazard_remove(req->srv->deps.incidents, id, req->session->username, req->peer,
                                hazard_reply, req);
    if (rc)
        web_reply_core_error(req, rc);
}

static void catalogue(web_req *req)
{
    web_reply_json(req, 200, disp_catalogue_json(req->srv->deps.catalogue));
}

void web_api_incidents_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_GET, "/api/v1/catalogue", catalogue, WEB_SIGNED_IN},
        {WEB_POST, "/api/v1/calls", call_create, CORE_ACT_CALLS_CREATE},
        {WEB_GET, "/api/v1/incidents", incidents_list, CORE_ACT_INCIDENTS_READ},
        {WEB_GET, "/api/v1/incidents/{id}", incident_get, CORE_ACT_INCIDENTS_READ},
        {WEB_PATCH, "/api/v1/incidents/{id}", incident_update, CORE_ACT_INCIDENTS_UPDATE},
        {WEB_POST, "/api/v1/incidents/{id}/merge", incident_merge, CORE_ACT_INCIDENTS_UPDATE},
        {WEB_GET, "/api/v1/incidents/{id}/eido", incident_export, CORE_ACT_INCIDENTS_READ},
        {WEB_POST, "/api/v1/hazards", hazard_add, CORE_ACT_INCIDENTS_UPDATE},
        {WEB_GET, "/api/v1/hazards", hazards_list, CORE_ACT_INCIDENTS_READ},
        {WEB_DELETE, "/api/v1/hazards/{id}", hazard_remove, CORE_ACT_INCIDENTS_UPDATE},
        {WEB_GET, "/api/v1/incidents/{id}/cap", incident_export, CORE_ACT_INCIDENTS_READ},
        {WEB_POST, "/api/v1/incidents/{id}/split", incident_split, CORE_ACT_INCIDENTS_UPDATE},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

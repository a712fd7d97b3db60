/*
 * api_units.c — the unit registry over HTTP: list, one unit with its
 * status history, create, change (fields and/or status), remove, and
 * import of a fleet list (CSV or GeoJSON).
 *
 * Reading a unit needs units.read for its agency; changing its fields,
 * creating or removing it units.manage; its status units.status. The
 * unit's agency comes from the registry's mirror on the loop thread and is
 * handed to the write, which refuses if it changed meanwhile. Refusals are
 * 403 and audited.
 */
#include "internal.h"

#include "../core/auth.h"
#include "../core/core.h"
#include "../dispatch/units.h"

#include <string.h>

typedef struct {
    web_req *req;
    core_session *who; /* a copy: the session may end while the store works */
} unit_ctx;

static unit_ctx *ctx_new(web_req *req)
{
    unit_ctx *c = g_new0(unit_ctx, 1);
    c->req = req;
    c->who = core_session_copy(req->session);
    return c;
}

static void ctx_free(unit_ctx *c)
{
    core_session_copy_free(c->who);
    g_free(c);
}

/* The {id} of the path ("U-12" or "12"); replies 400 otherwise. */
int web_unit_path_id(web_req *req, int64_t *id)
{
    const char *p = web_param(&req->params, "id");
    const char *digits = p && p[0] == 'U' && p[1] == '-' ? p + 2 : p;
    *id = 0;
    if (digits && *digits && strlen(digits) <= 18 && strspn(digits, "0123456789") == strlen(digits))
        *id = g_ascii_strtoll(digits, NULL, 10);
    if (*id <= 0)
        web_reply_error(req, 400, "invalid_parameter", "a unit id is U-<number>");
    return *id > 0 ? 0 : -1;
}

static int forbid(web_req *req, const char *user, core_action action)
{
    web_reply_forbidden(req, user, core_action_name(action), req->path);
    return -1;
}

/* An error naming the field, and the line or feature of an import. */
static void reply_field(web_req *req, int status, const char *code, const char *field,
                        const char *message, const json_t *at)
{
    json_t *e = json_pack("{ssss}", "code", code, "message", message);
    if (field && *field)
        json_object_set_new(e, "field", json_string(field));
    if (json_object_get(at, "line"))
        json_object_set(e, "line", json_object_get(at, "line"));
    if (json_object_get(at, "feature"))
        json_object_set(e, "feature", json_object_get(at, "feature"));
    web_reply_json(req, status, json_pack("{so}", "error", e));
}

/* Replies to a failed write; result (may be NULL) as units.h describes it. */
static void reply_failed(unit_ctx *c, int rc, const json_t *r)
{
    web_req *req = c->req;
    const char *msg = json_string_value(json_object_get(r, "message"));
    const char *field = json_string_value(json_object_get(r, "field"));
    if (json_object_get(r, "forbidden")) {
        forbid(req, c->who->username, CORE_ACT_UNITS_MANAGE);
    } else if (rc == CORE_EINVAL && msg) {
        reply_field(req, 400, "invalid_field", field, msg, r);
    } else if ((rc == CORE_EEXISTS || rc == CORE_ECONFLICT) && msg) {
        reply_field(req, 409, "conflict", field, msg, r);
    } else if (rc == CORE_ENOTFOUND) {
        web_reply_error(req, 404, "not_found", "no unit %s", web_param(&req->params, "id"));
    } else {
        web_reply_core_error(req, rc);
    }
}

/* ---- reads ---- */

static void listed(int rc, json_t *list, void *arg)
{
    web_req *req = arg;
    if (rc)
        web_reply_core_error(req, rc);
    else
        web_reply_json(req, 200, json_pack("{so}", "units", list));
}

static int known(const char *const *list, const char *v)
{
    return g_strv_contains(list, v);
}

static void units_list(web_req *req)
{
    const char *agency = web_query_get(req, "agency"), *status = web_query_get(req, "status");
    const char *kind = web_query_get(req, "kind"), *all = web_query_get(req, "all");
    static const char *const primaries[] = {"available", "conditionally_available", "not_available",
                                            NULL};
    if (agency && !core_agency_known(req->srv->cfg->agencies, agency)) {
        web_reply_error(req, 400, "invalid_parameter", "'agency' is not a known agency");
        return;
    }
    if (status && !known(disp_unit_statuses(), status) && !known(primaries, status)) {
        web_reply_error(req, 400, "invalid_parameter", "'status' is not a unit status");
        return;
    }
    if (kind && !known(disp_unit_kinds(), kind)) {
        web_reply_error(req, 400, "invalid_parameter", "'kind' is not a unit kind");
        return;
    }
    char **agencies = core_readable_agencies(req->session, CORE_ACT_UNITS_READ);
    int rc = disp_units_list(req->srv->deps.units, agencies, agency, status, kind,
                             all && strcmp(all, "true") == 0, listed, req);
    g_strfreev(agencies);
    if (rc)
        web_reply_core_error(req, rc);
}

static void got(int rc, json_t *unit, void *arg)
{
    unit_ctx *c = arg;
    const char *agency = json_string_value(json_object_get(unit, "agency"));
    if (rc)
        reply_failed(c, rc, NULL);
    else if (!core_may(c->who, CORE_ACT_UNITS_READ, agency))
        forbid(c->req, c->who->username, CORE_ACT_UNITS_READ);
    else
        web_reply_json(c->req, 200, json_pack("{sO}", "unit", unit));
    json_decref(unit);
    ctx_free(c);
}

static void unit_get(web_req *req)
{
    int64_t id;
    if (web_unit_path_id(req, &id))
        return;
    unit_ctx *c = ctx_new(req);
    int rc = disp_unit_get(req->srv->deps.units, id, got, c);
    if (rc) {
        ctx_free(c);
        web_reply_core_error(req, rc);
    }
}

/* ---- writes ---- */

static void written(int rc, json_t *result, void *arg)
{
    unit_ctx *c = arg;
    web_req *req = c->req;
    if (rc) {
        reply_failed(c, rc, result);
    } else if (req->method == WEB_DELETE) {
        web_reply(req, 204, "application/json", g_bytes_new_static("", 0));
    } else if (req->method == WEB_POST && json_object_get(result, "created")) {
        web_reply_json(req, 200, json_incref(result));
    } else if (req->method == WEB_POST) {
        char *loc =
            g_strdup_printf("/api/v1/units/%s", json_string_value(json_object_get(result, "id")));
        web_req_add_header(req, "location", loc);
        g_free(loc);
        web_reply_json(req, 201, json_pack("{sO}", "unit", result));
    } else {
        web_reply_json(req, 200, json_pack("{sO}", "unit", result));
    }
    json_decref(result);
    ctx_free(c);
}

/* Replies to what a call returned synchronously. */
static void started(unit_ctx *c, int rc, char *field, char *message)
{
    if (rc == CORE_EINVAL && message)
        reply_field(c->req, 400, "invalid_field", field, message, NULL);
    else if (rc)
        web_reply_core_error(c->req, rc);
    if (rc)
        ctx_free(c);
    g_free(field);
    g_free(message);
}

static void unit_create(web_req *req)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    const char *agency = json_string_value(json_object_get(body, "agency"));
    if (agency && !core_may(req->session, CORE_ACT_UNITS_MANAGE, agency)) {
        json_decref(body);
        forbid(req, req->session->username, CORE_ACT_UNITS_MANAGE);
        return;
    }
    char *field = NULL, *message = NULL;
    unit_ctx *c = ctx_new(req);
    int rc = disp_unit_add(req->srv->deps.units, body, req->session->username, req->peer, written,
                           c, &field, &message);
    json_decref(body);
    started(c, rc, field, message);
}

/* What a PATCH body asks for: a status change, and/or field changes. */
static void wants(const json_t *body, int *status, int *manage)
{
    static const char *const fields[] = {"call_sign", "kind",         "agency", "station",
                                         "device",    "capabilities", "home",   NULL};
    *status = json_object_get(body, "status") || json_object_get(body, "incident");
    *manage = 0;
    for (const char *const *f = fields; *f; f++)
        *manage |= json_object_get(body, *f) != NULL;
}

/* May the caller make the changes body asks of a unit of this agency? */
static int may_change(web_req *req, const json_t *body, const char *agency)
{
    const core_session *s = req->session;
    int status, manage;
    wants(body, &status, &manage);
    const char *to = json_string_value(json_object_get(body, "agency"));
    if (status && !core_may(s, CORE_ACT_UNITS_STATUS, agency))
        return forbid(req, s->username, CORE_ACT_UNITS_STATUS);
    if (manage && (!core_may(s, CORE_ACT_UNITS_MANAGE, agency) ||
                   (to && !core_may(s, CORE_ACT_UNITS_MANAGE, to))))
        return forbid(req, s->username, CORE_ACT_UNITS_MANAGE);
    if (!status && !manage && !core_may(s, CORE_ACT_UNITS_STATUS, agency) &&
        !core_may(s, CORE_ACT_UNITS_MANAGE, agency))
        return forbid(req, s->username, CORE_ACT_UNITS_MANAGE);
    return 0;
}

static void unit_update(web_req *req)
{
    int64_t id;
    if (web_unit_path_id(req, &id))
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    const core_session *s = req->session;
    int status, manage;
    wants(body, &status, &manage);
    /* The role first, so that who may do neither learns nothing of the unit. */
    int refused =
        (status && !core_may(s, CORE_ACT_UNITS_STATUS, NULL)) ||
        (manage && !core_may(s, CORE_ACT_UNITS_MANAGE, NULL)) ||
        (!core_may(s, CORE_ACT_UNITS_STATUS, NULL) && !core_may(s, CORE_ACT_UNITS_MANAGE, NULL));
    const disp_unit_info *u = refused ? NULL : disp_units_get(req->srv->deps.units, id);
    if (refused) {
        forbid(req, s->username,
               status && !core_may(s, CORE_ACT_UNITS_STATUS, NULL) ? CORE_ACT_UNITS_STATUS
                                                                   : CORE_ACT_UNITS_MANAGE);
    } else if (!u) {
        web_reply_error(req, 404, "not_found", "no unit %s", web_param(&req->params, "id"));
    } else if (may_change(req, body, u->agency) == 0) {
        char *field = NULL, *message = NULL;
        unit_ctx *c = ctx_new(req);
        int rc = disp_unit_update(req->srv->deps.units, id, body, u->agency, s->username, req->peer,
                                  written, c, &field, &message);
        started(c, rc, field, message);
    }
    json_decref(body);
}

static void unit_remove(web_req *req)
{
    int64_t id;
    if (web_unit_path_id(req, &id))
        return;
    const disp_unit_info *u = disp_units_get(req->srv->deps.units, id);
    if (!u) {
        web_reply_error(req, 404, "not_found", "no unit %s", web_param(&req->params, "id"));
        return;
    }
    if (!core_may(req->session, CORE_ACT_UNITS_MANAGE, u->agency)) {
        forbid(req, req->session->username, CORE_ACT_UNITS_MANAGE);
        return;
    }
    unit_ctx *c = ctx_new(req);
    int rc = disp_unit_remove(req->srv->deps.units, id, u->agency, req->session->username,
                              req->peer, written, c);
    started(c, rc, NULL, NULL);
}

/* ---- import ---- */

/* {"line": 3} / {"feature": 2} from "line 3" / "features[2]". */
static json_t *where_json(const char *where)
{
    json_t *at = json_object();
    int n;
    if (where && sscanf(where, "line %d", &n) == 1)
        json_object_set_new(at, "line", json_integer(n));
    else if (where && sscanf(where, "features[%d]", &n) == 1)
        json_object_set_new(at, "feature", json_integer(n));
    return at;
}

/* Parses the body by its type; replies and returns NULL on error. */
static json_t *import_rows(web_req *req)
{
    const char *type = req->body_type ? req->body_type : "";
    const char *text = req->body ? (const char *)req->body->data : "";
    size_t len = req->body ? req->body->len : 0;
    json_t *rows = NULL;
    char *where = NULL, *field = NULL, *message = NULL;
    int rc;
    if (strcmp(type, "text/csv") == 0) {
        rc = disp_units_parse_csv(req->srv->deps.units, text, len, &rows, &where, &field, &message);
    } else if (strcmp(type, "application/geo+json") == 0 || strcmp(type, "application/json") == 0) {
        json_t *doc = web_req_json(req);
        if (!doc)
            return NULL;
        rc = disp_units_parse_geojson(req->srv->deps.units, doc, &rows, &where, &field, &message);
        json_decref(doc);
    } else {
        web_reply_error(req, 415, "unsupported_media_type",
                        "send text/csv or application/geo+json (a FeatureCollection)");
        return NULL;
    }
    if (rc) {
        json_t *at = where_json(where);
        reply_field(req, 400, "invalid_field", field, message ? message : "invalid file", at);
        json_decref(at);
    }
    g_free(where);
    g_free(field);
    g_free(message);
    return rows;
}

static void unit_import(web_req *req)
{
    json_t *rows = import_rows(req);
    if (!rows)
        return;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *agency =
            json_string_value(json_object_get(json_object_get(row, "unit"), "agency"));
        if (!core_may(req->session, CORE_ACT_UNITS_MANAGE, agency)) {
            json_decref(rows);
            forbid(req, req->session->username, CORE_ACT_UNITS_MANAGE);
            return;
        }
    }
    char **may = core_readable_agencies(req->session, CORE_ACT_UNITS_MANAGE);
    unit_ctx *c = ctx_new(req);
    int rc = disp_units_import(req->srv->deps.units, rows, may, req->session->username, req->peer,
                               written, c);
    g_strfreev(may);
    started(c, rc, NULL, NULL);
}

void web_api_units_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_GET, "/api/v1/units", units_list, CORE_ACT_UNITS_READ},
        {WEB_POST, "/api/v1/units", unit_create, CORE_ACT_UNITS_MANAGE},
        {WEB_POST, "/api/v1/units/import", unit_import, CORE_ACT_UNITS_MANAGE},
        {WEB_GET, "/api/v1/units/{id}", unit_get, CORE_ACT_UNITS_READ},
        {WEB_PATCH, "/api/v1/units/{id}", unit_update, WEB_SIGNED_IN},
        {WEB_DELETE, "/api/v1/units/{id}", unit_remove, CORE_ACT_UNITS_MANAGE},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

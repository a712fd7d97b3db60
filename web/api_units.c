/*
 * api_units.c — the unit registry over HTTP: list, one unit with its
 * status history, create, change (fields and/or status), remove, and
 * import of a fleet list (CSV or GeoJSON).
 *
 * Reading a unit needs units.read for its agency; changing its fields,
 * creating or removing it units.manage; its status units.status. The
 * unit's agency comes from the registry's mirror on the loop thread and is
 * handed to the write, which refuses if it changed meanwhile. Refusals are
 * 403 and audited. The write replies and the import are the registry
 * routes' own (api_registry.c).
 */
#include "internal.h"

#include "../core/auth.h"
#include "../core/core.h"
#include "../dispatch/units.h"

#include <string.h>

static int parse(void *units, const char *text, size_t len, const json_t *doc, json_t **rows,
                 char **where, char **field, char **message)
{
    return doc ? disp_units_parse_geojson(units, doc, rows, where, field, message)
               : disp_units_parse_csv(units, text, len, rows, where, field, message);
}

static int import(void *units, json_t *rows, char **may, const char *actor, const char *source,
                  void *ctx)
{
    return disp_units_import(units, rows, may, actor, source, web_reg_written, ctx);
}

static const web_registry units_reg = {"unit", CORE_ACT_UNITS_MANAGE, parse, import};

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
    web_reg_ctx *c = arg;
    const char *agency = json_string_value(json_object_get(unit, "agency"));
    if (rc)
        web_reg_failed(c, rc, NULL);
    else if (!core_may(c->who, CORE_ACT_UNITS_READ, agency))
        web_forbid(c->req, c->who->username, CORE_ACT_UNITS_READ);
    else
        web_reply_json(c->req, 200, json_pack("{sO}", "unit", unit));
    json_decref(unit);
    web_reg_ctx_free(c);
}

static void unit_get(web_req *req)
{
    int64_t id;
    if (web_unit_path_id(req, &id))
        return;
    web_reg_ctx *c = web_reg_ctx_new(req, &units_reg);
    int rc = disp_unit_get(req->srv->deps.units, id, got, c);
    if (rc) {
        web_reg_ctx_free(c);
        web_reply_core_error(req, rc);
    }
}

/* ---- writes ---- */

static void unit_create(web_req *req)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    const char *agency = json_string_value(json_object_get(body, "agency"));
    if (agency && !core_may(req->session, CORE_ACT_UNITS_MANAGE, agency)) {
        json_decref(body);
        web_forbid(req, req->session->username, CORE_ACT_UNITS_MANAGE);
        return;
    }
    char *field = NULL, *message = NULL;
    web_reg_ctx *c = web_reg_ctx_new(req, &units_reg);
    int rc = disp_unit_add(req->srv->deps.units, body, req->session->username, req->peer,
                           web_reg_written, c, &field, &message);
    json_decref(body);
    web_reg_started(c, rc, field, message);
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
        return web_forbid(req, s->username, CORE_ACT_UNITS_STATUS);
    if (manage && (!core_may(s, CORE_ACT_UNITS_MANAGE, agency) ||
                   (to && !core_may(s, CORE_ACT_UNITS_MANAGE, to))))
        return web_forbid(req, s->username, CORE_ACT_UNITS_MANAGE);
    if (!status && !manage && !core_may(s, CORE_ACT_UNITS_STATUS, agency) &&
        !core_may(s, CORE_ACT_UNITS_MANAGE, agency))
        return web_forbid(req, s->username, CORE_ACT_UNITS_MANAGE);
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
        web_forbid(req, s->username,
                   status && !core_may(s, CORE_ACT_UNITS_STATUS, NULL) ? CORE_ACT_UNITS_STATUS
                                                                       : CORE_ACT_UNITS_MANAGE);
    } else if (!u) {
        web_reply_error(req, 404, "not_found", "no unit %s", web_param(&req->params, "id"));
    } else if (may_change(req, body, u->agency) == 0) {
        char *field = NULL, *message = NULL;
        web_reg_ctx *c = web_reg_ctx_new(req, &units_reg);
        int rc = disp_unit_update(req->srv->deps.units, id, body, u->agency, s->username, req->peer,
                                  web_reg_written, c, &field, &message);
        web_reg_started(c, rc, field, message);
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
        web_forbid(req, req->session->username, CORE_ACT_UNITS_MANAGE);
        return;
    }
    web_reg_ctx *c = web_reg_ctx_new(req, &units_reg);
    int rc = disp_unit_remove(req->srv->deps.units, id, u->agency, req->session->username,
                              req->peer, web_reg_written, c);
    web_reg_started(c, rc, NULL, NULL);
}

static void unit_import(web_req *req)
{
    web_reg_import(req, &units_reg, req->srv->deps.units);
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

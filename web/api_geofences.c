/*
 * api_geofences.c — geofences over HTTP: list the live fences, draw one,
 * remove one.
 *
 * Reading needs map.read. Drawing or removing a fence needs units.manage
 * for the fence's agency, or units.manage at all for a fence of every
 * agency (agency ""). The list comes from the geofence mirror on the loop
 * thread; the writes reply after the store committed. Refusals are 403
 * and audited.
 */
#include "internal.h"

#include "../core/auth.h"
#include "../core/core.h"
#include "../dispatch/geofence.h"

#include <string.h>

static void forbid(web_req *req)
{
    web_reply_forbidden(req, req->session->username, core_action_name(CORE_ACT_UNITS_MANAGE),
                        req->path);
}

/* May the caller manage fences of this agency ("" or NULL: every agency)? */
static int may_manage(web_req *req, const char *agency)
{
    return core_may(req->session, CORE_ACT_UNITS_MANAGE, agency && *agency ? agency : NULL);
}

static void fences_list(web_req *req)
{
    if (!req->srv->deps.geofences) {
        web_reply_json(req, 200, json_pack("{s[]}", "geofences"));
        return;
    }
    web_reply_json(req, 200,
                   json_pack("{so}", "geofences", disp_geofences_json(req->srv->deps.geofences)));
}

static void written(int rc, json_t *result, void *arg)
{
    web_req *req = arg;
    if (rc == CORE_ENOTFOUND) {
        web_reply_error(req, 404, "not_found", "no geofence %s", web_param(&req->params, "id"));
    } else if (rc) {
        web_reply_core_error(req, rc);
    } else if (req->method == WEB_DELETE) {
        web_reply(req, 204, "application/json", g_bytes_new_static("", 0));
    } else {
        char *loc = g_strdup_printf("/api/v1/geofences/%s",
                                    json_string_value(json_object_get(result, "id")));
        web_req_add_header(req, "location", loc);
        g_free(loc);
        web_reply_json(req, 201, json_pack("{sO}", "geofence", result));
    }
    json_decref(result);
}

static void fence_create(web_req *req)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    const json_t *agency = json_object_get(body, "agency");
    const char *a = json_string_value(agency);
    if (a && *a && !core_agency_known(req->srv->cfg->agencies, a)) {
        web_reply_invalid(req, "agency", "a known agency, or \"\" for every agency");
    } else if (a && !may_manage(req, a)) {
        forbid(req);
    } else if (!req->srv->deps.geofences) {
        web_reply_error(req, 503, "unavailable", "geofences are not kept");
    } else {
        char *field = NULL, *message = NULL;
        int rc = disp_geofence_add(req->srv->deps.geofences, body, req->session->username,
                                   req->peer, written, req, &field, &message);
        if (rc == CORE_EINVAL && message)
            web_reply_invalid(req, field, message);
        else if (rc)
            web_reply_core_error(req, rc);
        g_free(field);
        g_free(message);
    }
    json_decref(body);
}

/* The {id} of the path ("G-12" or "12"); replies 400 otherwise. */
static int fence_path_id(web_req *req, int64_t *id)
{
    const char *p = web_param(&req->params, "id");
    const char *digits = p && p[0] == 'G' && p[1] == '-' ? p + 2 : p;
    *id = 0;
    if (digits && *digits && strlen(digits) <= 18 && strspn(digits, "0123456789") == strlen(digits))
        *id = g_ascii_strtoll(digits, NULL, 10);
    if (*id <= 0)
        web_reply_error(req, 400, "invalid_parameter", "a geofence id is G-<number>");
    return *id > 0 ? 0 : -1;
}

static void fence_remove(web_req *req)
{
    int64_t id;
    if (fence_path_id(req, &id))
        return;
    disp_geofences *g = req->srv->deps.geofences;
    const char *agency = g ? disp_geofence_agency(g, id) : NULL;
    if (!agency) {
        web_reply_error(req, 404, "not_found", "no geofence %s", web_param(&req->params, "id"));
        return;
    }
    if (!may_manage(req, agency)) {
        forbid(req);
        return;
    }
    int rc = disp_geofence_remove(g, id, req->session->username, req->peer, written, req);
    if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 404, "not_found", "no geofence %s", web_param(&req->params, "id"));
    else if (rc)
        web_reply_core_error(req, rc);
}

void web_api_geofences_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_GET, "/api/v1/geofences", fences_list, CORE_ACT_MAP_READ},
        {WEB_POST, "/api/v1/geofences", fence_create, CORE_ACT_UNITS_MANAGE},
        {WEB_DELETE, "/api/v1/geofences/{id}", fence_remove, CORE_ACT_UNITS_MANAGE},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

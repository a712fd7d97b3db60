/*
 * api_pipes.c — pipe networks, isolations and repair orders over HTTP
 * (docs/API.md, "A main bursts").
 *
 *   GET  /api/v1/pipes/networks                            pipes.read
 *   GET  /api/v1/pipes/networks/{name}/segments            pipes.read, the network's agency
 *   GET  /api/v1/pipes/networks/{name}/features?layer=&bbox=   pipes.read, the network's agency
 *   POST /api/v1/pipes/networks/{name}/valves/{valve}      pipes.isolate, the network's agency
 *   POST /api/v1/pipes/networks/{name}/valves              pipes.manage, the network's agency
 *   DELETE /api/v1/pipes/networks/{name}/valves/{valve}    pipes.manage, the network's agency
 *   DELETE /api/v1/pipes/networks/{name}/links/{link}      pipes.manage, the network's agency
 *   GET  /api/v1/pipes/isolations[?all=true]               pipes.read (listed by agency)
 *   POST /api/v1/pipes/isolations                          pipes.isolate, the network's agency
 *   GET  /api/v1/pipes/isolations/{id}                     pipes.read, the isolation's agency
 *   POST /api/v1/pipes/isolations/{id}/valves/{valve}      pipes.isolate, the isolation's agency
 *   POST /api/v1/pipes/isolations/{id}/cancel              pipes.isolate, the isolation's agency
 *   GET  /api/v1/repair-orders[?all=true]                  pipes.read (listed by agency)
 *   POST /api/v1/repair-orders                             pipes.isolate, the isolation's agency
 *   GET  /api/v1/repair-orders/{id}                        pipes.read, the order's agency
 *   POST /api/v1/repair-orders/{id}/status                 pipes.isolate, the order's agency
 *   POST /api/v1/repair-orders/{id}/approve                repairs.approve, the order's agency
 *
 * The route table checks the role; each handler checks the agency of the
 * network, isolation or order and records a refusal in the audit trail.
 * Isolation answers are computed on the loop thread (milliseconds).
 */
#include "internal.h"

#include "../dispatch/pipes.h"

#include <string.h>

static disp_pipes *pipes(web_req *req)
{
    disp_pipes *p = req->srv->deps.pipes;
    if (!p || disp_pipes_network_count(p) == 0) {
        web_reply_error(req, 404, "no_networks", "the city has no pipe networks");
        return NULL;
    }
    return p;
}

/* The agency check of a route; replies 404 (unknown) or 403 (audited). */
static int may(web_req *req, core_action action, const char *agency, const char *what)
{
    if (!agency) {
        web_reply_error(req, 404, "not_found", "no %s here", what);
        return 0;
    }
    if (!core_may(req->session, action, agency)) {
        web_reply_forbidden(req, req->session->username, core_action_name(action), req->path);
        return 0;
    }
    return 1;
}

static void reply_written(web_req *req, int rc, json_t *result, int ok_status)
{
    if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 404, "not_found", "not found");
    else if (rc)
        web_reply_core_error(req, rc);
    else
        web_reply_json(req, ok_status, result);
    if (rc)
        json_decref(result);
}

static void written(int rc, json_t *result, void *arg)
{
    reply_written(arg, rc, result, 200);
}
static void created(int rc, json_t *result, void *arg)
{
    reply_written(arg, rc, result, 201);
}

/* Replies for an error returned at once by a write. */
static void refused(web_req *req, int rc, char *field, char *message)
{
    if (rc == CORE_EINVAL)
        web_reply_invalid(req, field, message);
    else if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 404, "not_found", "not found");
    else if (rc == CORE_ECONFLICT)
        web_reply_error(req, 409, "conflict", "it has ended already");
    else if (rc)
        web_reply_core_error(req, rc);
    g_free(field);
    g_free(message);
}

/* ---- networks ---- */

static void networks_get(web_req *req)
{
    disp_pipes *p = req->srv->deps.pipes;
    if (!p) {
        web_reply_json(req, 200, json_pack("{s[]}", "networks"));
        return;
    }
    web_reply_json(req, 200, disp_pipes_networks_json(p, req->session));
}

static void segments_get(web_req *req)
{
    disp_pipes *p = pipes(req);
    const char *name = web_param(&req->params, "name");
    if (!p || !may(req, CORE_ACT_PIPES_READ, disp_pipes_agency(p, name), "network"))
        return;
    web_reply_json(req, 200, disp_pipes_segments_json(p, name));
}

static void features_get(web_req *req)
{
    disp_pipes *p = pipes(req);
    const char *name = web_param(&req->params, "name");
    if (!p || !may(req, CORE_ACT_PIPES_READ, disp_pipes_agency(p, name), "network"))
        return;
    const char *layer = web_query_get(req, "layer"), *bb = web_query_get(req, "bbox");
    double bbox[4];
    if (bb) {
        char **parts = g_strsplit(bb, ",", 5);
        int ok = g_strv_length(parts) == 4;
        for (int k = 0; ok && k < 4; k++) {
            char *end = NULL;
            bbox[k] = g_ascii_strtod(parts[k], &end);
            ok = end && !*end && gis_lonlat_valid(k % 2 ? 0 : bbox[k], k % 2 ? bbox[k] : 0);
        }
        g_strfreev(parts);
        if (!ok || bbox[0] > bbox[2] || bbox[1] > bbox[3]) {
            web_reply_invalid(req, "bbox", "west,south,east,north in degrees");
            return;
        }
    }
    int rc;
    json_t *fc = disp_pipes_layer_json(p, name, layer ? layer : "links", bb ? bbox : NULL, &rc);
    if (rc == CORE_EINVAL)
        web_reply_invalid(req, "layer", "links, valves, nodes or customers");
    else
        web_reply_json(req, 200, fc);
}

static void valve_post(web_req *req)
{
    disp_pipes *p = pipes(req);
    const char *name = web_param(&req->params, "name");
    if (!p || !may(req, CORE_ACT_PIPES_ISOLATE, disp_pipes_agency(p, name), "network"))
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    char *field = NULL, *message = NULL;
    int rc =
        disp_pipes_valve_set(p, name, web_param(&req->params, "valve"), body,
                             req->session->username, req->peer, written, req, &field, &message);
    json_decref(body);
    refused(req, rc, field, message);
}

/* Changes to the network itself. */
static void edit(web_req *req, const char *change, const char *element)
{
    disp_pipes *p = pipes(req);
    const char *name = web_param(&req->params, "name");
    if (!p || !may(req, CORE_ACT_PIPES_MANAGE, disp_pipes_agency(p, name), "network"))
        return;
    json_t *body = NULL;
    if (req->method == WEB_POST && !(body = web_req_json(req)))
        return;
    char *field = NULL, *message = NULL;
    int rc = disp_pipes_edit(p, name, change, body, element, req->session->username, req->peer,
                             body ? created : written, req, &field, &message);
    json_decref(body);
    refused(req, rc, field, message);
}

static void valve_add(web_req *req)
{
    edit(req, "valve.added", NULL);
}
static void valve_delete(web_req *req)
{
    edit(req, "valve.removed", web_param(&req->params, "valve"));
}
static void link_delete(web_req *req)
{
    edit(req, "link.removed", web_param(&req->params, "link"));
}

/* ---- isolations ---- */

static void isolations_get(web_req *req)
{
    disp_pipes *p = req->srv->deps.pipes;
    const char *all = web_query_get(req, "all");
    if (!p) {
        web_reply_json(req, 200, json_pack("{s[]}", "isolations"));
        return;
    }
    web_reply_json(req, 200, disp_isolations_json(p, req->session, all && !strcmp(all, "true")));
}

static int allowed_isolate(const char *agency, void *user)
{
    return core_may(user, CORE_ACT_PIPES_ISOLATE, agency);
}

static void isolation_post(web_req *req)
{
    disp_pipes *p = pipes(req);
    if (!p)
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    char *field = NULL, *message = NULL;
    int rc = disp_isolation_create(p, body, req->session->username, req->peer, allowed_isolate,
                                   req->session, created, req, &field, &message);
    json_decref(body);
    if (rc == CORE_EEXISTS) /* the pipe is on a network of an agency the user may not isolate */
        web_reply_forbidden(req, req->session->username, "pipes.isolate", req->path);
    else
        refused(req, rc, field, message);
}

static int isolation_id(web_req *req, disp_pipes *p, core_action action, int64_t *id)
{
    return p && web_path_id(req, "an isolation", id) == 0 &&
           may(req, action, disp_isolation_agency(p, *id), "isolation");
}

static void isolation_get(web_req *req)
{
    disp_pipes *p = pipes(req);
    int64_t id;
    if (isolation_id(req, p, CORE_ACT_PIPES_READ, &id))
        web_reply_json(req, 200, json_pack("{so}", "isolation", disp_isolation_json(p, id, 1)));
}

static void isolation_valve_post(web_req *req)
{
    disp_pipes *p = pipes(req);
    int64_t id;
    if (!isolation_id(req, p, CORE_ACT_PIPES_ISOLATE, &id))
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    char *field = NULL, *message = NULL;
    int rc = disp_isolation_report(
        p, id, web_param(&req->params, "valve"), json_string_value(json_object_get(body, "result")),
        req->session->username, req->peer, written, req, &field, &message);
    json_decref(body);
    refused(req, rc, field, message);
}

static void isolation_cancel(web_req *req)
{
    disp_pipes *p = pipes(req);
    int64_t id;
    if (!isolation_id(req, p, CORE_ACT_PIPES_ISOLATE, &id))
        return;
    int rc =
        disp_isolation_end(p, id, "cancelled", req->session->username, req->peer, written, req);
    refused(req, rc, NULL, NULL);
}

/* ---- repair orders ---- */

static void orders_get(web_req *req)
{
    disp_pipes *p = req->srv->deps.pipes;
    const char *all = web_query_get(req, "all");
    if (!p) {
        web_reply_json(req, 200, json_pack("{s[]}", "orders"));
        return;
    }
    web_reply_json(req, 200, disp_repairs_json(p, req->session, all && !strcmp(all, "true")));
}

static void order_post(web_req *req)
{
    disp_pipes *p = pipes(req);
    if (!p)
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    json_t *iso = json_object_get(body, "isolation");
    const char *agency =
        json_is_integer(iso) ? disp_isolation_agency(p, json_integer_value(iso)) : NULL;
    if (agency && !core_may(req->session, CORE_ACT_PIPES_ISOLATE, agency)) {
        json_decref(body);
        web_reply_forbidden(req, req->session->username, "pipes.isolate", req->path);
        return;
    }
    char *field = NULL, *message = NULL;
    int rc = disp_repair_create(p, body, req->session->username, req->peer, created, req, &field,
                                &message);
    json_decref(body);
    refused(req, rc, field, message);
}

static int order_id(web_req *req, disp_pipes *p, core_action action, int64_t *id)
{
    return p && web_path_id(req, "a repair order", id) == 0 &&
           may(req, action, disp_repair_agency(p, *id), "repair order");
}

static void order_get(web_req *req)
{
    disp_pipes *p = pipes(req);
    int64_t id;
    if (order_id(req, p, CORE_ACT_PIPES_READ, &id))
        web_reply_json(req, 200, disp_repair_json(p, id));
}

static void order_status_post(web_req *req)
{
    disp_pipes *p = pipes(req);
    int64_t id;
    if (!order_id(req, p, CORE_ACT_PIPES_ISOLATE, &id))
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    char *field = NULL, *message = NULL;
    int rc = disp_repair_status(p, id, body, req->session->username, req->peer, written, req,
                                &field, &message);
    json_decref(body);
    refused(req, rc, field, message);
}

static void order_approve_post(web_req *req)
{
    disp_pipes *p = pipes(req);
    int64_t id;
    if (!order_id(req, p, CORE_ACT_REPAIRS_APPROVE, &id))
        return;
    char *field = NULL, *message = NULL;
    int rc = disp_repair_approve(p, id, req->session->username, req->peer, written, req, &field,
                                 &message);
    refused(req, rc, field, message);
}

void web_api_pipes_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_GET, "/api/v1/pipes/networks", networks_get, CORE_ACT_PIPES_READ},
        {WEB_GET, "/api/v1/pipes/networks/{name}/segments", segments_get, CORE_ACT_PIPES_READ},
        {WEB_GET, "/api/v1/pipes/networks/{name}/features", features_get, CORE_ACT_PIPES_READ},
        {WEB_POST, "/api/v1/pipes/networks/{name}/valves/{valve}", valve_post,
         CORE_ACT_PIPES_ISOLATE},
        {WEB_POST, "/api/v1/pipes/networks/{name}/valves", valve_add, CORE_ACT_PIPES_MANAGE},
        {WEB_DELETE, "/api/v1/pipes/networks/{name}/valves/{valve}", valve_delete,
         CORE_ACT_PIPES_MANAGE},
        {WEB_DELETE, "/api/v1/pipes/networks/{name}/links/{link}", link_delete,
         CORE_ACT_PIPES_MANAGE},
        {WEB_GET, "/api/v1/pipes/isolations", isolations_get, CORE_ACT_PIPES_READ},
        {WEB_POST, "/api/v1/pipes/isolations", isolation_post, CORE_ACT_PIPES_ISOLATE},
        {WEB_GET, "/api/v1/pipes/isolations/{id}", isolation_get, CORE_ACT_PIPES_READ},
        {WEB_POST, "/api/v1/pipes/isolations/{id}/valves/{valve}", isolation_valve_post,
         CORE_ACT_PIPES_ISOLATE},
        {WEB_POST, "/api/v1/pipes/isolations/{id}/cancel", isolation_cancel,
         CORE_ACT_PIPES_ISOLATE},
        {WEB_GET, "/api/v1/repair-orders", orders_get, CORE_ACT_PIPES_READ},
        {WEB_POST, "/api/v1/repair-orders", order_post, CORE_ACT_PIPES_ISOLATE},
        {WEB_GET, "/api/v1/repair-orders/{id}", order_get, CORE_ACT_PIPES_READ},
        {WEB_POST, "/api/v1/repair-orders/{id}/status", order_status_post, CORE_ACT_PIPES_ISOLATE},
        {WEB_POST, "/api/v1/repair-orders/{id}/approve", order_approve_post,
         CORE_ACT_REPAIRS_APPROVE},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

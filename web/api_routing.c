/*
 * api_routing.c — who goes: travel times by road, response plans, the
 * recommendations for an incident, and assigning and releasing units.
 *
 *   GET  /api/v1/route?from=lon,lat&to=lon,lat        map.read
 *   GET  /api/v1/response-plans                        incidents.read
 *   GET  /api/v1/incidents/{id}/recommendations        incidents.read (its agencies)
 *   POST /api/v1/incidents/{id}/assign  {"units":[…]}  incidents.update, and units.status
 *                                                      for each unit's agency
 *   POST /api/v1/incidents/{id}/release {"units":[…]}  the same
 *   GET  /api/v1/coverage?kind=engine&minutes=4        units.read (the units of the
 *                                                      agencies the session reads)
 *   GET  /api/v1/roads/closures                        map.read
 *   POST /api/v1/roads/closures {"lon","lat",…}        incidents.update
 *   DELETE /api/v1/roads/closures/{id}                 incidents.update
 *
 * Everything reads the live board, the unit mirror and the road graph on
 * the loop thread. An assignment is one status write per unit (dispatched,
 * on this incident), each checked in the writer against the status the
 * unit had when it was recommended, so a unit taken meanwhile is refused,
 * not taken twice; the reply waits for every write.
 */
#include "internal.h"

#include "../core/core.h"
#include "../dispatch/closures.h"
#include "../dispatch/plans.h"
#include "../dispatch/recommend.h"
#include "../dispatch/roads.h"
#include "../dispatch/units.h"

#include <math.h>
#include <string.h>
#include <time.h>

#define MAX_ASSIGN 50

static int64_t ext_id(const char *text, char prefix)
{
    if (!text)
        return 0;
    const char *d = text[0] == prefix && text[1] == '-' ? text + 2 : text;
    if (!*d || strlen(d) > 18 || strspn(d, "0123456789") != strlen(d))
        return 0;
    return g_ascii_strtoll(d, NULL, 10);
}

int web_parse_point(const char *s, double *lon, double *lat)
{
    char *end = NULL;
    if (!s)
        return -1;
    *lon = g_ascii_strtod(s, &end);
    if (end == s || *end != ',')
        return -1;
    const char *t = end + 1;
    *lat = g_ascii_strtod(t, &end);
    return end == t || *end || !gis_lonlat_valid(*lon, *lat) ? -1 : 0;
}

static int no_graph(web_req *req)
{
    if (req->srv->deps.roads)
        return 0;
    web_reply_error(req, 503, "no_road_graph", "the server runs without a city road graph");
    return 1;
}

/* ---- GET /api/v1/route ---- */

static void route_get(web_req *req)
{
    double flon, flat, tlon, tlat;
    if (web_parse_point(web_query_get(req, "from"), &flon, &flat)) {
        web_reply_invalid(req, "from", "from must be lon,lat");
        return;
    }
    if (web_parse_point(web_query_get(req, "to"), &tlon, &tlat)) {
        web_reply_invalid(req, "to", "to must be lon,lat");
        return;
    }
    if (no_graph(req))
        return;
    disp_roads *g = req->srv->deps.roads;
    disp_roads_pos s, t;
    if (disp_roads_snap(g, flon, flat, DISP_RECOMMEND_SNAP_M, &s) != 0) {
        web_reply_error(req, 422, "not_routable", "from is not within 500 m of a drivable road");
        return;
    }
    if (disp_roads_snap(g, tlon, tlat, DISP_RECOMMEND_SNAP_M, &t) != 0) {
        web_reply_error(req, 422, "not_routable", "to is not within 500 m of a drivable road");
        return;
    }
    int64_t ms;
    double m;
    GArray *pts = disp_roads_path(g, &s, &t, &ms, &m);
    if (!pts) {
        web_reply_error(req, 404, "no_route", "no open road leads from there to there");
        return;
    }
    web_reply_json(req, 200,
                   json_pack("{sIsfso}", "eta_ms", (json_int_t)ms, "distance_m", round(m), "route",
                             disp_roads_geojson_line(pts)));
    g_array_unref(pts);
}

/* ---- GET /api/v1/response-plans ---- */

static void plans_get(web_req *req)
{
    web_reply_json(req, 200, json_deep_copy(disp_plans_json(req->srv->deps.plans)));
}

/* ---- the incident of the path ---- */

/* The open incident of {id} that the session may act on; replies and
 * returns NULL otherwise. */
static const disp_live *open_incident(web_req *req, core_action action)
{
    int64_t id = ext_id(web_param(&req->params, "id"), 'I');
    if (!id) {
        web_reply_error(req, 400, "invalid_parameter", "an incident id is I-<number>");
        return NULL;
    }
    const disp_live *inc = disp_live_get(req->srv->deps.incidents, id);
    if (!inc) {
        web_reply_error(req, 404, "not_found", "no open incident I-%" G_GINT64_FORMAT, id);
        return NULL;
    }
    if (!core_may_any(req->session, action, (char **)inc->agencies)) {
        web_reply_forbidden(req, req->session->username, core_action_name(action), req->path);
        return NULL;
    }
    return inc;
}

static const json_t *plan_for(web_req *req, const json_t *inc)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    return disp_plans_match(req->srv->deps.plans, json_string_value(json_object_get(inc, "type")),
                            (int)json_integer_value(json_object_get(inc, "priority")),
                            json_object_get(inc, "districts"), tm.tm_hour);
}

/* ---- GET /api/v1/incidents/{id}/recommendations ---- */

static void recommendations_get(web_req *req)
{
    const disp_live *inc = open_incident(req, CORE_ACT_INCIDENTS_READ);
    if (!inc || no_graph(req))
        return;
    const char *code = NULL, *message = NULL;
    const web_deps *d = &req->srv->deps;
    json_t *r = disp_recommend(d->roads, d->units, d->avl, d->incidents, inc->incident,
                               plan_for(req, inc->incident), &code, &message);
    if (!r) {
        web_reply_error(req, 422, code, "%s", message);
        return;
    }
    web_reply_json(req, 200, r);
}

/* ---- POST /api/v1/incidents/{id}/assign and /release ---- */

typedef struct {
    web_req *req;
    int pending, assign;
    int64_t incident;
    char *actor; /* the session may be gone when the writes finish */
    json_t *done, *refused;
} batch;

typedef struct {
    batch *b;
    char id[32];
} one;

static void reply(batch *b)
{
    web_reply_json(b->req, json_array_size(b->done) ? 200 : 409,
                   json_pack("{soso}", "units", b->done, "refused", b->refused));
    g_free(b->actor);
    g_free(b);
}

static void incident_moved(int rc, json_t *result, void *arg)
{
    /* The units are on it either way; a refusal here means someone moved
     * the incident on meanwhile. */
    (void)rc;
    json_decref(result);
    reply(arg);
}

/* When every write is done: a new incident that got units becomes
 * dispatched (its unassigned alarm then stops), then the reply. */
static void finish(batch *b)
{
    if (--b->pending > 0)
        return;
    const disp_live *inc = b->assign && json_array_size(b->done)
                               ? disp_live_get(b->req->srv->deps.incidents, b->incident)
                               : NULL;
    const char *status = inc ? json_string_value(json_object_get(inc->incident, "status")) : NULL;
    if (status && strcmp(status, "new") == 0) {
        json_t *body = json_pack("{ss}", "status", "dispatched");
        char *field = NULL, *message = NULL;
        int rc = disp_incident_update(b->req->srv->deps.incidents, b->incident, body, b->actor,
                                      b->req->peer, incident_moved, b, &field, &message);
        json_decref(body);
        g_free(field);
        g_free(message);
        if (rc == 0)
            return;
    }
    reply(b);
}

static void refuse(batch *b, const char *id, const char *code, const char *why)
{
    json_array_append_new(b->refused,
                          json_pack("{ssssss}", "id", id, "code", code, "message", why));
}

static void written(int rc, json_t *result, void *arg)
{
    one *o = arg;
    if (rc == 0) {
        json_array_append_new(o->b->done, result);
    } else {
        refuse(o->b, o->id, rc == CORE_ECONFLICT ? "conflict" : core_strerror(rc),
               rc == CORE_ECONFLICT ? "its status changed meanwhile" : "could not be written");
        json_decref(result);
    }
    finish(o->b);
    g_free(o);
}

static const char *const assignable[] = {
    "in_station", "on_patrol", "available_on_radio", "returning", "dispatched", "en_route", NULL};
static const char *const releasable[] = {"dispatched",   "en_route",    "on_scene",
                                         "transporting", "at_hospital", NULL};

static void assign_or_release(web_req *req, int assign)
{
    const disp_live *inc = open_incident(req, CORE_ACT_INCIDENTS_UPDATE);
    if (!inc)
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    json_t *list = json_object_get(body, "units");
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > MAX_ASSIGN) {
        web_reply_invalid(req, "units", "units must be a list of 1 to 50 unit ids");
        json_decref(body);
        return;
    }
    batch *b = g_new0(batch, 1);
    b->req = req;
    b->assign = assign;
    b->incident = inc->id;
    b->actor = g_strdup(req->session->username);
    b->done = json_array();
    b->refused = json_array();
    b->pending = 1; /* held until every write is started */
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *text = json_string_value(v);
        int64_t uid = ext_id(text, 'U');
        const disp_unit_info *u = uid ? disp_units_get(req->srv->deps.units, uid) : NULL;
        char id[32];
        g_snprintf(id, sizeof id, "U-%" G_GINT64_FORMAT, uid);
        if (!u) {
            refuse(b, text ? text : "?", "not_found", "no such unit");
            continue;
        }
        if (!core_may(req->session, CORE_ACT_UNITS_STATUS, u->agency)) {
            refuse(b, id, "forbidden", "you may not change this unit's status");
            continue;
        }
        if (assign && u->incident_id == inc->id) {
            refuse(b, id, "already_assigned", "the unit is already on this incident");
            continue;
        }
        if (!assign && u->incident_id != inc->id) {
            refuse(b, id, "not_assigned", "the unit is not on this incident");
            continue;
        }
        one *o = g_new0(one, 1);
        o->b = b;
        g_strlcpy(o->id, id, sizeof o->id);
        b->pending++;
        int rc =
            disp_unit_set_status_if(req->srv->deps.units, uid, assign ? assignable : releasable,
                                    assign ? "dispatched" : "returning", assign ? inc->id : 0,
                                    req->session->username, req->peer, written, o);
        if (rc) {
            b->pending--;
            refuse(b, id, core_strerror(rc), "could not be written");
            g_free(o);
        }
    }
    json_decref(body);
    finish(b);
}

static void assign_post(web_req *req)
{
    assign_or_release(req, 1);
}

static void release_post(web_req *req)
{
    assign_or_release(req, 0);
}

/* ---- GET /api/v1/coverage ---- */

typedef struct {
    web_req *req;
    const char *kind;
    disp_roads *roads;
    GArray *at; /* disp_roads_pos */
} cover_pass;

static void cover_unit(const disp_unit_info *u, void *user)
{
    cover_pass *c = user;
    if (strcmp(u->kind, c->kind) != 0 || strcmp(u->primary, "available") != 0 ||
        !core_may(c->req->session, CORE_ACT_UNITS_READ, u->agency))
        return;
    const disp_avl_pos *p =
        c->req->srv->deps.avl ? disp_avl_get(c->req->srv->deps.avl, u->id) : NULL;
    disp_roads_pos pos;
    if (p && disp_roads_snap(c->roads, p->lon, p->lat, DISP_RECOMMEND_SNAP_M, &pos) == 0)
        g_array_append_val(c->at, pos);
}

/* The streets beyond N minutes from every available unit of a kind: one
 * forward search from all of them; a street counts as beyond when its
 * middle is (from the nearer end). */
static void coverage_get(web_req *req)
{
    const char *kind = web_query_get(req, "kind");
    int ok = 0;
    for (const char *const *k = disp_unit_kinds(); kind && *k; k++)
        ok |= strcmp(*k, kind) == 0;
    if (!ok) {
        web_reply_invalid(req, "kind", "a unit kind (engine, ambulance, patrol_car, …)");
        return;
    }
    int64_t minutes;
    if (web_query_int(req, "minutes", 8, 1, 120, &minutes) || no_graph(req))
        return;
    disp_roads *g = req->srv->deps.roads;
    cover_pass c = {req, kind, g, g_array_new(FALSE, FALSE, sizeof(disp_roads_pos))};
    disp_units_foreach(req->srv->deps.units, cover_unit, &c);
    uint32_t nn = disp_roads_node_count(g), ne = disp_roads_edge_count(g);
    int64_t *t = g_new(int64_t, nn), limit = minutes * 60000;
    disp_roads_times_from(g, (const disp_roads_pos *)c.at->data, c.at->len, t);
    json_t *lines = json_array();
    double total = 0, beyond = 0;
    for (uint32_t e = 0; e < ne; e++) {
        disp_roads_edge_info in;
        disp_roads_edge(g, e, &in);
        total += in.length_m;
        int64_t via_a = t[in.a] == DISP_ROADS_UNREACHABLE || in.forward_ms == DISP_ROADS_UNREACHABLE
                            ? DISP_ROADS_UNREACHABLE
                            : t[in.a] + in.forward_ms / 2,
                via_b =
                    t[in.b] == DISP_ROADS_UNREACHABLE || in.backward_ms == DISP_ROADS_UNREACHABLE
                        ? DISP_ROADS_UNREACHABLE
                        : t[in.b] + in.backward_ms / 2;
        if (MIN(via_a, via_b) <= limit)
            continue;
        beyond += in.length_m;
        GArray *pts = disp_roads_edge_shape(g, e);
        json_array_append_new(lines, disp_roads_geojson_line(pts));
        g_array_unref(pts);
    }
    json_t *multi = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l) json_array_append(multi, json_object_get(l, "coordinates"));
    json_decref(lines);
    web_reply_json(req, 200,
                   json_pack("{sssIsIsfsfs{sss{ssso}s{sssI}}}", "kind", kind, "minutes",
                             (json_int_t)minutes, "units", (json_int_t)c.at->len, "road_km",
                             round(total / 10) / 100, "beyond_km", round(beyond / 10) / 100,
                             "beyond", "type", "Feature", "geometry", "type", "MultiLineString",
                             "coordinates", multi, "properties", "kind", kind, "minutes",
                             (json_int_t)minutes));
    g_free(t);
    g_array_free(c.at, TRUE);
}

/* ---- road closures ---- */

static void closures_get(web_req *req)
{
    web_reply_json(req, 200, disp_closures_json(req->srv->deps.closures));
}

static void closure_written(int rc, json_t *result, void *arg)
{
    web_req *req = arg;
    if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 404, "not_found", "no such open road closure");
    else if (rc)
        web_reply_core_error(req, rc);
    else
        web_reply_json(req, req->method == WEB_POST ? 201 : 200,
                       json_pack("{so}", "closure", result));
    if (rc)
        json_decref(result);
}

static void closure_post(web_req *req)
{
    if (no_graph(req))
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    char *field = NULL, *message = NULL;
    int rc = disp_closure_add(req->srv->deps.closures, body, req->session->username, req->peer,
                              closure_written, req, &field, &message);
    json_decref(body);
    if (rc == CORE_EINVAL)
        web_reply_invalid(req, field, message);
    else if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 422, "not_routable", "no open road within 50 m of that point");
    else if (rc)
        web_reply_core_error(req, rc);
    g_free(field);
    g_free(message);
}

static void closure_delete(web_req *req)
{
    int64_t id;
    if (web_path_id(req, "a closure", &id))
        return;
    int rc = disp_closure_remove(req->srv->deps.closures, id, req->session->username, req->peer,
                                 closure_written, req);
    if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 404, "not_found", "no open road closure %" G_GINT64_FORMAT, id);
    else if (rc)
        web_reply_core_error(req, rc);
}

void web_api_routing_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_GET, "/api/v1/route", route_get, CORE_ACT_MAP_READ},
        {WEB_GET, "/api/v1/response-plans", plans_get, CORE_ACT_INCIDENTS_READ},
        {WEB_GET, "/api/v1/incidents/{id}/recommendations", recommendations_get,
         CORE_ACT_INCIDENTS_READ},
        {WEB_POST, "/api/v1/incidents/{id}/assign", assign_post, CORE_ACT_INCIDENTS_UPDATE},
        {WEB_POST, "/api/v1/incidents/{id}/release", release_post, CORE_ACT_INCIDENTS_UPDATE},
        {WEB_GET, "/api/v1/coverage", coverage_get, CORE_ACT_UNITS_READ},
        {WEB_GET, "/api/v1/roads/closures", closures_get, CORE_ACT_MAP_READ},
        {WEB_POST, "/api/v1/roads/closures", closure_post, CORE_ACT_INCIDENTS_UPDATE},
        {WEB_DELETE, "/api/v1/roads/closures/{id}", closure_delete, CORE_ACT_INCIDENTS_UPDATE},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

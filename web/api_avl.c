/*
 * api_avl.c — the routes of unit positions: a unit's track (history) and a
 * field unit's phone reporting its own position.
 *
 * Both are authorized against the unit's agency from the registry's mirror
 * (a removed unit is 404): reading a track needs units.read, reporting a
 * position units.status, as a field unit does for its own agency's units.
 */
#include "internal.h"

#include "../core/core.h"
#include "../dispatch/avl.h"
#include "../dispatch/history.h"
#include "../dispatch/units.h"

#include <math.h>
#include <string.h>

#define TRACK_DEFAULT_S 3600
#define TRACK_LIMIT_MAX 100000

/* The unit of the path, authorized for action; NULL after replying. */
static const disp_unit_info *authorized_unit(web_req *req, core_action action)
{
    int64_t id;
    if (web_unit_path_id(req, &id))
        return NULL;
    const disp_unit_info *u =
        req->srv->deps.units ? disp_units_get(req->srv->deps.units, id) : NULL;
    if (!u) {
        web_reply_error(req, 404, "not_found", "no unit U-%" G_GINT64_FORMAT, id);
        return NULL;
    }
    if (!core_may(req->session, action, u->agency)) {
        web_reply_forbidden(req, req->session->username, core_action_name(action), req->path);
        return NULL;
    }
    return u;
}

/* An ISO 8601 query parameter (with its offset) as ms, or def when absent. */
static int query_time(web_req *req, const char *name, int64_t def, int64_t *out)
{
    const char *v = web_query_get(req, name);
    *out = def;
    if (!v)
        return 0;
    GDateTime *t = g_date_time_new_from_iso8601(v, NULL);
    if (!t) {
        web_reply_invalid(req, name, "an ISO 8601 time with its offset");
        return -1;
    }
    *out = g_date_time_to_unix(t) * 1000 + g_date_time_get_microsecond(t) / 1000;
    g_date_time_unref(t);
    return 0;
}

/* ---- GET /api/v1/units/{id}/track?from=&to=&limit= ---- */

typedef struct {
    web_req *req;
    char *id;
} track_ctx;

static void tracked(int rc, json_t *result, void *arg)
{
    track_ctx *c = arg;
    if (rc) {
        web_reply_core_error(c->req, rc);
    } else {
        json_object_set_new(result, "unit", json_string(c->id));
        web_reply_json(c->req, 200, json_incref(result));
    }
    g_free(c->id);
    g_free(c);
}

static void unit_track(web_req *req)
{
    const disp_unit_info *u = authorized_unit(req, CORE_ACT_UNITS_READ);
    if (!u)
        return;
    int64_t now = core_now_ms(), from, to, limit;
    if (query_time(req, "to", now, &to) ||
        query_time(req, "from", to - TRACK_DEFAULT_S * 1000, &from) ||
        web_query_int(req, "limit", 10000, 1, TRACK_LIMIT_MAX, &limit))
        return;
    if (from > to) {
        web_reply_invalid(req, "from", "must not be after \"to\"");
        return;
    }
    if (!req->srv->deps.history) {
        web_reply_error(req, 503, "unavailable", "no position history is kept");
        return;
    }
    track_ctx *c = g_new0(track_ctx, 1);
    c->req = req;
    c->id = g_strdup_printf("U-%" G_GINT64_FORMAT, u->id);
    int rc = disp_history_track(req->srv->deps.history, u->id, from, to, (int)limit, tracked, c);
    if (rc) {
        g_free(c->id);
        g_free(c);
        web_reply_core_error(req, rc);
    }
}

/* ---- POST /api/v1/units/{id}/position ---- */

/* A number field within [min, max]; absent: NAN (or an error when required). */
static int number(web_req *req, json_t *body, const char *name, int required, double min,
                  double max, double *out)
{
    json_t *v = json_object_get(body, name);
    *out = NAN;
    if (!v || json_is_null(v)) {
        if (!required)
            return 0;
    } else if (json_is_number(v) && json_number_value(v) >= min && json_number_value(v) <= max) {
        *out = json_number_value(v);
        return 0;
    }
    char *msg =
        g_strdup_printf("a number from %g to %g%s", min, max, required ? " (required)" : "");
    web_reply_invalid(req, name, msg);
    g_free(msg);
    return -1;
}

static void unit_position(web_req *req)
{
    const disp_unit_info *u = authorized_unit(req, CORE_ACT_UNITS_STATUS);
    if (!u)
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    disp_gps_fix f;
    disp_gps_fix_init(&f);
    g_strlcpy(f.device, u->device ? u->device : "", sizeof f.device);
    f.valid = 1;
    f.fix_ms = core_now_ms();
    const char *at = json_string_value(json_object_get(body, "at"));
    int bad = number(req, body, "lon", 1, -180, 180, &f.lon) ||
              number(req, body, "lat", 1, -90, 90, &f.lat) ||
              number(req, body, "accuracy_m", 0, 0, 100000, &f.accuracy_m) ||
              number(req, body, "speed_kmh", 0, 0, 1000, &f.speed_kmh) ||
              number(req, body, "course", 0, 0, 360, &f.course_deg);
    if (!bad && json_object_get(body, "at")) {
        GDateTime *t = at ? g_date_time_new_from_iso8601(at, NULL) : NULL;
        if (!t) {
            web_reply_invalid(req, "at", "an ISO 8601 time with its offset");
            bad = 1;
        } else {
            f.fix_ms = g_date_time_to_unix(t) * 1000 + g_date_time_get_microsecond(t) / 1000;
            g_date_time_unref(t);
        }
    }
    json_decref(body);
    if (bad)
        return;
    disp_avl_verdict v =
        disp_avl_report_unit(req->srv->deps.avl, u->id, u->agency, &f, core_now_ms());
    web_reply_json(req, v == DISP_AVL_ACCEPTED ? 200 : 422,
                   json_pack("{ss}", "verdict", disp_avl_verdict_name(v)));
}

void web_api_avl_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_GET, "/api/v1/units/{id}/track", unit_track, CORE_ACT_UNITS_READ},
        {WEB_POST, "/api/v1/units/{id}/position", unit_position, CORE_ACT_UNITS_STATUS},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

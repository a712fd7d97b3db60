/*
 * api_cameras.c — the camera registry over HTTP (video/cameras.h).
 *
 *   GET    /api/v1/cameras[?near=lon,lat[&radius=m]]   cameras.read (the agencies the
 *                                                      session reads)
 *   GET    /api/v1/cameras.geojson                     cameras.read: the cameras with
 *                                                      their view cones, for the map
 *   GET    /api/v1/cameras/{id}                        cameras.read, the camera's agency
 *   POST   /api/v1/cameras                             cameras.manage, the new agency
 *   POST   /api/v1/cameras/import                      cameras.manage, every agency touched
 *   PATCH  /api/v1/cameras/{id}                        cameras.manage, its agency (and the
 *                                                      new one when it moves)
 *   DELETE /api/v1/cameras/{id}                        cameras.manage, its agency
 *
 * Reads are answered from the registry's mirror on the loop thread (a
 * city's cameras are hundreds, a scan costs microseconds). A near query
 * puts the cameras that see the point first, each group by distance, so
 * the first answer is the one to open. The camera's agency comes from the
 * mirror and is handed to the write, which refuses if it changed
 * meanwhile. Refusals are 403 and audited. No reply carries credentials.
 * The write replies and the import are the registry routes' own
 * (api_registry.c).
 */
#include "internal.h"

#include "../core/auth.h"
#include "../core/core.h"
#include "../video/cameras.h"

#include <math.h>
#include <string.h>

#define NEAR_RADIUS_DEFAULT_M 300.0
#define NEAR_RADIUS_MAX_M 10000.0

static int parse(void *cameras, const char *text, size_t len, const json_t *doc, json_t **rows,
                 char **where, char **field, char **message)
{
    return doc ? vid_cameras_parse_geojson(cameras, doc, rows, where, field, message)
               : vid_cameras_parse_csv(cameras, text, len, rows, where, field, message);
}

static int import(void *cameras, json_t *rows, char **may, const char *actor, const char *source,
                  void *ctx)
{
    return vid_cameras_import(cameras, rows, may, actor, source, web_reg_written, ctx);
}

static const web_registry cameras_reg = {"camera", CORE_ACT_CAMERAS_MANAGE, parse, import};

static vid_cameras *registry(web_req *req)
{
    return req->srv->deps.cameras;
}

/* The camera of the path, which the session may act on; replies otherwise. */
static const vid_camera *path_camera(web_req *req, core_action action)
{
    int64_t id = vid_camera_parse_id(web_param(&req->params, "id"));
    if (id <= 0) {
        web_reply_error(req, 400, "invalid_parameter", "a camera id is C-<number>");
        return NULL;
    }
    const vid_camera *cam = vid_cameras_get(registry(req), id);
    if (!cam) {
        web_reply_error(req, 404, "not_found", "no camera C-%" G_GINT64_FORMAT, id);
        return NULL;
    }
    if (!core_may(req->session, action, cam->agency)) {
        web_forbid(req, req->session->username, action);
        return NULL;
    }
    return cam;
}

/* ---- reads ---- */

typedef struct {
    const vid_camera *cam;
    double distance, bearing;
    int sees;
} seen_from;

static gint seeing_first(gconstpointer a, gconstpointer b)
{
    const seen_from *x = a, *y = b;
    if (x->sees != y->sees)
        return y->sees - x->sees;
    if (x->distance != y->distance)
        return x->distance < y->distance ? -1 : 1;
    return x->cam->id < y->cam->id ? -1 : x->cam->id > y->cam->id;
}

static void near_list(web_req *req, GPtrArray *all, double lon, double lat, double radius)
{
    GArray *found = g_array_new(FALSE, FALSE, sizeof(seen_from));
    for (guint i = 0; i < all->len; i++) {
        seen_from f = {all->pdata[i], 0, 0, 0};
        if (vid_cone_locate(&f.cam->cone, lon, lat, &f.distance, &f.bearing) || f.distance > radius)
            continue;
        f.sees = vid_cone_sees_at(&f.cam->cone, f.distance, f.bearing) == 1;
        g_array_append_val(found, f);
    }
    g_array_sort(found, seeing_first);
    json_t *list = json_array();
    for (guint i = 0; i < found->len; i++) {
        const seen_from *f = &g_array_index(found, seen_from, i);
        json_t *j = vid_camera_json(f->cam);
        json_object_set_new(j, "sees", json_boolean(f->sees));
        json_object_set_new(j, "distance_m", json_real(round(f->distance * 10) / 10));
        json_object_set_new(j, "bearing", json_real(round(f->bearing * 10) / 10));
        json_array_append_new(list, j);
    }
    g_array_free(found, TRUE);
    web_reply_json(req, 200,
                   json_pack("{s{sfsf}sfso}", "near", "lon", lon, "lat", lat, "radius_m", radius,
                             "cameras", list));
}

/* The cameras of the registry the session may read, by id. */
static GPtrArray *readable(web_req *req)
{
    GPtrArray *all = vid_cameras_all(registry(req));
    for (guint i = all->len; i-- > 0;) {
        const vid_camera *cam = all->pdata[i];
        if (!core_may(req->session, CORE_ACT_CAMERAS_READ, cam->agency))
            g_ptr_array_remove_index(all, i);
    }
    return all;
}

static void cameras_list(web_req *req)
{
    const char *near = web_query_get(req, "near");
    double lon = 0, lat = 0, radius = 0;
    if (near && web_parse_point(near, &lon, &lat)) {
        web_reply_invalid(req, "near", "near must be lon,lat in degrees");
        return;
    }
    if (!near && web_query_get(req, "radius")) {
        web_reply_invalid(req, "near", "radius needs near=lon,lat");
        return;
    }
    if (web_query_double(req, "radius", 0, NEAR_RADIUS_DEFAULT_M, 1, NEAR_RADIUS_MAX_M, &radius))
        return;
    GPtrArray *all = readable(req);
    if (near) {
        near_list(req, all, lon, lat, radius);
    } else {
        json_t *list = json_array();
        for (guint i = 0; i < all->len; i++)
            json_array_append_new(list, vid_camera_json(all->pdata[i]));
        web_reply_json(req, 200, json_pack("{so}", "cameras", list));
    }
    g_ptr_array_unref(all);
}

static void cameras_geojson(web_req *req)
{
    GPtrArray *all = readable(req);
    json_t *features = json_array();
    for (guint i = 0; i < all->len; i++) {
        const vid_camera *cam = all->pdata[i];
        json_t *cone = vid_cone_polygon(&cam->cone);
        json_t *props = vid_camera_json(cam);
        json_array_append_new(features, json_pack("{sssOsoso}", "type", "Feature", "id",
                                                  json_object_get(props, "id"), "geometry",
                                                  cone ? cone : json_null(), "properties", props));
    }
    g_ptr_array_unref(all);
    json_t *doc = json_pack("{ssso}", "type", "FeatureCollection", "features", features);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    web_reply(req, 200, "application/geo+json", g_bytes_new_take(text, strlen(text)));
}

static void camera_get(web_req *req)
{
    const vid_camera *cam = path_camera(req, CORE_ACT_CAMERAS_READ);
    if (cam)
        web_reply_json(req, 200, json_pack("{so}", "camera", vid_camera_json(cam)));
}

/* ---- writes ---- */

static void camera_create(web_req *req)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    const char *agency = json_string_value(json_object_get(body, "agency"));
    if (agency && !core_may(req->session, CORE_ACT_CAMERAS_MANAGE, agency)) {
        json_decref(body);
        web_forbid(req, req->session->username, CORE_ACT_CAMERAS_MANAGE);
        return;
    }
    char *field = NULL, *message = NULL;
    web_reg_ctx *c = web_reg_ctx_new(req, &cameras_reg);
    int rc = vid_camera_add(registry(req), body, req->session->username, req->peer, web_reg_written,
                            c, &field, &message);
    json_decref(body);
    web_reg_started(c, rc, field, message);
}

static void camera_update(web_req *req)
{
    const vid_camera *cam = path_camera(req, CORE_ACT_CAMERAS_MANAGE);
    if (!cam)
        return;
    json_t *body = web_req_json(req);
    if (!body)
        return;
    const char *to = json_string_value(json_object_get(body, "agency"));
    if (to && !core_may(req->session, CORE_ACT_CAMERAS_MANAGE, to)) {
        json_decref(body);
        web_forbid(req, req->session->username, CORE_ACT_CAMERAS_MANAGE);
        return;
    }
    char *field = NULL, *message = NULL;
    web_reg_ctx *c = web_reg_ctx_new(req, &cameras_reg);
    int rc = vid_camera_update(registry(req), cam->id, body, cam->agency, req->session->username,
                               req->peer, web_reg_written, c, &field, &message);
    json_decref(body);
    web_reg_started(c, rc, field, message);
}

static void camera_remove(web_req *req)
{
    const vid_camera *cam = path_camera(req, CORE_ACT_CAMERAS_MANAGE);
    if (!cam)
        return;
    web_reg_ctx *c = web_reg_ctx_new(req, &cameras_reg);
    int rc = vid_camera_remove(registry(req), cam->id, cam->agency, req->session->username,
                               req->peer, web_reg_written, c);
    web_reg_started(c, rc, NULL, NULL);
}

static void camera_import(web_req *req)
{
    web_reg_import(req, &cameras_reg, registry(req));
}

void web_api_cameras_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_GET, "/api/v1/cameras", cameras_list, CORE_ACT_CAMERAS_READ},
        {WEB_GET, "/api/v1/cameras.geojson", cameras_geojson, CORE_ACT_CAMERAS_READ},
        {WEB_POST, "/api/v1/cameras", camera_create, CORE_ACT_CAMERAS_MANAGE},
        {WEB_POST, "/api/v1/cameras/import", camera_import, CORE_ACT_CAMERAS_MANAGE},
        {WEB_GET, "/api/v1/cameras/{id}", camera_get, CORE_ACT_CAMERAS_READ},
        {WEB_PATCH, "/api/v1/cameras/{id}", camera_update, CORE_ACT_CAMERAS_MANAGE},
        {WEB_DELETE, "/api/v1/cameras/{id}", camera_remove, CORE_ACT_CAMERAS_MANAGE},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

/*
 * api_gis.c — the map's questions over HTTP: the city, districts at a
 * point, reverse geocoding, name search, points near a place or in a box,
 * and layers as GeoJSON. Every query runs on a worker (the city serialises
 * its own queries; layer exports read the package file) and the reply is
 * sent from the loop. All need `map.read`.
 */
#include "internal.h"

#include "../gis/gis.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef json_t *(*gis_fn)(gis_city *c, void *args);

typedef struct {
    web_req *req;
    gis_city *city;
    gis_fn fn;
    double lon, lat, radius, bbox[4];
    int limit, has_bbox;
    char *text, *kind, *layer;
    json_t *result;
    const char *missing; /* 404 message when fn returns NULL */
    int z, x, y, tile_rc, cached;
    int64_t id;
    GBytes *tile;
} gis_job;

static void job_free(gis_job *j)
{
    if (j->tile)
        g_bytes_unref(j->tile);
    g_free(j->text);
    g_free(j->kind);
    g_free(j->layer);
    g_free(j);
}

static void job_work(void *p)
{
    gis_job *j = p;
    j->result = j->fn(j->city, j);
}

static void job_done(void *p)
{
    gis_job *j = p;
    if (j->result)
        web_reply_json(j->req, 200, j->result);
    else
        web_reply_error(j->req, 404, "not_found", "%s", j->missing ? j->missing : "not found");
    job_free(j);
}

/* A job for this request, or NULL after replying 404 when no city is loaded. */
static gis_job *job_new(web_req *req, gis_fn fn)
{
    gis_city *city = req->srv->deps.city;
    if (!city) {
        web_reply_error(req, 404, "no_city", "no city is loaded (start with --city DIR)");
        return NULL;
    }
    gis_job *j = g_new0(gis_job, 1);
    j->req = req;
    j->city = city;
    j->fn = fn;
    j->limit = 20;
    return j;
}

static void job_run(gis_job *j)
{
    web_req *req = j->req;
    int rc = core_work_submit(req->srv->deps.loop, job_work, job_done, j);
    if (rc) {
        job_free(j);
        web_reply_core_error(req, rc);
    }
}

static int point_params(web_req *req, gis_job *j)
{
    return web_query_double(req, "lon", 1, 0, -180, 180, &j->lon) ||
           web_query_double(req, "lat", 1, 0, -90, 90, &j->lat);
}

static int limit_param(web_req *req, gis_job *j, int def, int max)
{
    int64_t limit;
    if (web_query_int(req, "limit", def, 1, max, &limit))
        return -1;
    j->limit = (int)limit;
    return 0;
}

/* "w,s,e,n" in degrees, w <= e and s <= n. */
static int bbox_param(web_req *req, gis_job *j, int required)
{
    const char *v = web_query_get(req, "bbox");
    if (!v) {
        if (required)
            web_reply_error(req, 400, "invalid_parameter", "query parameter 'bbox' is required");
        return required ? -1 : 0;
    }
    char **parts = g_strsplit(v, ",", -1);
    int ok = g_strv_length(parts) == 4;
    for (int i = 0; ok && i < 4; i++) {
        char *end;
        j->bbox[i] = g_ascii_strtod(parts[i], &end);
        ok = *parts[i] && !*end;
    }
    g_strfreev(parts);
    ok = ok && gis_lonlat_valid(j->bbox[0], j->bbox[1]) &&
         gis_lonlat_valid(j->bbox[2], j->bbox[3]) && j->bbox[0] <= j->bbox[2] &&
         j->bbox[1] <= j->bbox[3];
    if (!ok) {
        web_reply_error(req, 400, "invalid_parameter",
                        "query parameter 'bbox' must be west,south,east,north in degrees");
        return -1;
    }
    j->has_bbox = 1;
    return 0;
}

/* ---- the questions ---- */

static json_t *do_info(gis_city *c, void *a)
{
    json_t *info = gis_city_info(c);
    json_object_set_new(info, "loaded", json_true());
    return info;
}

static json_t *do_districts(gis_city *c, void *a)
{
    gis_job *j = a;
    return json_pack("{so}", "districts", gis_districts_at(c, j->lon, j->lat, j->kind));
}

static json_t *do_reverse(gis_city *c, void *a)
{
    gis_job *j = a;
    return gis_reverse_within(c, j->lon, j->lat, j->radius);
}

static json_t *do_search(gis_city *c, void *a)
{
    gis_job *j = a;
    return json_pack("{so}", "results", gis_search(c, j->text, j->limit));
}

static json_t *do_nearby(gis_city *c, void *a)
{
    gis_job *j = a;
    json_t *r = gis_points_near(c, j->layer, j->lon, j->lat, j->radius, j->limit);
    return r ? json_pack("{so}", "features", r) : NULL;
}

static json_t *do_box(gis_city *c, void *a)
{
    gis_job *j = a;
    json_t *r =
        gis_points_in_box(c, j->layer, j->bbox[0], j->bbox[1], j->bbox[2], j->bbox[3], j->limit);
    return r ? json_pack("{so}", "features", r) : NULL;
}

static json_t *do_layer(gis_city *c, void *a)
{
    gis_job *j = a;
    return gis_layer_geojson(c, j->layer, j->has_bbox ? j->bbox : NULL, j->limit);
}

static json_t *do_feature(gis_city *c, void *a)
{
    gis_job *j = a;
    return gis_feature_geojson(c, j->layer, j->id);
}

/* ---- routes ---- */

/* 200 either way: a deployment without a city is not an error for a screen. */
static void city_info(web_req *req)
{
    if (!req->srv->deps.city) {
        web_reply_json(req, 200, json_pack("{sb}", "loaded", 0));
        return;
    }
    gis_job *j = job_new(req, do_info);
    if (j)
        job_run(j);
}

static void districts_at(web_req *req)
{
    gis_job *j = job_new(req, do_districts);
    if (!j)
        return;
    if (point_params(req, j)) {
        job_free(j);
        return;
    }
    j->kind = g_strdup(web_query_get(req, "kind"));
    job_run(j);
}

static void reverse(web_req *req)
{
    gis_job *j = job_new(req, do_reverse);
    if (!j)
        return;
    if (point_params(req, j) || web_query_double(req, "max_m", 0, 150, 1, 5000, &j->radius)) {
        job_free(j);
        return;
    }
    job_run(j);
}

static void search(web_req *req)
{
    gis_job *j = job_new(req, do_search);
    if (!j)
        return;
    const char *q = web_query_get(req, "q");
    if (!q || !*q || strlen(q) > 200 || !g_utf8_validate(q, -1, NULL)) {
        web_reply_error(req, 400, "invalid_parameter",
                        "query parameter 'q' must be 1 to 200 bytes of text");
        job_free(j);
        return;
    }
    if (limit_param(req, j, 10, 100)) {
        job_free(j);
        return;
    }
    j->text = g_strdup(q);
    job_run(j);
}

static int layer_param(web_req *req, gis_job *j, const char *name)
{
    if (!name || !*name || strlen(name) > 64) {
        web_reply_error(req, 400, "invalid_parameter", "a layer name is required");
        return -1;
    }
    j->layer = g_strdup(name);
    j->missing = "no such point layer";
    return 0;
}

static void nearby(web_req *req)
{
    gis_job *j = job_new(req, do_nearby);
    if (!j)
        return;
    if (layer_param(req, j, web_query_get(req, "layer")) || point_params(req, j) ||
        web_query_double(req, "radius", 0, 1000, 0, 50000, &j->radius) ||
        limit_param(req, j, 20, 500)) {
        job_free(j);
        return;
    }
    job_run(j);
}

static void in_box(web_req *req)
{
    gis_job *j = job_new(req, do_box);
    if (!j)
        return;
    if (layer_param(req, j, web_query_get(req, "layer")) || bbox_param(req, j, 1) ||
        limit_param(req, j, 100, 5000)) {
        job_free(j);
        return;
    }
    job_run(j);
}

static void layer_geojson(web_req *req)
{
    gis_job *j = job_new(req, do_layer);
    if (!j)
        return;
    if (layer_param(req, j, web_param(&req->params, "name")) || bbox_param(req, j, 0) ||
        limit_param(req, j, 1000, 10000)) {
        job_free(j);
        return;
    }
    j->missing = "no such layer";
    job_run(j);
}

static void feature_geojson(web_req *req)
{
    gis_job *j = job_new(req, do_feature);
    if (!j)
        return;
    if (layer_param(req, j, web_param(&req->params, "name")) ||
        web_path_id(req, "feature", &j->id)) {
        job_free(j);
        return;
    }
    j->missing = "no such layer or feature";
    job_run(j);
}

/* ---- vector tiles ---- */

static void tile_work(void *p)
{
    gis_job *j = p;
    j->tile_rc = gis_tile(j->city, j->layer, j->z, j->x, j->y, &j->tile, &j->cached);
}

static void tile_done(void *p)
{
    gis_job *j = p;
    if (j->tile_rc == CORE_ENOTFOUND) {
        web_reply_error(j->req, 404, "not_found", "no map layer '%s'", j->layer);
    } else if (j->tile_rc) {
        web_reply_error(j->req, 400, "invalid_parameter", "no tile %d/%d/%d (zoom 0-%d)", j->z,
                        j->x, j->y, GIS_MAX_ZOOM);
    } else {
        web_req_add_header(j->req, "cache-control", "private, max-age=600");
        web_req_add_header(j->req, "x-tile-cache", j->cached ? "hit" : "miss");
        web_reply(j->req, 200, "application/vnd.mapbox-vector-tile", g_steal_pointer(&j->tile));
    }
    job_free(j);
}

static int tile_coord(const char *s, const char *suffix, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || v < 0 || v > (1L << GIS_MAX_ZOOM) || strcmp(end, suffix) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

static void tile(web_req *req)
{
    gis_job *j = job_new(req, NULL);
    if (!j)
        return;
    if (layer_param(req, j, web_param(&req->params, "layer")) ||
        tile_coord(web_param(&req->params, "z"), "", &j->z) ||
        tile_coord(web_param(&req->params, "x"), "", &j->x) ||
        tile_coord(web_param(&req->params, "y"), ".mvt", &j->y)) {
        if (!req->replied)
            web_reply_error(req, 400, "invalid_parameter",
                            "a tile is /tiles/LAYER/Z/X/Y.mvt with whole numbers");
        job_free(j);
        return;
    }
    int rc = core_work_submit(req->srv->deps.loop, tile_work, tile_done, j);
    if (rc) {
        job_free(j);
        web_reply_core_error(req, rc);
    }
}

void web_api_gis_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_GET, "/api/v1/city", city_info, CORE_ACT_MAP_READ},
        {WEB_GET, "/api/v1/gis/districts", districts_at, CORE_ACT_MAP_READ},
        {WEB_GET, "/api/v1/gis/reverse", reverse, CORE_ACT_MAP_READ},
        {WEB_GET, "/api/v1/gis/search", search, CORE_ACT_MAP_READ},
        {WEB_GET, "/api/v1/gis/nearby", nearby, CORE_ACT_MAP_READ},
        {WEB_GET, "/api/v1/gis/box", in_box, CORE_ACT_MAP_READ},
        {WEB_GET, "/api/v1/gis/layers/{name}", layer_geojson, CORE_ACT_MAP_READ},
        {WEB_GET, "/api/v1/gis/layers/{name}/{id}", feature_geojson, CORE_ACT_MAP_READ},
        {WEB_GET, "/tiles/{layer}/{z}/{x}/{y}", tile, CORE_ACT_MAP_READ},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

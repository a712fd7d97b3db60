/*
 * internal.h — shared between the files of the web module only.
 */
#ifndef CITYCMD_WEB_INTERNAL_H
#define CITYCMD_WEB_INTERNAL_H

#include "envelope.h"
#include "router.h"
#include "web.h"

#include "../core/metrics.h"
#include "../core/session.h"
#include <libwebsockets.h>

typedef struct web_req web_req;
typedef void (*web_handler)(web_req *req);

/* Per-connection data libwebsockets allocates: an HTTP request pointer or ws_pss. */
#define WEB_PSS_SIZE 128

/* Who may call a route: a core_action, or one of these. */
#define WEB_PUBLIC (-1)    /* anyone, no session */
#define WEB_SIGNED_IN (-2) /* any signed-in user */

typedef struct {
    web_method method;
    const char *pattern;
    web_handler handler;
    int action;
} web_route;

/* One HTTP request. Fields are read-only for handlers. */
struct web_req {
    web_server *srv;
    web_method method;
    char *path;
    GHashTable *query; /* decoded name -> value */
    GByteArray *body;
    web_params params;
    const char *route; /* pattern, for metrics */
    char peer[64];     /* client address, for the audit trail */
    const web_route *rt;
    char *token;            /* bearer token, while the request needs it */
    core_session *session;  /* valid during the synchronous part of a handler only */
    char denied_action[32]; /* for the 403 sent once the refusal is recorded */
    int64_t started_us;
    /* private */
    struct lws *wsi; /* NULL once the connection closed */
    int refs;        /* connection + pending reply */
    int replied;
    int dispatched; /* a handler has it */
    int status;
    char *content_type;
    char *body_type;     /* the request's Content-Type (lower case, no parameters), or NULL */
    char *extra_headers; /* "name: value\r\n…" */
    GBytes *resp;
    size_t sent;
    int headers_sent;
    int close_after;  /* close the connection once the reply is sent */
    int discard_body; /* over the limit: read it, throw it away, then 413 */
};

struct web_server {
    web_deps deps;
    const core_config *cfg;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    web_router *router;
    char *static_dir;
    int port;
    int draining;
    int pending;       /* requests waiting for a reply */
    GList *ws_clients; /* of ws_client* */
    int ws_count;
    unsigned bus_sub;
    guint ws_flush_timer;   /* the next flush tick of broadcast messages, or 0 */
    GByteArray *ws_scratch; /* where batch frames are put together */
    GHashTable *ws_holders; /* incident id -> bits of the client slots that hold it (ws.c) */
    GArray *ws_slot_map;    /* guint64 words: client slots in use */
    guint ws_slot_words;    /* words a holders bitmap needs for every slot */
    guint units_timer;
    int64_t units_tick_us;   /* when the last units tick started (monotonic) */
    guint rec_timer;         /* the recommendations tick (ws_recommend.c) */
    GHashTable *units_dirty; /* unit ids changed since the last units tick (ws_units.c) */
    GHashTable *units_cell;  /* unit id -> the grid cell it was last offered from */
    GHashTable *units_views; /* grid cell -> GPtrArray of the ws_units_view* over it */
    GPtrArray *units_wide;   /* views over every cell */
    unsigned units_sub;
    int64_t started_ms;
    core_metric *m_ws_in, *m_ws_out, *m_ws_slow, *m_ws_toobig, *m_ws_rate, *m_ws_rejected;
    core_metric *m_ws_coalesced;
    struct vid_relay *relay; /* the cameras' live streams; NULL without a camera registry */
    GList *media_jobs;       /* snapshots and clips under way (api_video.c) */
    core_metric *m_video_sent, *m_video_skipped, *m_video_relay;
};

/* Replies. Each request gets exactly one; later calls are ignored. */
void web_reply(web_req *req, int status, const char *content_type, GBytes *body /* stolen */);
void web_reply_json(web_req *req, int status, json_t *body /* stolen */);
void web_reply_error(web_req *req, int status, const char *code, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
/* Maps a CORE_E* code to a status and error body. */
void web_reply_core_error(web_req *req, int err);
/* Adds a response header before replying ("allow", "GET, POST"). */
void web_req_add_header(web_req *req, const char *name, const char *value);

/* Query parameter value (URL-decoded) or NULL; owned by the request. */
const char *web_query_get(const web_req *req, const char *name);
/* Optional integer / number query parameters within [min, max] (def when
 * absent; a required one must be there); reply 400 naming the parameter and
 * return -1 otherwise. */
int web_query_int(web_req *req, const char *name, int64_t def, int64_t min, int64_t max,
                  int64_t *out);
int web_query_double(web_req *req, const char *name, int required, double def, double min,
                     double max, double *out);
/* 400 {"error":{"code":"invalid_field","message":…,"field":…}}. */
void web_reply_invalid(web_req *req, const char *field, const char *message);
/* The {id} of the path as a positive integer; replies 400 naming `what` and
 * returns -1 otherwise. */
int web_path_id(web_req *req, const char *what, int64_t *id);
/* The {id} of a unit path ("U-12" or "12"); replies 400 and returns -1 otherwise (api_units.c). */
int web_unit_path_id(web_req *req, int64_t *id);
/* "I-12" / "C-12" / "H-12" / "12" -> 12, or 0 (api_incidents.c). */
int64_t web_parse_ext(const char *s, char prefix);
/* "lon,lat" in range -> 0, else -1 (api_routing.c). */
int web_parse_point(const char *s, double *lon, double *lat);
/* Replies 403 and records actor's denied attempt in the audit trail. */
void web_reply_forbidden(web_req *req, const char *actor, const char *action, const char *object);

/* Parses the body as a JSON object; replies 400 and returns NULL if it is not one. */
json_t *web_req_json(web_req *req);

/* api_registry.c: what the registry routes share (units, cameras). */
typedef struct {
    const char *noun;   /* "unit": the reply's member, /api/v1/units/…, an import row's key */
    core_action manage; /* what a write needs (a refusal in the writer is audited as this) */
    /* Parses an import file (doc: the GeoJSON, else CSV text) as
     * disp_units_parse_csv/_geojson do. */
    int (*parse)(void *registry, const char *text, size_t len, const json_t *doc, json_t **rows,
                 char **where, char **field, char **message);
    /* Writes the rows (taken) as disp_units_import does; done is web_reg_written. */
    int (*import)(void *registry, json_t *rows, char **may, const char *actor, const char *source,
                  void *ctx);
} web_registry;
/* What a registry write carries to its completion. */
typedef struct {
    web_req *req;
    core_session *who; /* a copy: the session may end while the store works */
    const web_registry *reg;
} web_reg_ctx;
web_reg_ctx *web_reg_ctx_new(web_req *req, const web_registry *reg);
void web_reg_ctx_free(web_reg_ctx *c);
/* Replies 403 to user's attempt at action (audited); returns -1. */
int web_forbid(web_req *req, const char *user, core_action action);
/* An error naming the field, and the "line" or "feature" of at (may be NULL). */
void web_reply_field(web_req *req, int status, const char *code, const char *field,
                     const char *message, const json_t *at);
/* Replies to a failed write; r (may be NULL) as units.h and cameras.h describe it. */
void web_reg_failed(web_reg_ctx *c, int rc, const json_t *r);
/* The done of a registry write (arg: a web_reg_ctx, freed): 201 with its
 * location for a create, 200 for a change or an import, 204 for a removal. */
void web_reg_written(int rc, json_t *result, void *arg);
/* Replies to what a write call returned synchronously (frees c when it
 * failed; field and message are g_free'd). */
void web_reg_started(web_reg_ctx *c, int rc, char *field, char *message);
/* POST …/import: parses the body, checks every row's agency, writes. */
void web_reg_import(web_req *req, const web_registry *reg, void *registry);

/* http.c */
int web_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);
/* ws.c */
int web_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len);
void web_ws_init(web_server *srv);
/* The units tick (ws_units.c): each subscribed client gets what changed in its view. */
gboolean web_ws__units_tick(gpointer srv);

/* ws_units.c: the "units" topic. A client's view holds the unit ids it was
 * sent, and what it is owed since the last units message it took. */
typedef struct {
    GHashTable *shown, *owed, *owed_removed;
    int64_t district; /* the view is this district's area, or 0 */
    /* Where the owning client keeps its viewport and session. */
    const int *has_bbox_of;
    const double *bbox_of;
    core_session *const *session_of;
    GArray *cells; /* the grid cells it is registered in (gsize keys) */
    int registered, wide, touched;
} ws_units_view;
void ws_units_view_init(ws_units_view *v, const int *has_bbox, const double *bbox,
                        core_session *const *session);
/* Forgets what the client holds and stops hearing of units (unsubscribed). */
void ws_units_view_leave(web_server *srv, ws_units_view *v);
void ws_units_view_clear(web_server *srv, ws_units_view *v);
/* {"type":"units.snapshot"} of every unit the session may see in the view
 * (its viewport as it is now); resets the view and starts hearing of units. */
GBytes *ws_units_snapshot(web_server *srv, ws_units_view *v);
/* The tick, in three steps: each view is told whether its client took its
 * last units message (what it owed is then forgotten); the units changed
 * since the last tick are offered to the views that may hold them; then
 * each view owed something makes its message ({"type":"units"}, the units
 * it owes and the ids that left; NULL when nothing), which replaces a
 * message still waiting. snippets caches each unit's JSON for the tick (id
 * -> text, freed with free()). */
void ws_units_view_begin(ws_units_view *v, int still_queued);
void ws_units_collect(web_server *srv);
GBytes *ws_units_message(web_server *srv, ws_units_view *v, GHashTable *snippets);
/* ws_recommend.c: the recommendations a screen follows. */
typedef struct {
    int64_t incident; /* 0: none */
    char *last;       /* the last answer sent (compact JSON, sorted keys; free()) */
} ws_rec_watch;
/* Starts following data.incident (null: stops): the first answer (new
 * reference), or NULL with *code and *why set when refused (or NULL and
 * *code NULL when stopped). */
json_t *ws_rec_follow(web_server *srv, ws_rec_watch *w, const core_session *s, json_t *data,
                      const char **code, const char **why);
/* The new answer when it changed (new reference), {"incident_id","ended":true}
 * when the incident closed (and stops following), else NULL. answers caches
 * the tick's answers (int64 incident id -> json_t*, owned by the table). */
json_t *ws_rec_recompute(web_server *srv, ws_rec_watch *w, const core_session *s,
                         GHashTable *answers);
void ws_rec_clear(ws_rec_watch *w);
/* Units moved or changed: arms the recommendations tick. */
void ws_rec_changed(web_server *srv);
gboolean web_ws__rec_tick(gpointer srv);
/* ws_video.c: the live video tiles of one WebSocket client. ops reach the
 * client's own send queue: send_text queues a JSON text (taken, free()),
 * write_now writes what is queued if the socket can take it (ws.c). */
typedef struct ws_video ws_video;
typedef struct {
    void (*send_text)(void *client, char *text);
    void (*write_now)(void *client);
} ws_video_ops;
ws_video *ws_video_new(web_server *srv, const ws_video_ops *ops, void *client);
/* Ends every tile's watch. NULL is fine. */
void ws_video_free(ws_video *v);
/* video.watch / video.unwatch from a session (cameras.read per camera). */
void ws_video_message(ws_video *v, const core_session *s, web_envelope *env);
/* Frames are waiting to be written. */
int ws_video_pending(const ws_video *v);
/* Writes one binary frame (a WRITEABLE's one write). 0, or -1 when the
 * connection failed. */
int ws_video_write_one(ws_video *v, struct lws *wsi);
/* api_video.c: snapshots, clips, incident media. */
void web_api_video_register(web_server *srv);
void web_video_init(web_server *srv);
void web_video_fini(web_server *srv);
void ws_units_init(web_server *srv);
void ws_units_fini(web_server *srv);
void web_ws_close_all(web_server *srv, int status, const char *why);
/* Does an open WebSocket hold this session? (libwebsockets closes the ones
 * that stop answering pings, so an open one is a screen in use.) */
int web_ws_session_in_use(web_server *srv, const core_session *s);
/* Closes the WebSockets of a session that ended (1008). */
void web_ws_session_ended(web_server *srv, const core_session *s);
void web_ws_fini(web_server *srv);
/* api.c, api_gis.c */
void web_api_register(web_server *srv);
void web_api_gis_register(web_server *srv);
void web_api_incidents_register(web_server *srv);
void web_api_units_register(web_server *srv);
void web_api_routing_register(web_server *srv);
void web_api_avl_register(web_server *srv);
void web_api_geofences_register(web_server *srv);
void web_api_pipes_register(web_server *srv);
void web_api_cameras_register(web_server *srv);
void web_api_onvif_register(web_server *srv);
/* Adds routes (a static array: the router keeps pointers into it). */
void web_routes_add(web_server *srv, const web_route *routes, size_t n);

#endif

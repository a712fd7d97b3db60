/*
 * ws_video.c — live video tiles on a WebSocket: video.watch / video.unwatch
 * and the binary frames (docs/API.md, "Live video").
 *
 * Each tile a screen watches is a watch on the camera's shared stream
 * (video/relay.h) and a queue of frames not yet written. Frames come from
 * the relay already framed with room for the WebSocket header and our own
 * six bytes (kind, tile, flags), shared by every viewer: just before a frame
 * is written its six bytes are filled in for this tile, and libwebsockets
 * puts its header in the room before them. Nothing is copied per viewer.
 *
 * Falling behind: a tile whose oldest unwritten frame waited longer than
 * --video-viewer-lag, or whose queue holds more than TILE_MAX_BYTES, drops
 * its queued fragments and resumes at the next keyframe (counted in
 * citycmd_video_fragments_skipped). A screen that stops reading therefore
 * holds at most one lag's worth of video per tile, never a backlog, and the
 * player lands on live again. The newest init segment is kept through a
 * drop; older ones go with the fragments they described.
 *
 * Tiles with frames to write wait in a round-robin list; each write takes
 * one frame of the tile at its head, so one busy camera does not starve the
 * others. Loop thread only.
 */
#include "internal.h"

#include "../core/log.h"
#include "../video/relay.h"

#include <string.h>

#define HDR 6                     /* kind, tile (4), flags */
#define TILE_MAX_BYTES (8u << 20) /* a tile's unwritten frames */
#define KIND_INIT 1
#define KIND_MEDIA 2

typedef struct {
    GBytes *buf; /* LWS_PRE + HDR room, then the payload */
    int kind, key;
    int64_t recv_us, enq_us;
} vframe;

typedef struct tile {
    ws_video *v;
    uint32_t id;
    int64_t camera;
    vid_watch *w;
    int have_init; /* an init segment went into the queue for this stream */
    uint32_t init_id;
    int need_key; /* skipping until a keyframe */
    GQueue q;     /* vframe* */
    size_t q_bytes;
    int ready; /* in v->ready */
} tile;

struct ws_video {
    web_server *srv;
    const ws_video_ops *ops;
    void *client;
    GHashTable *tiles; /* id → tile* */
    GQueue ready;      /* tiles with frames to write */
};

static vid_relay *relay(const ws_video *v)
{
    return v->srv->relay;
}

static void vframe_free(vframe *f)
{
    g_bytes_unref(f->buf);
    g_free(f);
}

static json_t *tile_state(const tile *t)
{
    vid_ingest *in = vid_watch_ingest(t->w);
    vid_state st = vid_ingest_state(in);
    json_t *o = json_object();
    json_object_set_new(o, "tile", json_integer(t->id));
    json_object_set_new(o, "camera", vid_camera_id_json(t->camera));
    json_object_set_new(o, "state", json_string(vid_state_name(st)));
    json_object_set_new(o, "reason", json_string(vid_ingest_reason(in)));
    const char *codec = vid_ingest_codec_string(in);
    json_object_set_new(o, "codec", codec ? json_string(codec) : json_null());
    uint32_t w = 0, h = 0;
    GBytes *key = vid_ingest_last_keyframe(in, &w, &h);
    if (key)
        g_bytes_unref(key);
    json_object_set_new(o, "width", w ? json_integer(w) : json_null());
    json_object_set_new(o, "height", h ? json_integer(h) : json_null());
    return o;
}

static void queue_frame(tile *t, GBytes *buf, int kind, int key, int64_t recv_us)
{
    vframe *f = g_new(vframe, 1);
    f->buf = g_bytes_ref(buf);
    f->kind = kind;
    f->key = key;
    f->recv_us = recv_us;
    f->enq_us = core_mono_us();
    g_queue_push_tail(&t->q, f);
    t->q_bytes += g_bytes_get_size(buf);
    if (!t->ready) {
        t->ready = 1;
        g_queue_push_tail(&t->v->ready, t);
    }
}

/* The stream's current init segment for this tile: kind 1, the tile, the
 * codec string, then ftyp+moov. 0, or -1 before the stream has one. */
static int queue_init(tile *t)
{
    vid_ingest *in = vid_watch_ingest(t->w);
    uint32_t id = 0;
    GBytes *init = vid_ingest_init_segment(in, &id);
    const char *codec = vid_ingest_codec_string(in);
    if (!init || !codec) {
        if (init)
            g_bytes_unref(init);
        return -1;
    }
    size_t cl = strlen(codec), n = g_bytes_get_size(init);
    guint8 *b = g_malloc0(LWS_PRE + HDR + cl + n);
    guint8 *p = b + LWS_PRE;
    p[0] = KIND_INIT;
    p[1] = (guint8)(t->id >> 24), p[2] = (guint8)(t->id >> 16), p[3] = (guint8)(t->id >> 8);
    p[4] = (guint8)t->id;
    p[5] = (guint8)cl;
    memcpy(p + HDR, codec, cl);
    memcpy(p + HDR + cl, g_bytes_get_data(init, NULL), n);
    g_bytes_unref(init);
    GBytes *buf = g_bytes_new_take(b, LWS_PRE + HDR + cl + n);
    queue_frame(t, buf, KIND_INIT, 1, core_mono_us());
    g_bytes_unref(buf);
    t->have_init = 1;
    t->init_id = id;
    return 0;
}

/* Drops the tile's queued fragments, and every init segment but the newest:
 * with the fragments gone, an older one has nothing left to describe (a
 * camera that reconnects again and again while the screen reads nothing
 * would otherwise pile them up). */
static void drop_media(tile *t)
{
    GList *keep = t->q.tail;
    while (keep && ((vframe *)keep->data)->kind != KIND_INIT)
        keep = keep->prev;
    GList *l = t->q.head;
    while (l) {
        GList *next = l->next;
        vframe *f = l->data;
        if (l != keep) {
            t->q_bytes -= g_bytes_get_size(f->buf);
            if (f->kind == KIND_MEDIA)
                core_metric_add(t->v->srv->m_video_skipped, 1);
            vframe_free(f);
            g_queue_delete_link(&t->q, l);
        }
        l = next;
    }
    if (!t->q.head && t->ready) {
        t->ready = 0;
        g_queue_remove(&t->v->ready, t);
    }
}

static int lagging(const tile *t, int64_t now)
{
    if (t->q_bytes > TILE_MAX_BYTES)
        return 1;
    for (GList *l = t->q.head; l; l = l->next) {
        const vframe *f = l->data;
        if (f->kind == KIND_MEDIA)
            return now - f->enq_us > (int64_t)t->v->srv->cfg->video_viewer_queue_ms * 1000;
    }
    return 0;
}

static void on_fragment(vid_watch *w, const vid_relay_frag *f, void *user)
{
    (void)w;
    tile *t = user;
    if (!t->have_init || f->init_id != t->init_id) {
        if (!f->keyframe || queue_init(t) < 0) {
            core_metric_add(t->v->srv->m_video_skipped, 1);
            return;
        }
        t->need_key = 0;
    } else if (lagging(t, core_mono_us())) {
        drop_media(t);
        t->need_key = 1;
    }
    if (t->need_key) {
        if (!f->keyframe) {
            core_metric_add(t->v->srv->m_video_skipped, 1);
            return;
        }
        t->need_key = 0;
    }
    queue_frame(t, f->framed, KIND_MEDIA, f->keyframe, f->recv_us);
    t->v->ops->write_now(t->v->client);
}

static void on_state(vid_watch *w, vid_state state, const char *why, void *user)
{
    (void)w;
    tile *t = user;
    if (state != VID_STATE_PLAYING)
        t->have_init = 0; /* a new connection brings a new init segment */
    json_t *o = tile_state(t);
    json_object_set_new(o, "state", json_string(vid_state_name(state)));
    json_object_set_new(o, "reason", json_string(why));
    t->v->ops->send_text(t->v->client, web_envelope_reply("video.state", NULL, o));
}

static const vid_watch_ops watch_ops = {on_fragment, on_state};

static void tile_free(tile *t)
{
    vid_watch_end(t->w);
    if (t->ready)
        g_queue_remove(&t->v->ready, t);
    g_queue_clear_full(&t->q, (GDestroyNotify)vframe_free);
    g_free(t);
}

ws_video *ws_video_new(web_server *srv, const ws_video_ops *ops, void *client)
{
    ws_video *v = g_new0(ws_video, 1);
    v->srv = srv;
    v->ops = ops;
    v->client = client;
    v->tiles =
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)tile_free);
    g_queue_init(&v->ready);
    return v;
}

void ws_video_free(ws_video *v)
{
    if (!v)
        return;
    g_hash_table_destroy(v->tiles);
    g_queue_clear(&v->ready);
    g_free(v);
}

static int tile_id(json_t *data, uint32_t *id)
{
    json_t *j = json_object_get(data, "tile");
    if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > 65535)
        return -1;
    *id = (uint32_t)json_integer_value(j);
    return 0;
}

static void reply_error(ws_video *v, const json_t *re, const char *code, const char *msg)
{
    v->ops->send_text(v->client, web_envelope_error(re, code, msg));
}

static void watch(ws_video *v, const core_session *s, web_envelope *env)
{
    uint32_t id;
    if (tile_id(env->data, &id) < 0) {
        reply_error(v, env->id, "invalid_field", "tile: an integer from 1 to 65535");
        return;
    }
    json_t *cj = json_object_get(env->data, "camera");
    int64_t cam = json_is_integer(cj)  ? json_integer_value(cj)
                  : json_is_string(cj) ? vid_camera_parse_id(json_string_value(cj))
                                       : 0;
    if (cam <= 0) {
        reply_error(v, env->id, "invalid_field", "camera: an id such as \"C-2\"");
        return;
    }
    const vid_camera *c = v->srv->deps.cameras ? vid_cameras_get(v->srv->deps.cameras, cam) : NULL;
    if (!c || !core_may(s, CORE_ACT_CAMERAS_READ, c->agency) || !relay(v)) {
        reply_error(v, env->id, "not_found", "no such camera");
        return;
    }
    if (!g_hash_table_contains(v->tiles, GUINT_TO_POINTER(id)) &&
        g_hash_table_size(v->tiles) >= (guint)v->srv->cfg->video_max_tiles) {
        reply_error(v, env->id, "too_many_tiles", "this screen watches as many tiles as it may");
        return;
    }
    g_hash_table_remove(v->tiles, GUINT_TO_POINTER(id)); /* a tile reused: what it showed ends */
    tile *t = g_new0(tile, 1);
    t->v = v;
    t->id = id;
    t->camera = cam;
    g_queue_init(&t->q);
    char *err = NULL;
    t->w = vid_relay_watch(relay(v), cam, &watch_ops, t, &err);
    if (!t->w) {
        reply_error(v, env->id, "camera_error", err ? err : "the camera cannot be watched");
        g_free(err);
        g_free(t);
        return;
    }
    g_hash_table_insert(v->tiles, GUINT_TO_POINTER(id), t);
    v->ops->send_text(v->client, web_envelope_reply("video.watch", env->id, tile_state(t)));
    /* Start at once from the kept keyframe group. */
    GPtrArray *gop = vid_watch_gop(t->w);
    if (gop->len && queue_init(t) == 0)
        for (guint i = 0; i < gop->len; i++)
            queue_frame(t, gop->pdata[i], KIND_MEDIA, i == 0, 0);
    g_ptr_array_unref(gop);
    /* The reply queued above asks for the WRITEABLE that writes these too. */
}

void ws_video_message(ws_video *v, const core_session *s, web_envelope *env)
{
    if (strcmp(env->type, "video.watch") == 0) {
        watch(v, s, env);
        return;
    }
    uint32_t id;
    if (tile_id(env->data, &id) < 0) {
        reply_error(v, env->id, "invalid_field", "tile: an integer from 1 to 65535");
        return;
    }
    g_hash_table_remove(v->tiles, GUINT_TO_POINTER(id));
    v->ops->send_text(v->client,
                      web_envelope_reply("video.unwatch", env->id, json_pack("{si}", "tile", id)));
}

int ws_video_pending(const ws_video *v)
{
    return v && v->ready.head != NULL;
}

int ws_video_write_one(ws_video *v, struct lws *wsi)
{
    tile *t = g_queue_pop_head(&v->ready);
    if (!t)
        return 0;
    vframe *f = g_queue_pop_head(&t->q);
    t->q_bytes -= g_bytes_get_size(f->buf);
    if (t->q.head)
        g_queue_push_tail(&v->ready, t);
    else
        t->ready = 0;
    gsize n;
    /* The frame is shared with other viewers: its header is this tile's
     * only from here to the write; libwebsockets writes its own header in
     * the room before (loop thread: nothing else touches it meanwhile). */
    guint8 *p = (guint8 *)g_bytes_get_data(f->buf, &n) + LWS_PRE;
    n -= LWS_PRE;
    p[0] = (guint8)f->kind;
    p[1] = (guint8)(t->id >> 24), p[2] = (guint8)(t->id >> 16), p[3] = (guint8)(t->id >> 8);
    p[4] = (guint8)t->id;
    if (f->kind == KIND_MEDIA)
        p[5] = f->key ? 1 : 0;
    int w = lws_write(wsi, p, n, LWS_WRITE_BINARY);
    if (f->kind == KIND_MEDIA)
        core_metric_add(v->srv->m_video_sent, 1);
    if (f->kind == KIND_MEDIA && f->recv_us) /* live, not the kept group sent on joining */
        core_metric_observe(v->srv->m_video_relay,
                            (double)(core_mono_us() - f->recv_us) / G_USEC_PER_SEC);
    vframe_free(f);
    return w < (int)n ? -1 : 0;
}

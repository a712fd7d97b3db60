/*
 * relay.c — one shared ingest per watched camera (relay.h).
 *
 * A stream lives in r->streams (camera id → stream) from its first watch
 * until its idle timer fires with no watch left; the idle timer starts when
 * the last watch ends and is cancelled by a new one. Each fragment from the
 * ingest is copied once into a framed buffer (headroom + fragment) and given
 * to every watch; the framed keyframe group is kept for new watches.
 *
 * Watch callbacks may end any watch, their own included: delivery walks a
 * snapshot of the list, and an ended watch is only marked (w->ops = NULL)
 * until the walk is over.
 *
 * The registry is looked at every CHECK_S seconds: a stream whose camera
 * was removed stops, and its watches are told ("idle", "removed") and get
 * nothing more until they end; a watched stream whose URL or credentials
 * changed starts again from the new source (its watches see it connect and
 * get a new init segment).
 */
#include "relay.h"

#include "../core/log.h"

#include <string.h>

/* Bytes of ring per second of --video-ring: room for 16 Mbit/s. */
#define RING_BYTES_PER_S (2u << 20)
#define CHECK_S 2

typedef struct stream {
    vid_relay *r;
    int64_t camera;
    char *url, *user, *password; /* what the ingest was made with */
    vid_ingest *in;
    GPtrArray *watches; /* vid_watch* */
    GPtrArray *gop;     /* framed GBytes since the last keyframe */
    size_t gop_bytes;
    guint idle_timer;
    int delivering; /* a fragment or state walk is running */
    int removed;    /* the camera is gone: stopped, never started again */
} stream;

struct vid_watch {
    stream *s;
    const vid_watch_ops *ops; /* NULL: holds the stream only, or ended */
    void *user;
    int ended;
};

struct vid_relay {
    core_loop *loop;
    vid_cameras *cams;
    size_t headroom;
    int idle_s, ring_s;
    GHashTable *streams; /* camera id (pointer) → stream* */
    guint check_timer;
};

#define CAM_KEY(id) GSIZE_TO_POINTER((gsize)(id))

static void stream_free(stream *s)
{
    if (s->idle_timer)
        g_source_remove(s->idle_timer);
    vid_ingest_free(s->in);
    g_ptr_array_unref(s->watches);
    g_ptr_array_unref(s->gop);
    g_free(s->url);
    g_free(s->user);
    g_free(s->password);
    g_free(s);
}

/* Drops ended watches once no walk is running. */
static void sweep(stream *s)
{
    if (s->delivering)
        return;
    for (guint i = s->watches->len; i-- > 0;) {
        vid_watch *w = s->watches->pdata[i];
        if (w->ended) {
            g_ptr_array_remove_index(s->watches, i);
            g_free(w);
        }
    }
}

static void on_fragment(vid_ingest *in, const vid_fragment *f, void *user)
{
    (void)in;
    stream *s = user;
    gsize n;
    const void *data = g_bytes_get_data(f->fragment, &n);
    guint8 *buf = g_malloc(s->r->headroom + n);
    memset(buf, 0, s->r->headroom);
    memcpy(buf + s->r->headroom, data, n);
    vid_relay_frag rf = {g_bytes_new_take(buf, s->r->headroom + n), f->keyframe, f->init_id,
                         f->recv_us};
    vid__gop_add(s->gop, &s->gop_bytes, rf.framed, f->keyframe);
    s->delivering++;
    for (guint i = 0; i < s->watches->len; i++) {
        vid_watch *w = s->watches->pdata[i];
        if (!w->ended && w->ops && w->ops->fragment)
            w->ops->fragment(w, &rf, w->user);
    }
    s->delivering--;
    sweep(s);
    g_bytes_unref(rf.framed);
}

static void on_state(vid_ingest *in, vid_state state, const char *why, void *user)
{
    (void)in;
    stream *s = user;
    if (s->removed)
        return; /* the watches were told why */
    if (state != VID_STATE_PLAYING) {
        g_ptr_array_set_size(s->gop, 0); /* a new connection starts a new init segment */
        s->gop_bytes = 0;
    }
    s->delivering++;
    for (guint i = 0; i < s->watches->len; i++) {
        vid_watch *w = s->watches->pdata[i];
        if (!w->ended && w->ops && w->ops->state)
            w->ops->state(w, state, why ? why : "", w->user);
    }
    s->delivering--;
    sweep(s);
}

static gboolean idle_stop(gpointer p)
{
    stream *s = p;
    s->idle_timer = 0;
    if (s->watches->len == 0) {
        log_info("video.idle", "camera=C-%" G_GINT64_FORMAT " stopped", s->camera);
        g_hash_table_remove(s->r->streams, CAM_KEY(s->camera));
    }
    return G_SOURCE_REMOVE;
}

static int same_source(const stream *s, const vid_camera *cam)
{
    return g_strcmp0(s->url, cam->rtsp_url) == 0 && g_strcmp0(s->user, cam->username) == 0 &&
           g_strcmp0(s->password, cam->password) == 0;
}

static vid_ingest *ingest_new(stream *s, const vid_camera *cam, char **err)
{
    vid_relay *r = s->r;
    g_free(s->url), g_free(s->user), g_free(s->password);
    s->url = g_strdup(cam->rtsp_url);
    s->user = g_strdup(cam->username);
    s->password = g_strdup(cam->password);
    vid_source src = {cam->rtsp_url, *cam->username ? cam->username : NULL,
                      *cam->password ? cam->password : NULL, r->ring_s,
                      (size_t)r->ring_s * RING_BYTES_PER_S};
    return vid_ingest_new(r->loop, &src, on_fragment, on_state, s, err);
}

static int live_watches(const stream *s)
{
    int n = 0;
    for (guint i = 0; i < s->watches->len; i++)
        n += ((vid_watch *)s->watches->pdata[i])->ended ? 0 : 1;
    return n;
}

/* The camera is gone: the stream stops for good and its watches hear why. */
static void stream_removed(stream *s)
{
    log_info("video.removed", "camera=C-%" G_GINT64_FORMAT " watches=%d", s->camera,
             live_watches(s));
    s->removed = 1;
    vid_ingest_stop(s->in);
    g_ptr_array_set_size(s->gop, 0);
    s->gop_bytes = 0;
    s->delivering++;
    for (guint i = 0; i < s->watches->len; i++) {
        vid_watch *w = s->watches->pdata[i];
        if (!w->ended && w->ops && w->ops->state)
            w->ops->state(w, VID_STATE_IDLE, "removed", w->user);
    }
    s->delivering--;
    sweep(s);
}

/* Watched, and its source changed: start again from the new one. */
static void stream_moved(stream *s, const vid_camera *cam)
{
    char *err = NULL;
    vid_ingest *old = s->in, *in = ingest_new(s, cam, &err);
    if (!in) {
        log_warn("video.source", "camera=C-%" G_GINT64_FORMAT " error=\"%s\"", s->camera, err);
        g_free(err);
        return; /* the old stream goes on */
    }
    log_info("video.source", "camera=C-%" G_GINT64_FORMAT " changed: starting again", s->camera);
    s->in = in;
    s->delivering++; /* the old ingest's last state goes nowhere */
    s->removed = 1;
    vid_ingest_free(old);
    s->removed = 0;
    s->delivering--;
    g_ptr_array_set_size(s->gop, 0);
    s->gop_bytes = 0;
    vid_ingest_start(in);
}

static gboolean check_sources(gpointer p)
{
    vid_relay *r = p;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, r->streams);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        stream *s = v;
        const vid_camera *cam = vid_cameras_get(r->cams, s->camera);
        if (s->removed || s->delivering)
            continue;
        if (!cam)
            stream_removed(s);
        else if (!same_source(s, cam) && live_watches(s))
            stream_moved(s, cam);
    }
    return G_SOURCE_CONTINUE;
}

vid_relay *vid_relay_new(core_loop *loop, vid_cameras *cams, size_t headroom, int idle_s,
                         int ring_s)
{
    vid_relay *r = g_new0(vid_relay, 1);
    r->loop = loop;
    r->cams = cams;
    r->headroom = headroom;
    r->idle_s = idle_s;
    r->ring_s = ring_s;
    r->streams =
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)stream_free);
    r->check_timer = g_timeout_add_seconds(CHECK_S, check_sources, r);
    return r;
}

void vid_relay_free(vid_relay *r)
{
    if (!r)
        return;
    g_source_remove(r->check_timer);
    g_hash_table_destroy(r->streams);
    g_free(r);
}

static stream *stream_new(vid_relay *r, const vid_camera *cam, char **err)
{
    stream *s = g_new0(stream, 1);
    s->r = r;
    s->camera = cam->id;
    s->watches = g_ptr_array_new();
    s->gop = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    s->in = ingest_new(s, cam, err);
    if (!s->in) {
        stream_free(s);
        return NULL;
    }
    vid_ingest_start(s->in);
    return s;
}

vid_watch *vid_relay_watch(vid_relay *r, int64_t camera, const vid_watch_ops *ops, void *user,
                           char **err)
{
    const vid_camera *cam = vid_cameras_get(r->cams, camera);
    stream *s = g_hash_table_lookup(r->streams, CAM_KEY(camera));
    if (!cam) {
        *err = g_strdup("no such camera");
        return NULL;
    }
    if (s && (s->removed || !same_source(s, cam)) && s->watches->len == 0 && !s->delivering) {
        /* Changed or removed (and added again) since it started, and
         * nobody watches: start afresh. */
        g_hash_table_remove(r->streams, CAM_KEY(camera));
        s = NULL;
    }
    if (s && s->removed) {
        *err = g_strdup("no such camera");
        return NULL;
    }
    if (!s) {
        if (!(s = stream_new(r, cam, err)))
            return NULL;
        g_hash_table_insert(r->streams, CAM_KEY(camera), s);
        log_info("video.start", "camera=C-%" G_GINT64_FORMAT, camera);
    }
    if (s->idle_timer) {
        g_source_remove(s->idle_timer);
        s->idle_timer = 0;
    }
    vid_watch *w = g_new0(vid_watch, 1);
    w->s = s;
    w->ops = ops;
    w->user = user;
    g_ptr_array_add(s->watches, w);
    return w;
}

void vid_watch_end(vid_watch *w)
{
    if (!w || w->ended)
        return;
    stream *s = w->s;
    w->ended = 1;
    w->ops = NULL;
    sweep(s);
    if (live_watches(s) == 0 && !s->idle_timer)
        s->idle_timer =
            g_timeout_add_seconds(s->r->idle_s > 0 ? (guint)s->r->idle_s : 0, idle_stop, s);
}

vid_ingest *vid_watch_ingest(const vid_watch *w)
{
    return w->s->in;
}

int64_t vid_watch_camera(const vid_watch *w)
{
    return w->s->camera;
}

GPtrArray *vid_watch_gop(const vid_watch *w)
{
    GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint i = 0; i < w->s->gop->len; i++)
        g_ptr_array_add(a, g_bytes_ref(w->s->gop->pdata[i]));
    return a;
}

void vid_relay_counts(const vid_relay *r, unsigned *streams, unsigned *watches)
{
    unsigned n = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, r->streams);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        stream *s = v;
        for (guint i = 0; i < s->watches->len; i++)
            n += ((vid_watch *)s->watches->pdata[i])->ended ? 0 : 1;
    }
    if (streams)
        *streams = g_hash_table_size(r->streams);
    if (watches)
        *watches = n;
}

/*
 * ingest.c — one camera's live stream (ingest.h).
 *
 * Each running ingest has a reader thread: it opens the RTSP session
 * (rtsp.h), reads the interleaved RTP packets, puts them together into
 * access units (rtp_depay.h) and posts each access unit to the loop
 * (core_loop_post), where stream.c makes the fragments. A failure the
 * thread sees (the camera unreachable, refusing, closing) is posted too; on
 * the loop it tears the thread down and arms the retry timer. A watchdog a
 * second notices a stream that stopped without saying so.
 *
 * Why a thread of our own and not rtspsrc: rtspsrc runs a jitter buffer and
 * an RTCP session per camera, four threads that wake for every packet; over
 * TCP nothing is reordered or lost, so neither is needed, and one blocking
 * reader per camera that takes many packets per system call costs a
 * fraction of it (docs/BENCHMARKS.md, "Live video").
 *
 * Invariants: the thread, the cancellable and every timer belong to the
 * loop thread, which starts the reader and, on teardown, cancels and joins
 * it (every wait in the reader ends at once when cancelled). The reader
 * touches only its own session and depayloader, the atomic pending counts,
 * the time of its last packet, the drop flag, the codec and the generation number (an access unit
 * posted by a reader that has since been torn down is recognised by its generation and thrown
 * away). A posted access unit holds a reference to the ingest.
 */
#include "ingest_internal.h"
#include "rtp_depay.h"
#include "rtsp.h"

#include "../core/log.h"

#include <string.h>

static const char *const state_names[] = {"idle", "connecting", "playing", "retrying"};

const char *vid_state_name(vid_state s)
{
    return state_names[s];
}

/* ---- from the reader thread ---- */

typedef struct {
    vid_ingest *in;
    unsigned gen;
    vid__au au;
    char *why; /* a failure, instead of an access unit */
} posted;

static void on_posted(void *p);
static void unref(vid_ingest *in);

static void post(vid_ingest *in, unsigned gen, posted *p)
{
    p->in = in;
    p->gen = gen;
    g_atomic_int_inc(&in->refs); /* what is posted keeps the ingest alive */
    core_loop_post(in->loop, on_posted, p);
}

typedef struct {
    vid_ingest *in;
    unsigned gen;
    int64_t clock; /* the RTP clock rate */
    int64_t t0;    /* in->connect_us */
    vid_depay *depay;
} reader;

/* RTP time to 90 kHz without overflowing for any time a camera can send. */
static int64_t to_90k(int64_t t, int64_t clock)
{
    return t / clock * 90000 + t % clock * 90000 / clock;
}

static void on_au(GBytes *au, int64_t rtp_time, int key, void *user)
{
    reader *rd = user;
    vid_ingest *in = rd->in;
    int size = (int)g_bytes_get_size(au); /* at most VID_DEPAY_MAX_AU */
    if ((g_atomic_int_get(&in->dropping) && !key) ||
        g_atomic_int_get(&in->pending) >= VID_INGEST_MAX_PENDING ||
        g_atomic_int_get(&in->pending_bytes) + size > VID_INGEST_MAX_PENDING_BYTES) {
        /* The loop is behind: drop until the next keyframe, which restarts cleanly. */
        g_atomic_int_set(&in->dropping, 1);
        g_atomic_int_inc(&in->dropped);
        g_bytes_unref(au);
        return;
    }
    g_atomic_int_set(&in->dropping, 0);
    posted *p = g_new0(posted, 1);
    p->au.data = au;
    p->au.pts = p->au.dts = to_90k(rtp_time, rd->clock);
    p->au.key = key;
    p->au.recv_us = g_get_monotonic_time();
    g_atomic_int_inc(&in->pending);
    g_atomic_int_add(&in->pending_bytes, size);
    post(in, rd->gen, p);
}

static void on_packet(const uint8_t *pkt, size_t len, void *user)
{
    reader *rd = user;
    /* Packets are life even while no whole frame comes (waiting for a
     * keyframe after a loss): the watchdog looks at this. */
    g_atomic_int_set(&rd->in->alive_ms, (int)((g_get_monotonic_time() - rd->t0) / 1000));
    vid_depay_push(rd->depay, pkt, len);
}

static gpointer read_camera(gpointer user)
{
    reader *rd = user;
    vid_ingest *in = rd->in;
    char *why = NULL;
    vid_rtsp *r = vid_rtsp_open(in->url, in->user, in->password, in->cancel, &why);
    if (r) {
        const vid_rtsp_media *m = vid_rtsp_media_get(r);
        rd->clock = m->clock_rate > 0 ? m->clock_rate : 90000;
        g_atomic_int_set(&in->codec_seen, m->codec);
        g_atomic_int_set(&in->linked, 1);
        rd->depay = vid_depay_new(m->codec, m->payload_type, m->fmtp, on_au, rd);
        why = vid_rtsp_read(r, on_packet, rd, in->cancel);
        vid_depay_free(rd->depay);
        vid_rtsp_close(r);
    }
    if (why) {
        posted *p = g_new0(posted, 1);
        p->why = why;
        post(in, rd->gen, p);
    }
    g_free(rd);
    unref(in);
    return NULL;
}

/* ---- the loop side ---- */

static void set_state(vid_ingest *in, vid_state s, const char *why)
{
    g_strlcpy(in->reason, why ? why : "", sizeof in->reason);
    if (in->state == s)
        return;
    in->state = s;
    log_info("video.state", "url=\"%s\" state=%s reason=\"%s\"", in->safe_url, vid_state_name(s),
             in->reason);
    if (in->on_state)
        in->on_state(in, s, in->reason, in->user_data);
}

static void teardown(vid_ingest *in)
{
    g_atomic_int_inc(&in->gen);
    if (in->thread) {
        g_cancellable_cancel(in->cancel);
        g_thread_join(in->thread);
        in->thread = NULL;
        g_clear_object(&in->cancel);
    }
    g_atomic_int_set(&in->linked, 0);
    vid__writer_reset(in);
}

static void connect_now(vid_ingest *in);

static gboolean retry_fire(gpointer p)
{
    vid_ingest *in = p;
    in->retry_timer = 0;
    connect_now(in);
    return G_SOURCE_REMOVE;
}

static void fail(vid_ingest *in, const char *why)
{
    teardown(in);
    if (!in->wanted) {
        set_state(in, VID_STATE_IDLE, why);
        return;
    }
    in->restarts++;
    set_state(in, VID_STATE_RETRYING, why);
    in->retry_ms = in->retry_ms ? MIN(in->retry_ms * 2, VID_INGEST_RETRY_MAX_MS) : 1000;
    in->retry_timer = g_timeout_add((guint)in->retry_ms, retry_fire, in);
}

static void connect_now(vid_ingest *in)
{
    teardown(in);
    reader *rd = g_new0(reader, 1);
    rd->in = in;
    rd->gen = (unsigned)g_atomic_int_get(&in->gen);
    g_atomic_int_inc(&in->refs); /* the reader's */
    in->cancel = g_cancellable_new();
    in->connect_us = rd->t0 = g_get_monotonic_time();
    in->last_au_us = 0;
    g_atomic_int_set(&in->alive_ms, 0);
    set_state(in, VID_STATE_CONNECTING, "");
    in->thread = g_thread_new("vid-rtsp", read_camera, rd);
}

/* A second's look: a stream that sends nothing, or never a whole picture,
 * is stalled. Until the session plays, the reader's own timeouts bound each
 * step and it says what failed. */
static gboolean watchdog(gpointer p)
{
    vid_ingest *in = p;
    if (!in->thread || !g_atomic_int_get(&in->linked))
        return G_SOURCE_CONTINUE;
    int64_t now = g_get_monotonic_time();
    int64_t packet = in->connect_us + (int64_t)g_atomic_int_get(&in->alive_ms) * 1000;
    int silent = now - MAX(packet, in->last_au_us) > (int64_t)VID_INGEST_STALL_MS * 1000;
    int no_picture = !in->last_au_us && now - in->connect_us > (int64_t)VID_INGEST_FIRST_MS * 1000;
    if (silent || no_picture)
        fail(in, "stalled");
    return G_SOURCE_CONTINUE;
}

static void on_posted(void *pp)
{
    posted *p = pp;
    vid_ingest *in = p->in;
    int current = !in->freed && p->gen == (unsigned)g_atomic_int_get(&in->gen) && in->thread;
    if (p->why) {
        if (current)
            fail(in, p->why);
        g_free(p->why);
    } else {
        g_atomic_int_dec_and_test(&in->pending);
        g_atomic_int_add(&in->pending_bytes, -(int)g_bytes_get_size(p->au.data));
        if (current) {
            in->frames++;
            in->last_au_us = p->au.recv_us;
            if (in->state != VID_STATE_PLAYING) {
                in->retry_ms = 0;
                set_state(in, VID_STATE_PLAYING, "");
            }
            in->codec = (vid_codec)g_atomic_int_get(&in->codec_seen);
            vid__take_au(in, &p->au);
        }
        g_bytes_unref(p->au.data);
    }
    g_free(p);
    unref(in);
}

/* ---- public ---- */

/* The URL without credentials, for logs. */
static char *safe_url(const char *url)
{
    const char *at = strchr(url, '@'), *scheme = strstr(url, "://");
    if (!at || !scheme || at < scheme)
        return g_strdup(url);
    return g_strdup_printf("%.*s://…@%s", (int)(scheme - url), url, at + 1);
}

vid_ingest *vid_ingest_new(core_loop *loop, const vid_source *src, vid_fragment_fn on_fragment,
                           vid_state_fn on_state, void *user, char **err)
{
    if (vid_init(err))
        return NULL;
    if (!src || !src->url || !g_str_has_prefix(src->url, "rtsp")) {
        if (err)
            *err = g_strdup("an rtsp:// or rtsps:// URL");
        return NULL;
    }
    vid_ingest *in = g_new0(vid_ingest, 1);
    in->loop = loop;
    in->url = g_strdup(src->url);
    in->safe_url = safe_url(src->url);
    in->user = g_strdup(src->user);
    in->password = g_strdup(src->password);
    in->ring_us = (int64_t)MAX(src->ring_seconds, 0) * G_USEC_PER_SEC;
    in->ring_bytes = src->ring_bytes ? src->ring_bytes : (size_t)64 << 20;
    in->on_fragment = on_fragment;
    in->on_state = on_state;
    in->user_data = user;
    in->refs = 1;
    in->gop = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_queue_init(&in->ring);
    in->frag = g_byte_array_new();
    in->watchdog = g_timeout_add(1000, watchdog, in);
    return in;
}

void vid_ingest_start(vid_ingest *in)
{
    if (in->wanted)
        return;
    in->wanted = 1;
    in->retry_ms = 0;
    connect_now(in);
}

void vid_ingest_stop(vid_ingest *in)
{
    in->wanted = 0;
    if (in->retry_timer)
        g_source_remove(in->retry_timer), in->retry_timer = 0;
    teardown(in);
    set_state(in, VID_STATE_IDLE, "");
}

static void unref(vid_ingest *in)
{
    if (!g_atomic_int_dec_and_test(&in->refs))
        return;
    vid__ring_clear(in);
    g_ptr_array_unref(in->gop);
    g_byte_array_unref(in->frag);
    if (in->last_key)
        g_bytes_unref(in->last_key);
    g_free(in->url);
    g_free(in->safe_url);
    g_free(in->user);
    g_free(in->password);
    g_free(in);
}

/* Frames still posted to the loop hold a reference each: the memory goes
 * with the last of them, and they are ignored once the ingest is freed. */
void vid_ingest_free(vid_ingest *in)
{
    if (!in)
        return;
    vid_ingest_stop(in);
    g_source_remove(in->watchdog);
    in->freed = 1;
    unref(in);
}

vid_state vid_ingest_state(const vid_ingest *in)
{
    return in->state;
}
const char *vid_ingest_reason(const vid_ingest *in)
{
    return in->reason;
}
vid_codec vid_ingest_codec(const vid_ingest *in)
{
    return in->codec;
}

void vid_ingest_counts(const vid_ingest *in, uint64_t *frames, uint64_t *dropped,
                       uint64_t *restarts)
{
    if (frames)
        *frames = in->frames;
    if (dropped)
        *dropped = (uint64_t)g_atomic_int_get(&((vid_ingest *)in)->dropped);
    if (restarts)
        *restarts = in->restarts;
}

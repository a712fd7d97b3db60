/*
 * stream.c — what an ingest makes of its access units (ingest.h): the
 * fragments for the viewers, the keyframe group a new viewer starts with,
 * the last keyframe for snapshots, and the ring of recent access units for
 * clips. Loop thread.
 *
 * Times: the writer gets 90 kHz decode times counted from the first access
 * unit of the connection, so a reconnection starts a new writer (and a new
 * init segment) at time 0; viewers treat a new init segment as a new
 * stream.
 */
#include "ingest_internal.h"

#include "../core/log.h"

#include <string.h>

void vid__gop_add(GPtrArray *gop, size_t *bytes, GBytes *frag, int keyframe)
{
    size_t n = g_bytes_get_size(frag);
    if (keyframe || *bytes + n > VID_INGEST_GOP_MAX_BYTES) {
        g_ptr_array_set_size(gop, 0);
        *bytes = 0;
    }
    if (!keyframe && !gop->len)
        return; /* a group starts at a keyframe */
    g_ptr_array_add(gop, g_bytes_ref(frag));
    *bytes += n;
}

void vid__writer_reset(vid_ingest *in)
{
    vid_fmp4_free(in->writer);
    in->writer = NULL;
    g_ptr_array_set_size(in->gop, 0);
    in->gop_bytes = 0;
    /* A new connection counts its times afresh: what the ring holds of the
     * last one would not line up with it. */
    vid__ring_clear(in);
}

static void au_free(gpointer p)
{
    vid__au *a = p;
    g_bytes_unref(a->data);
    g_free(a);
}

void vid__ring_clear(vid_ingest *in)
{
    g_queue_clear_full(&in->ring, au_free);
    in->ring_size = 0;
}

/* Keeps the access unit; drops what is older than the ring's span or over
 * its bytes, but always from a keyframe on, so the ring starts with one. */
static void ring_add(vid_ingest *in, const vid__au *au)
{
    if (in->ring_us <= 0)
        return;
    vid__au *a = g_memdup2(au, sizeof *au);
    a->data = g_bytes_ref(au->data);
    g_queue_push_tail(&in->ring, a);
    in->ring_size += g_bytes_get_size(a->data);
    for (;;) {
        vid__au *head = g_queue_peek_head(&in->ring);
        int over = in->ring_size > in->ring_bytes || au->recv_us - head->recv_us > in->ring_us;
        if (!over || g_queue_get_length(&in->ring) < 2)
            break;
        /* Drop the whole group up to the next keyframe. */
        do {
            vid__au *x = g_queue_pop_head(&in->ring);
            in->ring_size -= g_bytes_get_size(x->data);
            au_free(x);
            head = g_queue_peek_head(&in->ring);
        } while (head && !head->key);
        if (!head)
            break;
    }
}

static void keep_keyframe(vid_ingest *in, const vid__au *au)
{
    if (in->last_key)
        g_bytes_unref(in->last_key);
    in->last_key = g_bytes_ref(au->data);
}

void vid__take_au(vid_ingest *in, const vid__au *au)
{
    if (!in->writer) {
        if (!au->key)
            return; /* a stream starts at a keyframe */
        in->writer = vid_fmp4_new(in->codec ? in->codec : VID_CODEC_H264, 90000, VID_FMP4_LIVE);
        in->dts0 = au->dts;
        in->last_dts = -1;
        in->frame_dur = 90000 / 25;
    }
    /* A unit without a time (the depayloader had none for it) is taken to
     * follow the one before by the usual frame interval. */
    int64_t dts = au->dts >= 0 ? au->dts - in->dts0 : in->last_dts + in->frame_dur;
    if (dts <= in->last_dts)
        dts = in->last_dts + 1; /* a camera that repeats a time */
    else if (in->last_dts >= 0 && au->dts >= 0 && dts - in->last_dts < 90000)
        in->frame_dur = dts - in->last_dts;
    int64_t pts = au->pts >= 0 ? au->pts - in->dts0 : dts;
    in->last_dts = dts;
    g_byte_array_set_size(in->frag, 0);
    vid_fmp4_frag info;
    int rc = vid_fmp4_push(in->writer, g_bytes_get_data(au->data, NULL), g_bytes_get_size(au->data),
                           dts, pts, au->key, in->frag, &info);
    if (rc) {
        log_warn("video.frame", "url=\"%s\" error=\"%s\"", in->safe_url, core_strerror(rc));
        return;
    }
    if (au->key)
        keep_keyframe(in, au);
    ring_add(in, au);
    if (!info.samples)
        return;
    GBytes *frag = vid_bytes_take(in->frag, in->frag->len + 1024);
    vid__gop_add(in->gop, &in->gop_bytes, frag, info.keyframe);
    vid_fragment f = {frag, info.keyframe, info.init_id, au->recv_us};
    if (in->on_fragment)
        in->on_fragment(in, &f, in->user_data);
    g_bytes_unref(frag);
}

const char *vid_ingest_codec_string(const vid_ingest *in)
{
    return in->writer ? vid_fmp4_codec_string(in->writer) : NULL;
}

GBytes *vid_ingest_init_segment(vid_ingest *in, uint32_t *init_id)
{
    if (!in->writer)
        return NULL;
    if (init_id)
        *init_id = vid_fmp4_init_id(in->writer);
    return vid_fmp4_init_segment(in->writer);
}

GPtrArray *vid_ingest_gop(const vid_ingest *in)
{
    GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint i = 0; i < in->gop->len; i++)
        g_ptr_array_add(a, g_bytes_ref(in->gop->pdata[i]));
    return a;
}

GBytes *vid_ingest_last_keyframe(const vid_ingest *in, uint32_t *width, uint32_t *height)
{
    if (!in->last_key)
        return NULL;
    uint32_t w = 0, h = 0;
    if (in->writer)
        vid_fmp4_size(in->writer, &w, &h);
    if (width)
        *width = w;
    if (height)
        *height = h;
    return g_bytes_ref(in->last_key);
}

/* ---- clips ---- */

/* Where an access unit lies on the monotonic clock, by the stream's own
 * times counted back from the anchor (the newest unit taken): arrival times
 * bunch up (a camera's first frames come in a burst), the stream's times
 * are what the clip will play. */
static int64_t media_us(const vid__au *a, const vid__au *anchor)
{
    if (a->dts < 0 || anchor->dts < 0)
        return a->recv_us;
    return anchor->recv_us - (anchor->dts - a->dts) * G_USEC_PER_SEC / 90000;
}

struct vid_clip {
    vid_codec codec;
    GPtrArray *units; /* vid__au*, each holding a reference on its bytes */
    double start_s;
};

static void au_copy_free(gpointer p)
{
    vid__au *a = p;
    g_bytes_unref(a->data);
    g_free(a);
}

vid_clip *vid_ingest_clip_cut(vid_ingest *in, int64_t from_us, int64_t to_us, char **err)
{
    /* The newest unit up to to_us anchors the times. */
    GList *end = in->ring.tail;
    while (end && ((vid__au *)end->data)->recv_us > to_us)
        end = end->prev;
    /* The last keyframe at or before from_us (or the first one after it). */
    GList *first = NULL;
    const vid__au *anchor = end ? end->data : NULL;
    for (GList *l = end ? in->ring.head : NULL; l; l = l->next) {
        vid__au *a = l->data;
        if (a->key && (media_us(a, anchor) <= from_us || !first))
            first = l;
        if (l == end)
            break;
    }
    if (!first) {
        if (err)
            *err = g_strdup("no video of that time is kept");
        return NULL;
    }
    vid_clip *c = g_new0(vid_clip, 1);
    c->codec = in->codec ? in->codec : VID_CODEC_H264;
    c->units = g_ptr_array_new_with_free_func(au_copy_free);
    c->start_s = (double)(media_us(first->data, anchor) - from_us) / G_USEC_PER_SEC;
    for (GList *l = first; l; l = l->next) {
        vid__au *a = g_memdup2(l->data, sizeof *a);
        g_bytes_ref(a->data);
        g_ptr_array_add(c->units, a);
        if (l == end)
            break;
    }
    return c;
}

void vid_clip_free(vid_clip *c)
{
    if (!c)
        return;
    g_ptr_array_unref(c->units);
    g_free(c);
}

GBytes *vid_clip_file(const vid_clip *c, double *start_s, double *duration_s, char **err)
{
    vid_fmp4 *w = vid_fmp4_new(c->codec, 90000, VID_FMP4_PER_GOP);
    GByteArray *body = g_byte_array_new();
    const vid__au *a0 = c->units->pdata[0];
    int64_t last = -1;
    for (guint i = 0; i < c->units->len; i++) {
        const vid__au *a = c->units->pdata[i];
        int64_t dts = a->dts >= 0 ? a->dts - a0->dts : last + 3000;
        if (dts <= last)
            dts = last + 1;
        int64_t pts = a->pts >= 0 ? a->pts - a0->dts : dts;
        last = dts;
        vid_fmp4_push(w, g_bytes_get_data(a->data, NULL), g_bytes_get_size(a->data), dts, pts,
                      a->key, body, NULL);
    }
    vid_fmp4_flush(w, body, NULL);
    GBytes *init = vid_fmp4_file_init_segment(w);
    GBytes *out = NULL;
    if (init && body->len) {
        GByteArray *file = g_byte_array_sized_new((guint)(g_bytes_get_size(init) + body->len));
        g_byte_array_append(file, g_bytes_get_data(init, NULL), (guint)g_bytes_get_size(init));
        g_byte_array_append(file, body->data, body->len);
        out = g_byte_array_free_to_bytes(file);
        if (start_s)
            *start_s = c->start_s;
        if (duration_s)
            *duration_s = (double)last / 90000.0;
    } else if (err) {
        *err = g_strdup("the kept video does not make a file");
    }
    if (init)
        g_bytes_unref(init);
    g_byte_array_unref(body);
    vid_fmp4_free(w);
    return out;
}

GBytes *vid_ingest_clip(vid_ingest *in, int64_t from_us, int64_t to_us, double *start_s,
                        double *duration_s, char **err)
{
    vid_clip *c = vid_ingest_clip_cut(in, from_us, to_us, err);
    GBytes *out = c ? vid_clip_file(c, start_s, duration_s, err) : NULL;
    vid_clip_free(c);
    return out;
}

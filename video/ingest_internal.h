/*
 * ingest_internal.h — the ingest's layout, shared by video/ingest.c (the
 * reader thread), video/stream.c (fragments, the keyframe group, the ring) and
 * video/clip.c.
 */
#ifndef CITYCMD_VIDEO_INGEST_INTERNAL_H
#define CITYCMD_VIDEO_INGEST_INTERNAL_H

#include "ingest.h"
#include "video.h"

#include <gio/gio.h>
#include <gst/gst.h>

/* One access unit: Annex B bytes, 90 kHz times, keyframe, arrival. */
typedef struct {
    GBytes *data;
    int64_t dts, pts;
    int key;
    int64_t recv_us;
} vid__au;

struct vid_ingest {
    core_loop *loop;
    char *url, *safe_url, *user, *password;
    vid_fragment_fn on_fragment;
    vid_state_fn on_state;
    void *user_data;
    int refs, freed; /* refs: atomic */

    /* the reader thread (started and joined on the loop thread) */
    GThread *thread;
    GCancellable *cancel;
    guint retry_timer, watchdog;
    int wanted, retry_ms;
    int64_t connect_us, last_au_us;
    vid_state state;
    char reason[200];
    uint64_t frames, restarts;
    vid_codec codec;

    /* shared with the reader thread (atomic) */
    int gen, pending, pending_bytes, dropping, dropped, linked, codec_seen;
    int alive_ms; /* the last packet, in ms after connect_us */

    /* the stream (loop thread; stream.c) */
    vid_fmp4 *writer;
    int64_t dts0; /* first dts of the writer's stream, so times start near 0 */
    int64_t last_dts;
    int64_t frame_dur; /* the last interval between two timed units (90 kHz) */
    GByteArray *frag;
    GPtrArray *gop; /* GBytes fragments since the last keyframe */
    size_t gop_bytes;
    GBytes *last_key;
    GQueue ring; /* vid__au*, oldest first */
    size_t ring_size;
    int64_t ring_us;
    size_t ring_bytes;
};

/* stream.c */
void vid__take_au(vid_ingest *in, const vid__au *au);
void vid__writer_reset(vid_ingest *in);
void vid__ring_clear(vid_ingest *in);

#endif

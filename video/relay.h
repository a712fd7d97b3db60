/*
 * relay.h — the live streams of the cameras being watched (video/relay.c):
 * one ingest per camera, shared by everyone who watches it, started for the
 * first watcher and stopped a while (--video-idle) after the last.
 *
 * A watch is a viewer's tile, a snapshot waiting for its keyframe, or a clip
 * waiting for its end: each keeps the camera's stream running. Fragments go
 * to every watch with ops, framed once for all of them: each buffer the
 * relay hands out has `headroom` bytes before the fragment (for the
 * transport's own header, written by the receiver just before it sends),
 * then the moof+mdat. A new watch gets the current keyframe group at once
 * (vid_watch_gop), so its first frame shows without waiting for the next
 * keyframe.
 *
 * A camera whose URL or credentials changed is restarted at its next watch;
 * a camera removed from the registry keeps streaming to the watches it has
 * until they end. Loop thread only.
 */
#ifndef CITYCMD_VIDEO_RELAY_H
#define CITYCMD_VIDEO_RELAY_H

#include "cameras.h"
#include "ingest.h"

typedef struct vid_relay vid_relay;
typedef struct vid_watch vid_watch;

/* A fragment for watchers: framed has headroom bytes, then the fragment
 * (size: g_bytes_get_size(framed) - headroom); a reference the receiver may
 * keep. */
typedef struct {
    GBytes *framed;
    int keyframe;
    uint32_t init_id;
    int64_t recv_us; /* when its access unit left the depayloader (monotonic) */
} vid_relay_frag;

typedef struct {
    void (*fragment)(vid_watch *w, const vid_relay_frag *f, void *user);
    /* The stream's state changed (why: vid_ingest_reason's words, or ""). */
    void (*state)(vid_watch *w, vid_state state, const char *why, void *user);
} vid_watch_ops;

/* idle_s: how long a stream without watches keeps running; ring_s: seconds
 * of recent video kept per stream for clips. */
vid_relay *vid_relay_new(core_loop *loop, vid_cameras *cams, size_t headroom, int idle_s,
                         int ring_s);
/* Stops every stream. Watches must have ended. NULL is fine. */
void vid_relay_free(vid_relay *r);

/* Watches a camera (ops may be NULL: only keeps it running). NULL with *err
 * (g_free) when the camera does not exist or the ingest cannot start. */
vid_watch *vid_relay_watch(vid_relay *r, int64_t camera, const vid_watch_ops *ops, void *user,
                           char **err);
/* Ends a watch; NULL is fine. Its callbacks are not called again. */
void vid_watch_end(vid_watch *w);

vid_ingest *vid_watch_ingest(const vid_watch *w);
int64_t vid_watch_camera(const vid_watch *w);
/* The current keyframe group, framed, oldest first (new array; unref it). */
GPtrArray *vid_watch_gop(const vid_watch *w);

/* Streams running, and watches on them (for /metrics and tests). */
void vid_relay_counts(const vid_relay *r, unsigned *streams, unsigned *watches);

#endif

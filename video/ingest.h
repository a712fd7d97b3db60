/*
 * ingest.h — one camera's live stream, shared by everyone who watches it
 * (video/ingest.c), and what is kept of it: the last keyframe group for a
 * fast start, the last keyframe for snapshots (snapshot.c), and a ring of
 * recent access units for clips (clip.c).
 *
 * A reader thread per camera: an RTSP session with the video interleaved
 * over its TCP (or TLS) connection (rtsp.h), the RTP packets put together
 * into whole access units in Annex B form, parameter sets before every
 * keyframe (rtp_depay.h). Nothing is decoded. Each access unit is posted to
 * the loop thread; at most VID_INGEST_MAX_PENDING (and
 * VID_INGEST_MAX_PENDING_BYTES) wait, beyond that frames are dropped until
 * the next keyframe (a stalled loop never grows memory).
 * On the loop thread each access unit goes through a fragmented-MP4 writer
 * (fmp4.h, one fragment per frame) and the fragments go to the listener.
 *
 * Failures (unreachable, wrong credentials, the stream ended, nothing for
 * VID_INGEST_STALL_MS, no picture in VID_INGEST_FIRST_MS) end the session and try again after 1, 2,
 * 4 … up to 30 seconds; the state and the reason are always readable.
 *
 * Loop thread only, except where a function says otherwise.
 */
#ifndef CITYCMD_VIDEO_INGEST_H
#define CITYCMD_VIDEO_INGEST_H

#include "../core/loop.h"
#include "fmp4.h"

#include <glib.h>
#include <stdint.h>

#define VID_INGEST_MAX_PENDING 120              /* access units posted to the loop, not yet taken */
#define VID_INGEST_MAX_PENDING_BYTES (32 << 20) /* and their bytes */
#define VID_INGEST_STALL_MS 6000  /* set up, but no packet and no frame for this long: reconnect */
#define VID_INGEST_FIRST_MS 20000 /* set up, but no whole picture yet after this long */
/* The keyframe group kept for new viewers: a camera that sends keyframes
 * too seldom (or only once) has none kept once its group passes this. */
#define VID_INGEST_GOP_MAX_BYTES ((size_t)16 << 20)
#define VID_INGEST_RETRY_MAX_MS 30000

typedef enum {
    VID_STATE_IDLE = 0, /* not started */
    VID_STATE_CONNECTING,
    VID_STATE_PLAYING,  /* frames are arriving */
    VID_STATE_RETRYING, /* failed; trying again after a pause */
} vid_state;

const char *vid_state_name(vid_state s);

typedef struct {
    const char *url;             /* rtsp://… */
    const char *user, *password; /* NULL: none */
    int ring_seconds;            /* access units kept for clips (0: none) */
    size_t ring_bytes;           /* and at most this many bytes */
} vid_source;

typedef struct vid_ingest vid_ingest;

/* One fragment for the viewers: init_id says which init segment it needs;
 * keyframe: a viewer may start here. fragment: a reference the listener may
 * keep (g_bytes_ref). */
typedef struct {
    GBytes *fragment;
    int keyframe;
    uint32_t init_id;
    int64_t recv_us; /* when its access unit was whole (monotonic) */
} vid_fragment;

typedef void (*vid_fragment_fn)(vid_ingest *in, const vid_fragment *f, void *user);
/* The state changed (and why, for failures: "unreachable", "unauthorized",
 * "ended", "stalled", "no_video", "error: …"). */
typedef void (*vid_state_fn)(vid_ingest *in, vid_state state, const char *why, void *user);

/* The source is copied. NULL with *err when the URL is not rtsp:// or
 * rtsps://, or GStreamer does not start. Does not connect until
 * vid_ingest_start. */
vid_ingest *vid_ingest_new(core_loop *loop, const vid_source *src, vid_fragment_fn on_fragment,
                           vid_state_fn on_state, void *user, char **err);
/* Stops (the reader thread ends) and frees. NULL is fine. */
void vid_ingest_free(vid_ingest *in);

void vid_ingest_start(vid_ingest *in);
/* Stops and stays stopped (no retry) until started again. */
void vid_ingest_stop(vid_ingest *in);

vid_state vid_ingest_state(const vid_ingest *in);
/* Why the last failure happened, or "" (owned by the ingest). */
const char *vid_ingest_reason(const vid_ingest *in);
/* The codec string for MSE, or NULL before the first keyframe. */
const char *vid_ingest_codec_string(const vid_ingest *in);
vid_codec vid_ingest_codec(const vid_ingest *in);
/* The current init segment (new ref) or NULL; *init_id when not NULL. */
GBytes *vid_ingest_init_segment(vid_ingest *in, uint32_t *init_id);
/* The fragments since the last keyframe, oldest first (each a new ref; free
 * the array with g_ptr_array_unref): what a new viewer gets after the init
 * segment so its first frame shows at once. */
GPtrArray *vid_ingest_gop(const vid_ingest *in);
/* Keeps frag in a keyframe group (gop, its size in *bytes): a keyframe
 * starts it afresh; past VID_INGEST_GOP_MAX_BYTES it is emptied and waits
 * for the next keyframe. Used for the ingest's group and the relay's. */
void vid__gop_add(GPtrArray *gop, size_t *bytes, GBytes *frag, int keyframe);
/* The last keyframe access unit (Annex B, with its parameter sets) and its
 * size in pixels, or NULL before one. New ref. */
GBytes *vid_ingest_last_keyframe(const vid_ingest *in, uint32_t *width, uint32_t *height);
/* Frames received, dropped (loop behind), reconnections. */
void vid_ingest_counts(const vid_ingest *in, uint64_t *frames, uint64_t *dropped,
                       uint64_t *restarts);

/* ---- snapshots (snapshot.c; any thread, blocks: run it on a worker) ---- */

/* Decodes one keyframe access unit and encodes it as JPEG. 0, or a CORE_E*
 * with *err (no decoder for the codec, the frame does not decode). */
int vid_snapshot_jpeg(vid_codec codec, GBytes *keyframe, int quality, GBytes **jpeg, char **err);

/* ---- clips (clip.c) ---- */

/* The access units of the ring from the last keyframe at or before from_us
 * (monotonic) to to_us, as a playable MP4 file. Times are the stream's own,
 * counted back from its newest unit up to to_us (arrivals bunch up). The
 * ring holds the current connection only: a reconnection empties it. The
 * file is a file init segment with the duration, then the fragments, times
 * from 0. NULL with *err when the ring holds nothing in that span. New ref. */
GBytes *vid_ingest_clip(vid_ingest *in, int64_t from_us, int64_t to_us, double *start_s,
                        double *duration_s, char **err);
/* The same in two steps, so the file is made off the loop: the cut (loop
 * thread) references the ring's units, nothing is copied; the file (any
 * thread) muxes them. start_s and duration_s as above. */
typedef struct vid_clip vid_clip;
vid_clip *vid_ingest_clip_cut(vid_ingest *in, int64_t from_us, int64_t to_us, char **err);
GBytes *vid_clip_file(const vid_clip *c, double *start_s, double *duration_s, char **err);
void vid_clip_free(vid_clip *c);

#endif

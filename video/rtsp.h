/*
 * rtsp.h — an RTSP client session for one camera's video, RTP interleaved
 * over the RTSP connection (RFC 2326 §10.12) (video/rtsp.c).
 *
 * vid_rtsp_open connects (TCP, or TLS for rtsps://), asks for the stream's
 * description, picks its first H.264 or H.265 video and sets it up to come
 * over the same connection, answering Basic or Digest authentication, and
 * starts it. vid_rtsp_read then reads the connection and hands each RTP
 * packet of the video to a callback, keeping the session alive with an
 * OPTIONS request within the session's timeout.
 *
 * Blocking: both run on the thread that owns the session (ingest.c gives
 * each camera one). Every wait is bounded by VID_RTSP_TIMEOUT_S and ends at
 * once when the cancellable is cancelled. What a camera sends is bounded:
 * a reply or request header over VID_RTSP_MAX_MESSAGE bytes ends the
 * session.
 *
 * Why a failure happened, as ingest.h names it: "unreachable" (no
 * connection), "unauthorized" (refused credentials, or none given),
 * "no_video" (no H.264/H.265 video in the description), "ended" (the camera
 * closed the connection), "stalled" (nothing for VID_RTSP_TIMEOUT_S), or
 * "error: …" (the camera's status line, a malformed reply).
 */
#ifndef CITYCMD_VIDEO_RTSP_H
#define CITYCMD_VIDEO_RTSP_H

#include "fmp4.h"

#include <gio/gio.h>
#include <stdint.h>

#define VID_RTSP_TIMEOUT_S 5
#define VID_RTSP_MAX_MESSAGE (64 * 1024)

typedef struct vid_rtsp vid_rtsp;

/* The video stream as described: codec, RTP payload type, clock rate and
 * the a=fmtp parameters (owned by the session). */
typedef struct {
    vid_codec codec;
    int payload_type;
    int clock_rate;
    const char *fmtp;
} vid_rtsp_media;

/* url: rtsp:// or rtsps://, credentials in it are used when user is NULL.
 * NULL with *why (g_free) when the session could not start; *why is NULL
 * when it was cancelled. */
vid_rtsp *vid_rtsp_open(const char *url, const char *user, const char *password,
                        GCancellable *cancel, char **why);
const vid_rtsp_media *vid_rtsp_media_get(const vid_rtsp *r);

/* pkt: one RTP packet, valid during the call. */
typedef void (*vid_rtsp_packet_fn)(const uint8_t *pkt, size_t len, void *user);

/* Reads until the session ends: returns why (g_free), or NULL when it was
 * cancelled. */
char *vid_rtsp_read(vid_rtsp *r, vid_rtsp_packet_fn fn, void *user, GCancellable *cancel);
/* Asks the camera to end the session (without waiting) and closes. NULL is
 * fine. */
void vid_rtsp_close(vid_rtsp *r);

#endif

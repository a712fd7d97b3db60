/*
 * video.h — CCTV cameras and live video (the files of video/).
 *
 * The module (docs/ARCHITECTURE.md, "Video"):
 * - cameras.h: the camera registry with view cones, nearest-camera
 *   selection by what a camera can see;
 * - fmp4.h: a fragmented MP4 (ISO BMFF) writer for H.264/H.265 access
 *   units, with the RFC 6381 codec string, for Media Source Extensions;
 * - ingest.h: one ingest per camera (an RTSP session, rtsp.h; RTP to access
 *   units, rtp_depay.h; nothing decoded): fragments, the last keyframe
 *   group, snapshots, a ring of recent video for clips;
 * - relay.h: the watched cameras' streams, shared by every viewer, started
 *   by the first watch and stopped a while after the last.
 * - onvif.h: ONVIF discovery, stream URIs and PTZ (blocking: workers only).
 * The WebSocket delivery and the routes are in web/ (ws_video.c, api_video.c,
 * api_onvif.c).
 * tools/camera-sim serves simulated RTSP cameras for the demo and tests.
 *
 * vid_init starts GStreamer once for the process (any thread; later calls
 * return the first result).
 */
#ifndef CITYCMD_VIDEO_H
#define CITYCMD_VIDEO_H

#include "../core/core.h"

#include <glib.h>

/* 0, or CORE_ECONFIG with *err (g_free) when GStreamer cannot start. */
int vid_init(char **err);

/* The bytes of a as a GBytes of exactly their size (a is emptied and keeps
 * room bytes of capacity for the next). A frame built in a growing buffer
 * would otherwise hold the buffer's spare room for as long as it is kept:
 * in the clip ring, for --video-ring seconds. */
GBytes *vid_bytes_take(GByteArray *a, size_t room);

#endif

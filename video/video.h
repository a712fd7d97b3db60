/*
 * video.h — CCTV cameras and live video (the files of video/).
 *
 * The module (docs/ARCHITECTURE.md, "Video"):
 * - cameras.h: the camera registry with view cones, nearest-camera
 *   selection by what a camera can see;
 * - fmp4.h: a fragmented MP4 (ISO BMFF) writer for H.264/H.265 access
 *   units, with the RFC 6381 codec string, for Media Source Extensions;
 * - later: one GStreamer ingest per watched camera shared by every viewer,
 *   live video over the WebSocket, snapshots, clips.
 * tools/camera-sim serves simulated RTSP cameras for the demo and tests.
 *
 * vid_init starts GStreamer once for the process (any thread; later calls
 * return the first result).
 */
#ifndef CITYCMD_VIDEO_H
#define CITYCMD_VIDEO_H

#include "../core/core.h"

/* 0, or CORE_ECONFIG with *err (g_free) when GStreamer cannot start. */
int vid_init(char **err);

#endif

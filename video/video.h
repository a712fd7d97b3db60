/*
 * video.h — CCTV cameras and live video (not yet built).
 *
 * Will hold: the camera registry with view cones, GStreamer ingest shared by
 * all viewers of a camera, fragmented MP4 to browsers over the WebSocket,
 * snapshots from the latest keyframe, incident clips from a ring buffer, and
 * the RTSP camera simulator.
 */
#ifndef CITYCMD_VIDEO_H
#define CITYCMD_VIDEO_H

#include "../core/core.h"

#endif

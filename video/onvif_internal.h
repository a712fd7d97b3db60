/*
 * onvif_internal.h — shared by the files of the ONVIF client only
 * (onvif.c, onvif_soap.c, onvif_discover.c).
 */
#ifndef CITYCMD_VIDEO_ONVIF_INTERNAL_H
#define CITYCMD_VIDEO_ONVIF_INTERNAL_H

#include "onvif.h"

/* vid_onvif_envelope with a UsernameToken Created on the camera's clock:
 * ours plus clock_offset_s (the camera's GetSystemDateAndTime minus ours). */
char *vid__onvif_envelope_at(const char *body, const vid_onvif_auth *auth, gint64 clock_offset_s);
/* Adds the addresses of d not yet in into (a device found again). */
void vid__onvif_merge(vid_onvif_device *into, const vid_onvif_device *d);
void vid__onvif_profile_free(gpointer p);
/* GetSystemDateAndTime: the camera's UTC clock as Unix seconds. */
int vid__onvif_parse_time(const char *xml, size_t len, gint64 *unix_s, char **why);

#endif

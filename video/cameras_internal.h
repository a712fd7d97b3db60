/*
 * cameras_internal.h — shared by cameras.c (fields, writes, the mirror)
 * and cameras_import.c (files) only.
 */
#ifndef CITYCMD_VIDEO_CAMERAS_INTERNAL_H
#define CITYCMD_VIDEO_CAMERAS_INTERNAL_H

#include "cameras.h"

#include <glib.h>

/* The fields a client may set, NULL-terminated (cameras_check.c). */
extern const char *const vid__camera_fields[];

/* The registry (cameras.c). */
struct vid_cameras {
    core_store *store;
    char *agencies;    /* the known agencies, comma-separated */
    GHashTable *by_id; /* int64 id -> vid_camera* (owned): the mirror */
};

/* Checks a camera's fields. create: every required field there and the
 * defaults filled in; otherwise only the fields given. *out gets them in
 * stored form (heading in [0, 360), "codec" and the credentials "" when
 * none). 0, or CORE_EINVAL with *field and *message (g_free). */
int vid__camera_check(const vid_cameras *c, const json_t *body, int create, json_t **out,
                      char **field, char **message);

/* *field = f, *message = msg (taken); returns CORE_EINVAL. */
int vid__refuse(char **field, char **message, const char *f, char *msg);

#endif

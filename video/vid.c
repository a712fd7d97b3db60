/*
 * vid.c — starting GStreamer once for the process (video.h).
 */
#include "video.h"

#include <glib.h>
#include <gst/gst.h>

static GOnce once = G_ONCE_INIT;
static char *init_error;

static gpointer start(gpointer unused)
{
    (void)unused;
    GError *e = NULL;
    if (!gst_init_check(NULL, NULL, &e)) {
        init_error = g_strdup(e ? e->message : "GStreamer could not start");
        g_clear_error(&e);
    }
    return NULL;
}

int vid_init(char **err)
{
    g_once(&once, start, NULL);
    if (init_error) {
        if (err)
            *err = g_strdup(init_error);
        return CORE_ECONFIG;
    }
    return 0;
}

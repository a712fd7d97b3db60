/*
 * vid.c — starting GStreamer once for the process, and handing a buffer's
 * bytes on at their exact size (video.h).
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

GBytes *vid_bytes_take(GByteArray *a, size_t room)
{
    gsize n;
    guint8 *data = g_byte_array_steal(a, &n);
    data = g_realloc(data, MAX(n, 1)); /* shrinking: in place, the rest freed */
    g_byte_array_set_size(a, (guint)room);
    g_byte_array_set_size(a, 0);
    return g_bytes_new_take(data, n);
}

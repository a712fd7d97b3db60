/*
 * demo.c — the demo's simulated duty officer: writes a realistic journal
 * entry at a fixed interval through the same path as the API (validation,
 * store, bus), so the demo exercises the real system rather than a side door.
 */
#include "demo.h"

#include "../core/log.h"
#include "../dispatch/dispatch.h"

#include <glib.h>

struct web_demo {
    core_store *store;
    guint timer;
    unsigned next;
};

static const char *const script[][2] = {
    {"note",
     "Shift check: all consoles staffed, radio trunk test passed. 值班检查：席位到岗，通信正常。"},
    {"instruction",
     "Heavy rain expected after 18:00: pre-position pumps at the harbour underpass."},
    {"note", "12345 hotline: noise complaints rising near the stadium after the match."},
    {"handover",
     "Handover to night shift: two open water-main repairs, traffic diversion on the coast road."},
    {"note", "Hospital A reports emergency department at 85% capacity. 医院急诊接近满负荷。"},
};

static void written(int rc, json_t *entry, void *arg)
{
    if (rc)
        log_warn("demo.journal", "error=\"%d\"", rc);
    json_decref(entry);
}

static gboolean tick(gpointer p)
{
    web_demo *d = p;
    const char *const *line = script[d->next++ % G_N_ELEMENTS(script)];
    json_t *body = json_pack("{ssss}", "kind", line[0], "text", line[1]);
    char *field = NULL, *msg = NULL;
    disp_journal_add(d->store, body, "demo.duty-officer", "command", "local", written, NULL, &field,
                     &msg);
    g_free(field);
    g_free(msg);
    json_decref(body);
    return G_SOURCE_CONTINUE;
}

web_demo *web_demo_start(core_store *store, int interval_ms)
{
    web_demo *d = g_new0(web_demo, 1);
    d->store = store;
    d->timer = g_timeout_add(interval_ms, tick, d);
    log_info("demo.start", "journal_interval_ms=%d note=\"simulated duty officer\"", interval_ms);
    tick(d);
    return d;
}

void web_demo_stop(web_demo *demo)
{
    if (!demo)
        return;
    g_source_remove(demo->timer);
    g_free(demo);
}

/*
 * bus.c — events and their synchronous in-process delivery (loop thread).
 *
 * Subscriptions live in an array; unsubscribing during delivery only marks the
 * entry dead, and dead entries are swept when no delivery is running, so the
 * array never changes under an iteration.
 */
#include "bus.h"
#include "core.h"
#include "metrics.h"

#include <glib.h>
#include <string.h>

core_event *core_event_new(const char *type, const char *actor, const char *subject, json_t *data)
{
    core_event *ev = g_new0(core_event, 1);
    ev->at_ms = core_now_ms();
    ev->type = g_strdup(type);
    ev->actor = g_strdup(actor ? actor : "system");
    ev->subject = g_strdup(subject ? subject : "");
    ev->source = g_strdup("");
    ev->data = data ? data : json_object();
    ev->refs = 1;
    return ev;
}

void core_event_set_source(core_event *ev, const char *source)
{
    g_free(ev->source);
    ev->source = g_strdup(source ? source : "");
}

void core_event_set_state(core_event *ev, json_t *state)
{
    json_decref(ev->state);
    ev->state = state;
}

core_event *core_event_ref(core_event *ev)
{
    g_atomic_int_inc(&ev->refs);
    return ev;
}

void core_event_unref(core_event *ev)
{
    if (!ev || !g_atomic_int_dec_and_test(&ev->refs))
        return;
    g_free(ev->type);
    g_free(ev->actor);
    g_free(ev->subject);
    g_free(ev->source);
    json_decref(ev->data);
    json_decref(ev->state);
    free(ev->json);
    g_free(ev);
}

const char *core_event_json(core_event *ev)
{
    if (!ev->json) {
        char at[32];
        core_iso8601(ev->at_ms, at, sizeof at);
        json_t *o =
            json_pack("{sIsssssssssO}", "seq", (json_int_t)ev->seq, "at", at, "type", ev->type,
                      "actor", ev->actor, "subject", ev->subject, "data", ev->data);
        ev->json = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
        json_decref(o);
    }
    return ev->json;
}

core_event *core_event_from_row(int64_t seq, int64_t at_ms, const char *type, const char *actor,
                                const char *subject, const char *data_json)
{
    json_t *data = json_loads(data_json ? data_json : "{}", 0, NULL);
    if (!json_is_object(data)) {
        json_decref(data);
        return NULL;
    }
    core_event *ev = core_event_new(type, actor, subject, data);
    ev->seq = seq;
    ev->at_ms = at_ms;
    return ev;
}

typedef struct {
    unsigned id;
    char *prefix;
    size_t prefix_len;
    core_bus_fn fn;
    void *user;
    gboolean dead;
} sub;

struct core_bus {
    GArray *subs; /* of sub */
    unsigned next_id;
    int delivering;
    int64_t last_seq;
    core_metric *published;
};

core_bus *core_bus_new(void)
{
    core_bus *bus = g_new0(core_bus, 1);
    bus->subs = g_array_new(FALSE, TRUE, sizeof(sub));
    bus->next_id = 1;
    bus->published =
        core_counter("citycmd_events_total", "Events committed and published on the bus.", "");
    return bus;
}

void core_bus_free(core_bus *bus)
{
    if (!bus)
        return;
    for (guint i = 0; i < bus->subs->len; i++)
        g_free(g_array_index(bus->subs, sub, i).prefix);
    g_array_free(bus->subs, TRUE);
    g_free(bus);
}

unsigned core_bus_subscribe(core_bus *bus, const char *prefix, core_bus_fn fn, void *user)
{
    sub s = {bus->next_id++, g_strdup(prefix ? prefix : ""), 0, fn, user, FALSE};
    s.prefix_len = strlen(s.prefix);
    g_array_append_val(bus->subs, s);
    return s.id;
}

static void sweep(core_bus *bus)
{
    for (guint i = bus->subs->len; i-- > 0;) {
        sub *s = &g_array_index(bus->subs, sub, i);
        if (s->dead) {
            g_free(s->prefix);
            g_array_remove_index(bus->subs, i);
        }
    }
}

void core_bus_unsubscribe(core_bus *bus, unsigned id)
{
    for (guint i = 0; i < bus->subs->len; i++) {
        sub *s = &g_array_index(bus->subs, sub, i);
        if (s->id == id)
            s->dead = TRUE;
    }
    if (!bus->delivering)
        sweep(bus);
}

void core_bus_publish(core_bus *bus, core_event *ev)
{
    if (ev->seq > bus->last_seq)
        bus->last_seq = ev->seq;
    core_metric_add(bus->published, 1);
    bus->delivering++;
    /* Subscriptions added during delivery are not called for this event. */
    guint n = bus->subs->len;
    for (guint i = 0; i < n; i++) {
        sub *s = &g_array_index(bus->subs, sub, i);
        if (!s->dead && strncmp(ev->type, s->prefix, s->prefix_len) == 0)
            s->fn(ev, s->user);
    }
    if (--bus->delivering == 0)
        sweep(bus);
}

int64_t core_bus_last_seq(const core_bus *bus)
{
    return bus->last_seq;
}

void core_bus_set_last_seq(core_bus *bus, int64_t seq)
{
    bus->last_seq = seq;
}

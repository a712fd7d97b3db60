/*
 * bus.h — events and the in-process event bus.
 *
 * Every state change in citycmd is an event: a sequence number assigned by the
 * store at commit, a time, a dotted type ("journal.created"), the actor who
 * caused it, the subject it concerns and a JSON payload. The store publishes
 * each committed event on the bus, in sequence order, on the loop thread; the
 * WebSocket feed, the Redis publisher and domain modules subscribe.
 *
 * Events are immutable and reference-counted; a subscriber that keeps one
 * takes a reference. The bus itself is loop-thread only.
 */
#ifndef CITYCMD_CORE_BUS_H
#define CITYCMD_CORE_BUS_H

#include <jansson.h>
#include <stdint.h>

typedef struct core_event {
    int64_t seq;   /* assigned at commit; 0 before */
    int64_t at_ms; /* wall-clock time of the change */
    char *type;
    char *actor;   /* who did it: a user name, or "system" */
    char *subject; /* what it concerns, e.g. "journal/42"; may be "" */
    char *source;  /* where the request came from (peer address, "local"); "" if none */
    json_t *data;  /* JSON object */
    json_t *state; /* the subject's state after this change, for live views, or NULL;
                    * set by the writer before commit; neither stored nor serialised */
    int refs;      /* private */
    char *json;    /* private: cached serialization */
} core_event;

/* Takes ownership of data (an object; NULL means {}). source starts as "". */
core_event *core_event_new(const char *type, const char *actor, const char *subject, json_t *data);
void core_event_set_source(core_event *ev, const char *source);
/* Attaches the subject's state after the change (stolen; replaces any). */
void core_event_set_state(core_event *ev, json_t *state);
core_event *core_event_ref(core_event *ev);
void core_event_unref(core_event *ev);
/* {"seq":…,"at":"ISO 8601","type":…,"actor":…,"subject":…,"data":{…}};
 * cached; owned by the event. */
const char *core_event_json(core_event *ev);
/* Parses the form above back into an event (for replay from the store). NULL on error. */
core_event *core_event_from_row(int64_t seq, int64_t at_ms, const char *type, const char *actor,
                                const char *subject, const char *data_json);

typedef struct core_bus core_bus;
typedef void (*core_bus_fn)(core_event *ev, void *user);

core_bus *core_bus_new(void);
void core_bus_free(core_bus *bus);
/* Calls fn for every event whose type starts with prefix ("" for all). Returns an id > 0. */
unsigned core_bus_subscribe(core_bus *bus, const char *prefix, core_bus_fn fn, void *user);
void core_bus_unsubscribe(core_bus *bus, unsigned id);
/* Delivers ev to the matching subscribers in subscription order. A subscriber
 * may unsubscribe itself or others during delivery. */
void core_bus_publish(core_bus *bus, core_event *ev);
/* Highest sequence number published so far. */
int64_t core_bus_last_seq(const core_bus *bus);
void core_bus_set_last_seq(core_bus *bus, int64_t seq);

#endif

/*
 * redis.h — publishes every committed event to a Redis stream.
 *
 * The publisher is a cursor that follows the event log: each event becomes
 * XADD <stream> MAXLEN ~ N <seq>-0 … with the event's seq as the entry id, so
 * a re-sent event is refused by Redis as a duplicate and publishing is
 * idempotent. While Redis is down nothing is buffered in memory: on
 * reconnect the publisher reads the stream's last id and replays the missing
 * events from the store in batches. At most a fixed number of XADDs are in
 * flight, so a slow Redis cannot grow the server's memory.
 *
 * Connection and commands are asynchronous (hiredis async on the loop);
 * reconnects back off from 250 ms to 10 s; a handshake that gets no answer in
 * 5 s counts as a failed connection; in-flight commands unanswered for 5 s
 * report "stalled". Loop thread only.
 */
#ifndef CITYCMD_CORE_REDIS_H
#define CITYCMD_CORE_REDIS_H

#include "bus.h"
#include "loop.h"
#include "store.h"

typedef struct core_redis core_redis;

typedef struct {
    const char *state; /* "connecting", "syncing", "live", "disconnected" */
    int connected;
    int64_t published_seq;  /* last seq Redis acknowledged */
    int64_t lag;            /* committed events not yet in Redis */
    const char *last_error; /* or NULL; owned by the publisher */
} core_redis_status_t;

/* url: redis://[:password@]host[:port][/db]. Starts connecting at once.
 * Returns NULL with *err set when the URL is malformed. */
core_redis *core_redis_new(core_loop *loop, core_store *store, core_bus *bus, const char *url,
                           const char *stream, int maxlen, char **err);
void core_redis_free(core_redis *r);
/* Validates a --redis URL without connecting: 0, or CORE_EINVAL with *err set. */
int core_redis_url_check(const char *url, char **err);
void core_redis_status(core_redis *r, core_redis_status_t *out);

#endif

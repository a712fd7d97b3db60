/*
 * core.h — the engine's common vocabulary: error codes and small helpers.
 *
 * Every function in citycmd that can fail returns 0 or one of the negative
 * CORE_E* codes below; errors from GLib, SQLite, hiredis, GDAL, GEOS and
 * GStreamer are converted at the module boundary. core_strerror() gives the
 * human text. Codes are stable: they appear in logs and in API error bodies.
 */
#ifndef CITYCMD_CORE_H
#define CITYCMD_CORE_H

#include <stddef.h>
#include <stdint.h>

/* X(name, value, api_code, message) */
#define CORE_ERRORS(X)                                                                             \
    X(NOMEM, -1, "out_of_memory", "out of memory")                                                 \
    X(INVAL, -2, "invalid", "invalid argument")                                                    \
    X(NOTFOUND, -3, "not_found", "not found")                                                      \
    X(EXISTS, -4, "exists", "already exists")                                                      \
    X(TOOBIG, -5, "too_large", "too large")                                                        \
    X(IO, -6, "io_error", "input/output error")                                                    \
    X(STOPPED, -7, "store_stopped", "the store stopped accepting writes after a failed write")     \
    X(SHUTDOWN, -8, "shutting_down", "the server is shutting down")                                \
    X(BUSY, -9, "busy", "too many requests queued; try again")                                     \
    X(DB, -10, "database_error", "database error")                                                 \
    X(CONFIG, -11, "bad_config", "bad configuration")                                              \
    X(PARSE, -12, "malformed", "malformed input")                                                  \
    X(CONFLICT, -13, "conflict", "conflicting change")                                             \
    X(TIMEDOUT, -14, "timed_out", "the operation took too long and was stopped")

enum core_err {
    CORE_OK = 0,
#define CORE__ERR_ENUM(name, val, api, msg) CORE_E##name = (val),
    CORE_ERRORS(CORE__ERR_ENUM)
#undef CORE__ERR_ENUM
};

/* Human-readable text for a CORE_E* code (never NULL). */
const char *core_strerror(int err);
/* Stable snake_case code for API error bodies (never NULL). */
const char *core_errcode(int err);

/* Milliseconds since the Unix epoch (wall clock) and a monotonic clock in µs. */
int64_t core_now_ms(void);
int64_t core_mono_us(void);
/* Formats ms since epoch as ISO 8601 UTC with milliseconds into buf (>= 25 bytes). */
void core_iso8601(int64_t ms, char *buf, size_t len);

#endif

/*
 * log.h — structured logging: one line per event, logfmt (key=value) on stderr.
 *
 *   ts=2026-11-21T08:00:00.123Z level=info event=http.listen addr=127.0.0.1 port=8080
 *
 * The event name is a dotted identifier; the rest is a printf format producing
 * key=value pairs. Control characters in the rendered line are escaped, so a
 * value taken from a request can never forge a second log line. Callable from
 * any thread: each line is written with a single write(2).
 */
#ifndef CITYCMD_CORE_LOG_H
#define CITYCMD_CORE_LOG_H

#include <glib.h>

typedef enum {
    CORE_LOG_DEBUG = 0,
    CORE_LOG_INFO = 1,
    CORE_LOG_WARN = 2,
    CORE_LOG_ERROR = 3,
} core_log_level;

void core_log_set_level(core_log_level level);
core_log_level core_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns 0 or CORE_EINVAL. */
int core_log_level_parse(const char *text, core_log_level *out);
/* Routes GLib's and libwebsockets' own messages through core_log. */
void core_log_capture_libraries(void);

void core_log(core_log_level level, const char *event, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

#define log_debug(ev, ...) core_log(CORE_LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) core_log(CORE_LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) core_log(CORE_LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) core_log(CORE_LOG_ERROR, ev, __VA_ARGS__)

#endif

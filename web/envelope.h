/*
 * envelope.h — the JSON message envelope used on the WebSocket and the
 * uniform HTTP error body.
 *
 * Client → server:  {"type":"subscribe","id":"c1","data":{…}}
 *   type: required string, 1–64 chars of [a-z0-9_.]
 *   id:   optional string (≤ 64 chars) or integer, echoed back as "re"
 *   data: optional object (default {})
 * Server → client:  {"type":"…","re":"c1","data":{…}} or
 *                   {"type":"error","re":"c1","error":{"code":"…","message":"…"}}
 * HTTP errors:      {"error":{"code":"…","message":"…"}}
 *
 * Pure functions; any thread.
 */
#ifndef CITYCMD_WEB_ENVELOPE_H
#define CITYCMD_WEB_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>

typedef struct {
    char type[65];
    json_t *id;   /* NULL, a string or an integer; owned */
    json_t *data; /* an object; owned */
} web_envelope;

/* Parses one message. On failure returns CORE_EPARSE/CORE_EINVAL and sets
 * *code and *message (message freed with g_free). */
int web_envelope_parse(const char *buf, size_t len, web_envelope *out, const char **code,
                       char **message);
void web_envelope_clear(web_envelope *env);

/* Serializes a reply; data is stolen (NULL means none). re may be NULL. Free with free(). */
char *web_envelope_reply(const char *type, const json_t *re, json_t *data);
char *web_envelope_error(const json_t *re, const char *code, const char *message);
/* {"error":{"code":…,"message":…}}; free with free(). */
char *web_error_body(const char *code, const char *message);

#endif

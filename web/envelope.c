/*
 * envelope.c — parsing and building envelope messages with jansson.
 */
#include "envelope.h"
#include "../core/core.h"

#include <glib.h>
#include <string.h>

static int valid_type(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 64)
        return 0;
    for (; *t; t++)
        if (!(g_ascii_islower(*t) || g_ascii_isdigit(*t) || *t == '_' || *t == '.'))
            return 0;
    return 1;
}

int web_envelope_parse(const char *buf, size_t len, web_envelope *out, const char **code,
                       char **message)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        *code = "malformed_json";
        *message = g_strdup_printf("not valid JSON at line %d column %d: %s", jerr.line,
                                   jerr.column, jerr.text);
        return CORE_EPARSE;
    }
    int rc = CORE_EINVAL;
    json_t *type = json_object_get(root, "type");
    json_t *id = json_object_get(root, "id");
    json_t *data = json_object_get(root, "data");
    *code = "invalid_message";
    if (!json_is_object(root)) {
        *message = g_strdup("a message must be a JSON object");
    } else if (!json_is_string(type) || !valid_type(json_string_value(type))) {
        *message = g_strdup("\"type\" must be a string of 1-64 characters [a-z0-9_.]");
    } else if (id && !json_is_integer(id) &&
               !(json_is_string(id) && json_string_length(id) <= 64)) {
        *message = g_strdup("\"id\" must be an integer or a string of at most 64 characters");
    } else if (data && !json_is_object(data)) {
        *message = g_strdup("\"data\" must be an object");
    } else {
        g_strlcpy(out->type, json_string_value(type), sizeof out->type);
        out->id = id ? json_incref(id) : NULL;
        out->data = data ? json_incref(data) : json_object();
        rc = 0;
    }
    json_decref(root);
    return rc;
}

void web_envelope_clear(web_envelope *env)
{
    json_decref(env->id);
    json_decref(env->data);
    env->id = env->data = NULL;
}

char *web_envelope_reply(const char *type, const json_t *re, json_t *data)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type));
    if (re)
        json_object_set(o, "re", (json_t *)re);
    if (data)
        json_object_set_new(o, "data", data);
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(o);
    return s;
}

char *web_envelope_error(const json_t *re, const char *code, const char *message)
{
    json_t *o =
        json_pack("{ss s{ssss}}", "type", "error", "error", "code", code, "message", message);
    if (re)
        json_object_set(o, "re", (json_t *)re);
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(o);
    return s;
}

char *web_error_body(const char *code, const char *message)
{
    json_t *o = json_pack("{s{ssss}}", "error", "code", code, "message", message);
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(o);
    return s;
}

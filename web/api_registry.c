/*
 * api_registry.c — what the registry routes share (api_units.c,
 * api_cameras.c): the context a write carries to its completion, the
 * replies to a write (created with its location, changed, removed,
 * refused), and the import of a file.
 *
 * An import's body is CSV (text/csv) or a GeoJSON FeatureCollection
 * (application/geo+json or application/json), parsed whole by the
 * registry before anything is written; a mistake is a 400 naming the line
 * or feature and the field. Every row's agency must be one the session
 * manages, else the whole file is refused (403, audited); the rows are
 * then one write, all or nothing. Loop thread.
 */
#include "internal.h"

#include "../core/auth.h"
#include "../core/core.h"

#include <string.h>

web_reg_ctx *web_reg_ctx_new(web_req *req, const web_registry *reg)
{
    web_reg_ctx *c = g_new0(web_reg_ctx, 1);
    c->req = req;
    c->who = core_session_copy(req->session);
    c->reg = reg;
    return c;
}

void web_reg_ctx_free(web_reg_ctx *c)
{
    core_session_copy_free(c->who);
    g_free(c);
}

int web_forbid(web_req *req, const char *user, core_action action)
{
    web_reply_forbidden(req, user, core_action_name(action), req->path);
    return -1;
}

void web_reply_field(web_req *req, int status, const char *code, const char *field,
                     const char *message, const json_t *at)
{
    json_t *e = json_pack("{ssss}", "code", code, "message", message);
    if (field && *field)
        json_object_set_new(e, "field", json_string(field));
    if (json_object_get(at, "line"))
        json_object_set(e, "line", json_object_get(at, "line"));
    if (json_object_get(at, "feature"))
        json_object_set(e, "feature", json_object_get(at, "feature"));
    web_reply_json(req, status, json_pack("{so}", "error", e));
}

void web_reg_failed(web_reg_ctx *c, int rc, const json_t *r)
{
    web_req *req = c->req;
    const char *msg = json_string_value(json_object_get(r, "message"));
    const char *field = json_string_value(json_object_get(r, "field"));
    if (json_object_get(r, "forbidden"))
        web_forbid(req, c->who->username, c->reg->manage);
    else if (rc == CORE_EINVAL && msg)
        web_reply_field(req, 400, "invalid_field", field, msg, r);
    else if ((rc == CORE_EEXISTS || rc == CORE_ECONFLICT) && msg)
        web_reply_field(req, 409, "conflict", field, msg, r);
    else if (rc == CORE_ENOTFOUND)
        web_reply_error(req, 404, "not_found", "no %s %s", c->reg->noun,
                        web_param(&req->params, "id"));
    else
        web_reply_core_error(req, rc);
}

void web_reg_written(int rc, json_t *result, void *arg)
{
    web_reg_ctx *c = arg;
    web_req *req = c->req;
    const char *noun = c->reg->noun;
    if (rc) {
        web_reg_failed(c, rc, result);
    } else if (req->method == WEB_DELETE) {
        web_reply(req, 204, "application/json", g_bytes_new_static("", 0));
    } else if (req->method == WEB_POST && json_object_get(result, "created")) {
        web_reply_json(req, 200, json_incref(result)); /* an import's counts */
    } else if (req->method == WEB_POST) {
        char *loc = g_strdup_printf("/api/v1/%ss/%s", noun,
                                    json_string_value(json_object_get(result, "id")));
        web_req_add_header(req, "location", loc);
        g_free(loc);
        web_reply_json(req, 201, json_pack("{sO}", noun, result));
    } else {
        web_reply_json(req, 200, json_pack("{sO}", noun, result));
    }
    json_decref(result);
    web_reg_ctx_free(c);
}

void web_reg_started(web_reg_ctx *c, int rc, char *field, char *message)
{
    if (rc == CORE_EINVAL && message)
        web_reply_field(c->req, 400, "invalid_field", field, message, NULL);
    else if (rc)
        web_reply_core_error(c->req, rc);
    if (rc)
        web_reg_ctx_free(c);
    g_free(field);
    g_free(message);
}

/* ---- import ---- */

/* {"line": 3} / {"feature": 2} from "line 3" / "features[2]". */
static json_t *where_json(const char *where)
{
    json_t *at = json_object();
    int n;
    if (where && sscanf(where, "line %d", &n) == 1)
        json_object_set_new(at, "line", json_integer(n));
    else if (where && sscanf(where, "features[%d]", &n) == 1)
        json_object_set_new(at, "feature", json_integer(n));
    return at;
}

/* Parses the body by its type; replies and returns NULL on error. */
static json_t *import_rows(web_req *req, const web_registry *reg, void *registry)
{
    const char *type = req->body_type ? req->body_type : "";
    const char *text = req->body ? (const char *)req->body->data : "";
    size_t len = req->body ? req->body->len : 0;
    json_t *rows = NULL, *doc = NULL;
    char *where = NULL, *field = NULL, *message = NULL;
    if (strcmp(type, "application/geo+json") == 0 || strcmp(type, "application/json") == 0) {
        if (!(doc = web_req_json(req)))
            return NULL;
    } else if (strcmp(type, "text/csv") != 0) {
        web_reply_error(req, 415, "unsupported_media_type",
                        "send text/csv or application/geo+json (a FeatureCollection)");
        return NULL;
    }
    int rc = reg->parse(registry, text, len, doc, &rows, &where, &field, &message);
    json_decref(doc);
    if (rc) {
        json_t *at = where_json(where);
        web_reply_field(req, 400, "invalid_field", field, message ? message : "invalid file", at);
        json_decref(at);
    }
    g_free(where);
    g_free(field);
    g_free(message);
    return rows;
}

void web_reg_import(web_req *req, const web_registry *reg, void *registry)
{
    json_t *rows = import_rows(req, reg, registry);
    if (!rows)
        return;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *agency =
            json_string_value(json_object_get(json_object_get(row, reg->noun), "agency"));
        if (!core_may(req->session, reg->manage, agency)) {
            json_decref(rows);
            web_forbid(req, req->session->username, reg->manage);
            return;
        }
    }
    char **may = core_readable_agencies(req->session, reg->manage);
    web_reg_ctx *c = web_reg_ctx_new(req, reg);
    int rc = reg->import(registry, rows, may, req->session->username, req->peer, c);
    g_strfreev(may);
    web_reg_started(c, rc, NULL, NULL);
}

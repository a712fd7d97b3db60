/*
 * write_op.c — a registry's write carried to the store's writer and its
 * answer back (write_op.h). The op is freed once done has run, or at once
 * when the write could not be queued; done then is not called.
 */
#include "write_op.h"

#include "core.h"

core_write_op *core_write_op_new(size_t size, core_store *st, const char *actor, const char *source,
                                 core_json_done done, void *arg)
{
    core_write_op *op = g_malloc0(size);
    op->store = st;
    op->actor = g_strdup(actor);
    op->source = g_strdup(source ? source : "");
    op->done = done;
    op->arg = arg;
    return op;
}

void core_write_op_free(core_write_op *op)
{
    if (!op)
        return;
    if (op->clear)
        op->clear(op);
    json_decref(op->fields);
    json_decref(op->rows);
    g_strfreev(op->may);
    g_free(op->agency);
    g_free(op->actor);
    g_free(op->source);
    json_decref(op->result);
    json_decref(op->error);
    g_free(op);
}

static void op_done(int rc, GPtrArray *events, void *arg)
{
    core_write_op *op = arg;
    (void)events;
    if (!rc && op->committed)
        op->committed(op);
    if (op->done)
        op->done(rc, rc ? g_steal_pointer(&op->error) : g_steal_pointer(&op->result), op->arg);
    core_write_op_free(op);
}

int core_write_op_submit(core_write_op *op, core_write_fn fn)
{
    int rc = core_store_write(op->store, fn, op_done, op);
    if (rc)
        core_write_op_free(op);
    return rc;
}

int core_write_op_queue(core_write_op *op, core_write_fn fn, int64_t id, const char *agency,
                        json_t *fields, json_t *rows, char **may)
{
    op->id = id;
    op->agency = g_strdup(agency);
    op->fields = fields;
    op->rows = rows;
    op->may = may ? g_strdupv(may) : NULL;
    return core_write_op_submit(op, fn);
}

json_t *core_write_refusal(const char *field, char *message)
{
    json_t *e = json_pack("{ss}", "message", message);
    if (field)
        json_object_set_new(e, "field", json_string(field));
    g_free(message);
    return e;
}

int core_write_may_touch(char **may, const char *agency, json_t **error)
{
    if (!may || g_strv_contains((const char *const *)may, agency))
        return 0;
    *error = json_pack("{ss}", "forbidden", agency);
    return CORE_EINVAL;
}

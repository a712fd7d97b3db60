/*
 * write_op.h — a registry's write (units, cameras) as one queued store
 * write: what the call asked for, carried to the writer, and the result
 * or the refusal carried back to the caller's done callback on the loop
 * thread once the store committed or gave up.
 *
 * A registry embeds core_write_op as the first member of its own op and
 * allocates it with core_write_op_new(sizeof its op). The writer sets
 * result (success) or error (a reply object, see core_write_refusal); done
 * gets the one that fits rc and owns it. Loop thread, but for the write
 * functions, which run in the store's writer.
 */
#ifndef CITYCMD_CORE_WRITE_OP_H
#define CITYCMD_CORE_WRITE_OP_H

#include "store.h"

#include <glib.h>
#include <jansson.h>
#include <stdint.h>

typedef void (*core_json_done)(int rc, json_t *result /* owned by the callee */, void *arg);

typedef struct core_write_op core_write_op;
struct core_write_op {
    core_store *store;
    int64_t id;
    json_t *fields; /* checked: what an add or a change sets */
    json_t *rows;   /* import */
    char **may;     /* import: agencies whose entries may change; NULL: all */
    char *agency;   /* the entry's agency the caller was authorized for, or NULL */
    char *actor, *source;
    json_t *result, *error;
    core_json_done done;
    void *arg;
    /* Optional: on the loop thread when the write committed, before done. */
    void (*committed)(core_write_op *op);
    /* Optional: frees what the registry's op adds. */
    void (*clear)(core_write_op *op);
};

/* A zeroed op of size bytes (>= sizeof(core_write_op)) with these filled in. */
core_write_op *core_write_op_new(size_t size, core_store *st, const char *actor, const char *source,
                                 core_json_done done, void *arg);
void core_write_op_free(core_write_op *op);
/* Queues fn with op; done is called once it finished. An error at once is
 * returned and op freed (done is not called). */
int core_write_op_submit(core_write_op *op, core_write_fn fn);
/* The same, with what the write is about: the entry id (or 0), the agency
 * the caller was authorized for (copied, may be NULL), the checked fields
 * and the import rows (taken, may be NULL), the agencies an import may
 * touch (copied; NULL: any). */
int core_write_op_queue(core_write_op *op, core_write_fn fn, int64_t id, const char *agency,
                        json_t *fields, json_t *rows, char **may);

/* {"message", "field" (when field is not NULL)}; takes message. */
json_t *core_write_refusal(const char *field, char *message);
/* 0 when may (NULL: any) holds agency; else CORE_EINVAL and *error
 * {"forbidden": agency}. */
int core_write_may_touch(char **may, const char *agency, json_t **error);

#endif

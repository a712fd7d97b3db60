/*
 * pipes_internal.h — shared by dispatch/pipes.c and dispatch/repairs.c.
 */
#ifndef CITYCMD_DISPATCH_PIPES_INTERNAL_H
#define CITYCMD_DISPATCH_PIPES_INTERNAL_H

#include "pipes.h"

typedef struct {
    gis_pipenet *net;
    char *agency;
} pipes__net;

typedef struct {
    int64_t id;
    int net, link;
    double lon, lat;
    GPtrArray *failed, *closed; /* valve ids (char*) reported by the crew */
    int64_t from_ms, to_ms;     /* the window; to_ms 0: until it ends */
    char *status;               /* proposed, planned, active, done, cancelled */
    char *incident, *note, *actor;
    int64_t created_ms, updated_ms;
} pipes__iso;

typedef struct {
    int64_t id, isolation;
    char *agency, *crew, *status, *approved_by, *incident, *notes, *actor;
    int needs_approval;
    int64_t created_ms, updated_ms, approved_ms;
} pipes__order;

struct disp_pipes {
    disp_pipes_deps d;
    GPtrArray *nets;    /* pipes__net* */
    GHashTable *isos;   /* int64 id -> pipes__iso* */
    GHashTable *orders; /* int64 id -> pipes__order* */
    unsigned sub;
};

/* A write of one row plus its events; see pipes.c. */
typedef struct pipes__op pipes__op;
struct pipes__op {
    disp_pipes *p;
    int (*write)(core_txn *txn, pipes__op *op);
    void (*apply)(pipes__op *op); /* after commit, loop thread */
    pipes__iso *iso;              /* new state, owned until applied */
    pipes__order *order;
    char *actor, *source, *network, *valve, *state, *reason, *link, *node;
    json_t *result, *summary;
    disp_json_done done;
    void *arg;
};

pipes__op *pipes__op_new(disp_pipes *p, const char *actor, const char *source, disp_json_done done,
                         void *arg);
/* Queues op on the writer; frees it when the write could not be queued. */
int pipes__op_run(pipes__op *op);
void pipes__op_free(pipes__op *op);
int pipes__net_index(const disp_pipes *p, const char *name);
pipes__net *pipes__net_at(const disp_pipes *p, int i);
/* Valve states and changes to the networks, from the store (networks.c). */
void pipes__networks_load(disp_pipes *p, sqlite3 *db);
/* Emits an event on subject with the network agency in "agencies" (data stolen). */
int pipes__emit(core_txn *txn, pipes__op *op, const char *type, const char *subject,
                const char *agency, json_t *data);
/* Adds an entry to an incident's timeline ("I-n"; nothing when empty or unknown). */
int pipes__timeline(core_txn *txn, pipes__op *op, const char *incident, json_t *data);

pipes__iso *pipes__iso_get(disp_pipes *p, int64_t id);
pipes__iso *pipes__iso_copy(const pipes__iso *i);
void pipes__iso_free(pipes__iso *i);
int pipes__iso_open(const pipes__iso *i);
/* The isolation's answer now (r cleared first). */
int pipes__iso_answer(disp_pipes *p, const pipes__iso *i, gis_iso_result *r);
const char *pipes__iso_agency(const disp_pipes *p, const pipes__iso *i);

void pipes__order_free(pipes__order *o);
int pipes__orders_load(disp_pipes *p, sqlite3 *db);
/* An order's status after a valve report (all valves closed): may advance it. */
int pipes__order_for_isolation(disp_pipes *p, int64_t isolation, pipes__order **out);

int pipes__fail(char **field, char **message, const char *f, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

#endif

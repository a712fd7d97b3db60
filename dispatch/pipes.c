/*
 * pipes.c — the pipe networks live: valve states and isolations kept in the
 * store, answers computed from the network as it is (pipes.h).
 *
 * Memory mirrors the tables: a write builds the new state of one row,
 * commits it with its event, and only then replaces the old state (so a
 * failed write changes nothing). An isolation keeps what cannot be derived
 * (the burst pipe, the window, the crew's reports by valve id); its answer
 * is computed on every read, so valves marked inoperable anywhere, or a
 * valve of this isolation reported as failed, change it at once.
 *
 * Conflicts: two open isolations of one network whose windows overlap
 * (an emergency one runs from its creation until it ends) are isolated
 * together; the customers the combination cuts off beyond those each cuts
 * off alone are the conflict's extra customers.
 */
#include "pipes_internal.h"

#include "../core/log.h"
#include "internal.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>

static const core_migration migrations[] = {
    {"pipes", 1,
     "CREATE TABLE pipe_valve_states ("
     "  network TEXT NOT NULL, valve TEXT NOT NULL, state TEXT NOT NULL,"
     "  reason TEXT NOT NULL DEFAULT '', actor TEXT NOT NULL, at_ms INTEGER NOT NULL,"
     "  PRIMARY KEY (network, valve));"
     "CREATE TABLE pipe_isolations ("
     "  id INTEGER PRIMARY KEY, network TEXT NOT NULL, link TEXT NOT NULL,"
     "  lon REAL NOT NULL, lat REAL NOT NULL, failed TEXT NOT NULL DEFAULT '[]',"
     "  closed TEXT NOT NULL DEFAULT '[]', from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL,"
     "  status TEXT NOT NULL, incident TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT '',"
     "  actor TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE TABLE repair_orders ("
     "  id INTEGER PRIMARY KEY, isolation INTEGER NOT NULL, agency TEXT NOT NULL,"
     "  crew TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, needs_approval INTEGER NOT NULL,"
     "  approved_by TEXT NOT NULL DEFAULT '', approved_ms INTEGER NOT NULL DEFAULT 0,"
     "  incident TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '',"
     "  actor TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)"},
    {"pipes", 2,
     "CREATE TABLE pipe_network_edits ("
     "  id INTEGER PRIMARY KEY, network TEXT NOT NULL, kind TEXT NOT NULL,"
     "  element TEXT NOT NULL, link TEXT NOT NULL DEFAULT '', node TEXT NOT NULL DEFAULT '',"
     "  actor TEXT NOT NULL, at_ms INTEGER NOT NULL)"},
};

void disp_pipes_register(core_store *st)
{
    core_store_add_migrations(st, migrations, G_N_ELEMENTS(migrations));
}

int pipes__fail(char **field, char **message, const char *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *field = g_strdup(f);
    *message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return CORE_EINVAL;
}

/* ---- isolations in memory ---- */

pipes__iso *pipes__iso_get(disp_pipes *p, int64_t id)
{
    return g_hash_table_lookup(p->isos, &id);
}

void pipes__iso_free(pipes__iso *i)
{
    if (!i)
        return;
    g_ptr_array_unref(i->failed);
    g_ptr_array_unref(i->closed);
    g_free(i->status);
    g_free(i->incident);
    g_free(i->note);
    g_free(i->actor);
    g_free(i);
}

static GPtrArray *strv_copy(const GPtrArray *a)
{
    GPtrArray *b = g_ptr_array_new_with_free_func(g_free);
    for (guint k = 0; a && k < a->len; k++)
        g_ptr_array_add(b, g_strdup(a->pdata[k]));
    return b;
}

pipes__iso *pipes__iso_copy(const pipes__iso *i)
{
    pipes__iso *c = g_memdup2(i, sizeof *i);
    c->failed = strv_copy(i->failed);
    c->closed = strv_copy(i->closed);
    c->status = g_strdup(i->status);
    c->incident = g_strdup(i->incident);
    c->note = g_strdup(i->note);
    c->actor = g_strdup(i->actor);
    return c;
}

int pipes__iso_open(const pipes__iso *i)
{
    return strcmp(i->status, "done") != 0 && strcmp(i->status, "cancelled") != 0;
}

const char *pipes__iso_agency(const disp_pipes *p, const pipes__iso *i)
{
    return pipes__net_at(p, i->net)->agency;
}

const char *disp_isolation_agency(const disp_pipes *p, int64_t id)
{
    pipes__iso *i = g_hash_table_lookup(p->isos, &id);
    return i ? pipes__iso_agency(p, i) : NULL;
}

/* Valve indices of ids (unknown ones are left out: the package changed). */
static GArray *valve_indices(gis_pipenet *g, const GPtrArray *ids)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(int));
    for (guint k = 0; k < ids->len; k++) {
        int v = gis_pipenet_find_valve(g, ids->pdata[k]);
        if (v >= 0)
            g_array_append_val(a, v);
    }
    return a;
}

static int iso_answer_with(disp_pipes *p, const pipes__iso *i, const pipes__iso *other,
                           gis_iso_result *r)
{
    gis_pipenet *g = pipes__net_at(p, i->net)->net;
    const pipes__iso *both[2] = {i, other};
    gis_iso_query q[2];
    GArray *keep[2] = {0};
    size_t nq = other ? 2 : 1;
    /* Valves the crew reported closed are among those to close: they stay
     * in the list (marked), and count as closed like the rest of it. */
    for (size_t k = 0; k < nq; k++) {
        keep[k] = valve_indices(g, both[k]->failed);
        q[k] = (gis_iso_query){.link = both[k]->link,
                               .failed = (int *)keep[k]->data,
                               .n_failed = keep[k]->len,
                               .at_x = both[k]->lon,
                               .at_y = both[k]->lat};
    }
    int rc = gis_pipes_isolate_many(g, q, nq, r);
    for (size_t k = 0; k < nq; k++)
        g_array_free(keep[k], TRUE);
    return rc;
}

int pipes__iso_answer(disp_pipes *p, const pipes__iso *i, gis_iso_result *r)
{
    return iso_answer_with(p, i, NULL, r);
}

static int64_t window_end(const pipes__iso *i)
{
    return i->to_ms ? i->to_ms : INT64_MAX;
}

/* Customers (as a set of indices) an answer cuts off. */
static GHashTable *customer_set(gis_pipenet *g, const gis_iso_result *r)
{
    GArray *c = g_array_new(FALSE, FALSE, sizeof(int));
    gis_iso_result_customers(g, r, c);
    GHashTable *h = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (guint k = 0; k < c->len; k++)
        g_hash_table_add(h, GINT_TO_POINTER(g_array_index(c, int, k) + 1));
    g_array_free(c, TRUE);
    return h;
}

static json_t *conflicts_json(disp_pipes *p, const pipes__iso *i, const gis_iso_result *mine)
{
    json_t *list = json_array();
    if (!pipes__iso_open(i))
        return list;
    gis_pipenet *g = pipes__net_at(p, i->net)->net;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, p->isos);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        pipes__iso *o = v;
        if (o == i || o->net != i->net || !pipes__iso_open(o) || o->from_ms >= window_end(i) ||
            i->from_ms >= window_end(o))
            continue;
        gis_iso_result ro, rb;
        if (pipes__iso_answer(p, o, &ro) != 0 || iso_answer_with(p, i, o, &rb) != 0) {
            gis_iso_result_clear(&ro);
            gis_iso_result_clear(&rb);
            continue;
        }
        GHashTable *a = customer_set(g, mine), *b = customer_set(g, &ro), *c = customer_set(g, &rb);
        size_t extra = 0, extra_priority = 0;
        GHashTableIter ci;
        gpointer key;
        g_hash_table_iter_init(&ci, c);
        while (g_hash_table_iter_next(&ci, &key, NULL))
            if (!g_hash_table_contains(a, key) && !g_hash_table_contains(b, key)) {
                extra++;
                extra_priority +=
                    (size_t)gis_pipenet_customer(g, (size_t)GPOINTER_TO_INT(key) - 1)->priority;
            }
        json_array_append_new(list,
                              json_pack("{sI ss sI sI}", "isolation", (json_int_t)o->id, "status",
                                        o->status, "extra_customers", (json_int_t)extra,
                                        "extra_priority", (json_int_t)extra_priority));
        g_hash_table_destroy(a), g_hash_table_destroy(b), g_hash_table_destroy(c);
        gis_iso_result_clear(&ro);
        gis_iso_result_clear(&rb);
    }
    return list;
}

static json_t *strv_json(const GPtrArray *a)
{
    json_t *j = json_array();
    for (guint k = 0; k < a->len; k++)
        json_array_append_new(j, json_string(a->pdata[k]));
    return j;
}

static int strv_has(const GPtrArray *a, const char *s)
{
    for (guint k = 0; k < a->len; k++)
        if (strcmp(a->pdata[k], s) == 0)
            return 1;
    return 0;
}

/* The isolation's own fields; reads nothing that changes (safe in the writer). */
static json_t *iso_brief(const disp_pipes *p, const pipes__iso *i)
{
    char created[32], from[32], to[32];
    core_iso8601(i->created_ms, created, sizeof created);
    core_iso8601(i->from_ms, from, sizeof from);
    core_iso8601(i->to_ms, to, sizeof to);
    gis_pipenet *g = pipes__net_at(p, i->net)->net;
    json_t *window = json_pack("{ss}", "from", from);
    json_object_set_new(window, "to", i->to_ms ? json_string(to) : json_null());
    return json_pack("{sI ss ss ss ss s[ff] so ss ss ss so so ss ss}", "id", (json_int_t)i->id,
                     "network", gis_pipenet_name(g), "utility", gis_pipenet_utility(g), "agency",
                     pipes__iso_agency(p, i), "pipe", gis_pipenet_link(g, (size_t)i->link)->id,
                     "point", i->lon, i->lat, "window", window, "status", i->status, "incident",
                     i->incident, "note", i->note, "failed", strv_json(i->failed),
                     "reported_closed", strv_json(i->closed), "by", i->actor, "created_at",
                     created);
}

static json_t *iso_head(disp_pipes *p, const pipes__iso *i)
{
    json_t *o = iso_brief(p, i);
    pipes__order *ord = NULL;
    pipes__order_for_isolation(p, i->id, &ord);
    json_object_set_new(o, "order", ord ? json_integer(ord->id) : json_null());
    return o;
}

/* Counts of an isolation's answer, for lists and events. */
static json_t *iso_summary(disp_pipes *p, const pipes__iso *i)
{
    gis_iso_result r;
    json_t *o = json_null();
    if (pipes__iso_answer(p, i, &r) == 0)
        o = json_pack("{sI sI sI sI sI}", "valves", (json_int_t)r.close->len, "customers",
                      (json_int_t)r.customers, "priority", (json_int_t)r.priority_customers,
                      "isolated_links", (json_int_t)r.isolated_links, "dry_links",
                      (json_int_t)r.dry_links);
    gis_iso_result_clear(&r);
    return o;
}

/* The answer's valve lists annotated with the crew's reports. */
static void annotate(json_t *answer, const pipes__iso *i)
{
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(answer, "valves"), k, v)
    {
        const char *id = json_string_value(json_object_get(v, "id"));
        json_object_set_new(v, "reported",
                            strv_has(i->closed, id) ? json_string("closed") : json_null());
    }
    json_array_foreach(json_object_get(answer, "cannot_close"), k, v)
    {
        const char *id = json_string_value(json_object_get(v, "id"));
        json_object_set_new(v, "failed", json_boolean(strv_has(i->failed, id)));
    }
}

static json_t *iso_json(disp_pipes *p, const pipes__iso *i, int detail)
{
    json_t *o = iso_head(p, i);
    gis_iso_result r;
    gis_pipenet *g = pipes__net_at(p, i->net)->net;
    if (pipes__iso_answer(p, i, &r) == 0) {
        json_t *answer = gis_iso_result_json(g, &r, detail, 5000);
        annotate(answer, i);
        json_object_set_new(o, "answer", answer);
        json_object_set_new(o, "conflicts", conflicts_json(p, i, &r));
    } else {
        json_object_set_new(o, "answer", json_null());
    }
    gis_iso_result_clear(&r);
    return o;
}

json_t *disp_isolation_json(disp_pipes *p, int64_t id, int detail)
{
    pipes__iso *i = pipes__iso_get(p, id);
    return i ? iso_json(p, i, detail) : NULL;
}

static gint by_id_desc(gconstpointer a, gconstpointer b)
{
    int64_t x = (*(pipes__iso *const *)a)->id, y = (*(pipes__iso *const *)b)->id;
    return x < y ? 1 : x > y ? -1 : 0;
}

json_t *disp_isolations_json(disp_pipes *p, const core_session *s, int all)
{
    GPtrArray *list = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, p->isos);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if ((all || pipes__iso_open(v)) &&
            (!s || core_may(s, CORE_ACT_PIPES_READ, pipes__iso_agency(p, v))))
            g_ptr_array_add(list, v);
    g_ptr_array_sort(list, by_id_desc);
    json_t *out = json_array();
    for (guint k = 0; k < list->len && k < 500; k++) {
        pipes__iso *i = list->pdata[k];
        json_t *o = iso_head(p, i);
        json_object_set_new(o, "summary", iso_summary(p, i));
        json_array_append_new(out, o);
    }
    g_ptr_array_unref(list);
    return json_pack("{so}", "isolations", out);
}

/* ---- writes ---- */

pipes__op *pipes__op_new(disp_pipes *p, const char *actor, const char *source, disp_json_done done,
                         void *arg)
{
    pipes__op *op = g_new0(pipes__op, 1);
    op->p = p;
    op->actor = g_strdup(actor);
    op->source = g_strdup(source ? source : "");
    op->done = done;
    op->arg = arg;
    return op;
}

void pipes__op_free(pipes__op *op)
{
    pipes__iso_free(op->iso);
    pipes__order_free(op->order);
    g_free(op->actor);
    g_free(op->source);
    g_free(op->network);
    g_free(op->valve);
    g_free(op->state);
    g_free(op->reason);
    g_free(op->link);
    g_free(op->node);
    json_decref(op->result);
    json_decref(op->summary);
    g_free(op);
}

static int op_write(core_txn *txn, void *arg)
{
    pipes__op *op = arg;
    return op->write(txn, op);
}

static void op_done(int rc, GPtrArray *events, void *arg)
{
    pipes__op *op = arg;
    (void)events;
    if (!rc && op->apply)
        op->apply(op);
    if (op->done)
        op->done(rc, rc ? NULL : json_incref(op->result), op->arg);
    pipes__op_free(op);
}

int pipes__op_run(pipes__op *op)
{
    int rc = core_store_write(op->p->d.store, op_write, op_done, op);
    if (rc)
        pipes__op_free(op);
    return rc;
}

int pipes__emit(core_txn *txn, pipes__op *op, const char *type, const char *subject,
                const char *agency, json_t *data)
{
    json_object_set_new(data, "agencies", json_pack("[s]", agency));
    core_event *ev = core_event_new(type, op->actor, subject, data);
    core_event_set_source(ev, op->source);
    return core_txn_emit(txn, ev);
}

int pipes__timeline(core_txn *txn, pipes__op *op, const char *incident, json_t *data)
{
    if (!incident || !g_str_has_prefix(incident, "I-")) {
        json_decref(data);
        return 0;
    }
    disp__update_op u = {
        .id = g_ascii_strtoll(incident + 2, NULL, 10), .actor = op->actor, .source = op->source};
    int rc = disp__emit_change(txn, &u, "incident.utility", data);
    return rc == CORE_ENOTFOUND ? 0 : rc; /* an incident gone does not stop the isolation */
}

static char *strv_text(const GPtrArray *a)
{
    json_t *j = strv_json(a);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static int iso_row_write(core_txn *txn, pipes__op *op, const char *event)
{
    pipes__iso *i = op->iso;
    gis_pipenet *g = pipes__net_at(op->p, i->net)->net;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT OR REPLACE INTO pipe_isolations (id, network, link, lon, lat, failed, closed,"
             " from_ms, to_ms, status, incident, note, actor, created_ms, updated_ms)"
             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!s)
        return CORE_EDB;
    char *failed = strv_text(i->failed), *closed = strv_text(i->closed);
    if (i->id)
        sqlite3_bind_int64(s, 1, i->id);
    else
        sqlite3_bind_null(s, 1);
    sqlite3_bind_text(s, 2, gis_pipenet_name(g), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, gis_pipenet_link(g, (size_t)i->link)->id, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 4, i->lon);
    sqlite3_bind_double(s, 5, i->lat);
    sqlite3_bind_text(s, 6, failed, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 7, closed, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 8, i->from_ms);
    sqlite3_bind_int64(s, 9, i->to_ms);
    sqlite3_bind_text(s, 10, i->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, i->incident, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, i->note, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 13, i->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 14, i->created_ms);
    sqlite3_bind_int64(s, 15, i->updated_ms);
    free(failed);
    free(closed);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    if (!i->id)
        i->id = sqlite3_last_insert_rowid(core_txn_db(txn));
    json_t *data = iso_brief(op->p, i);
    json_object_set(data, "summary", op->summary);
    char subject[40];
    g_snprintf(subject, sizeof subject, "isolation/%" G_GINT64_FORMAT, i->id);
    json_t *timeline = *i->incident ? json_deep_copy(data) : NULL;
    rc = pipes__emit(txn, op, event, subject, pipes__iso_agency(op->p, i), data);
    if (!rc && timeline) {
        json_object_set_new(timeline, "event", json_string(event));
        json_object_del(timeline, "agencies");
        return pipes__timeline(txn, op, i->incident, timeline);
    }
    json_decref(timeline);
    return rc;
}

static int iso_created_write(core_txn *txn, pipes__op *op)
{
    return iso_row_write(txn, op, "pipes.isolation.created");
}
static int iso_changed_write(core_txn *txn, pipes__op *op)
{
    return iso_row_write(txn, op, "pipes.isolation.changed");
}

static void iso_apply(pipes__op *op)
{
    pipes__iso *i = op->iso;
    op->iso = NULL;
    g_hash_table_replace(op->p->isos, &i->id, i);
    op->result = json_pack("{so}", "isolation", iso_json(op->p, i, 1));
}

/* Queues the new state of an isolation (its summary computed here, on the loop). */
static int iso_queue(disp_pipes *p, pipes__iso *i, int created, const char *actor,
                     const char *source, disp_json_done done, void *arg)
{
    pipes__op *op = pipes__op_new(p, actor, source, done, arg);
    op->iso = i;
    op->summary = iso_summary(p, i);
    op->write = created ? iso_created_write : iso_changed_write;
    op->apply = iso_apply;
    return pipes__op_run(op);
}

/* ms since the epoch from an ISO 8601 string, or -1. */
static int64_t parse_time(const json_t *j)
{
    if (!json_is_string(j))
        return -1;
    GDateTime *dt = g_date_time_new_from_iso8601(json_string_value(j), NULL);
    if (!dt)
        return -1;
    int64_t ms = g_date_time_to_unix(dt) * 1000 + g_date_time_get_microsecond(dt) / 1000;
    g_date_time_unref(dt);
    return ms;
}

/* The network and pipe of a body: by pipe id, or the nearest pipe to a point. */
static int locate(disp_pipes *p, const json_t *body, disp_pipes_allowed allowed, void *user,
                  int *net, int *link, double *lon, double *lat, char **field, char **message)
{
    const char *name = json_string_value(json_object_get(body, "network"));
    json_t *pipe = json_object_get(body, "pipe"), *point = json_object_get(body, "point");
    if (name && pipes__net_index(p, name) < 0)
        return pipes__fail(field, message, "network", "no network named %s", name);
    if (json_is_string(pipe)) {
        for (guint k = 0; k < p->nets->len; k++) {
            if (name && pipes__net_index(p, name) != (int)k)
                continue;
            int j = gis_pipenet_find_link(pipes__net_at(p, (int)k)->net, json_string_value(pipe));
            if (j >= 0 && !gis_pipenet_link(pipes__net_at(p, (int)k)->net, (size_t)j)->removed) {
                const gis_pipe_link *l = gis_pipenet_link(pipes__net_at(p, (int)k)->net, (size_t)j);
                *net = (int)k, *link = j;
                *lon = (l->xy[0] + l->xy[2 * l->nvert - 2]) / 2;
                *lat = (l->xy[1] + l->xy[2 * l->nvert - 1]) / 2;
                return allowed(pipes__net_at(p, *net)->agency, user) ? 0 : CORE_EEXISTS;
            }
        }
        return pipes__fail(field, message, "pipe", "no pipe %s%s%s", json_string_value(pipe),
                           name ? " in network " : "", name ? name : "");
    }
    if (!json_is_array(point) || json_array_size(point) != 2 ||
        !json_is_number(json_array_get(point, 0)) || !json_is_number(json_array_get(point, 1)) ||
        !gis_lonlat_valid(json_number_value(json_array_get(point, 0)),
                          json_number_value(json_array_get(point, 1))))
        return pipes__fail(field, message, "pipe", "a pipe id, or a point [lon, lat] in degrees");
    *lon = json_number_value(json_array_get(point, 0));
    *lat = json_number_value(json_array_get(point, 1));
    double best = INFINITY;
    *net = -1;
    for (guint k = 0; k < p->nets->len; k++) {
        if ((name && pipes__net_index(p, name) != (int)k) ||
            !allowed(pipes__net_at(p, (int)k)->agency, user))
            continue;
        double d;
        int j = gis_pipenet_nearest_link(pipes__net_at(p, (int)k)->net, *lon, *lat,
                                         DISP_PIPES_SNAP_M, &d);
        if (j >= 0 && d < best)
            best = d, *net = (int)k, *link = j;
    }
    if (*net < 0)
        return pipes__fail(field, message, "point", "no pipe you may isolate within %.0f m",
                           DISP_PIPES_SNAP_M);
    return 0;
}

static int check_valves(gis_pipenet *g, const json_t *list, GPtrArray *out, char **field,
                        char **message)
{
    size_t k;
    json_t *v;
    if (list && !json_is_array(list))
        return pipes__fail(field, message, "failed", "a list of valve ids");
    json_array_foreach(list, k, v)
    {
        if (!json_is_string(v) || gis_pipenet_find_valve(g, json_string_value(v)) < 0)
            return pipes__fail(field, message, "failed", "no valve %s in network %s",
                               json_is_string(v) ? json_string_value(v) : "(not a string)",
                               gis_pipenet_name(g));
        if (!strv_has(out, json_string_value(v)))
            g_ptr_array_add(out, g_strdup(json_string_value(v)));
    }
    return 0;
}

int disp_isolation_create(disp_pipes *p, const json_t *body, const char *actor, const char *source,
                          disp_pipes_allowed allowed, void *user, disp_json_done done, void *arg,
                          char **field, char **message)
{
    int net = -1, link = -1;
    double lon = 0, lat = 0;
    if (!json_is_object(body))
        return pipes__fail(field, message, "body", "a JSON object");
    int rc = locate(p, body, allowed, user, &net, &link, &lon, &lat, field, message);
    if (rc)
        return rc;
    json_t *window = json_object_get(body, "window"), *incident = json_object_get(body, "incident"),
           *note = json_object_get(body, "note");
    int64_t now = core_now_ms(), from = now, to = 0;
    if (window && !json_is_null(window)) {
        from = parse_time(json_object_get(window, "from"));
        to = parse_time(json_object_get(window, "to"));
        if (from < 0 || to < 0 || to <= from)
            return pipes__fail(field, message, "window",
                               "{\"from\",\"to\"} in ISO 8601, from before to");
    }
    if (incident && !json_is_null(incident) &&
        (!json_is_string(incident) || !g_str_has_prefix(json_string_value(incident), "I-")))
        return pipes__fail(field, message, "incident", "an incident id, I-<number>");
    if (note && (!json_is_string(note) || json_string_length(note) > 1000))
        return pipes__fail(field, message, "note", "text of up to 1000 bytes");
    pipes__iso *i = g_new0(pipes__iso, 1);
    i->failed = g_ptr_array_new_with_free_func(g_free);
    i->closed = g_ptr_array_new_with_free_func(g_free);
    if ((rc = check_valves(pipes__net_at(p, net)->net, json_object_get(body, "failed"), i->failed,
                           field, message))) {
        pipes__iso_free(i);
        return rc;
    }
    i->net = net, i->link = link, i->lon = lon, i->lat = lat;
    i->from_ms = from, i->to_ms = to;
    i->status = g_strdup(to ? "planned"
                         : json_is_string(json_object_get(body, "status"))
                             ? json_string_value(json_object_get(body, "status"))
                             : "active");
    if (strcmp(i->status, "proposed") != 0 && strcmp(i->status, "planned") != 0 &&
        strcmp(i->status, "active") != 0) {
        pipes__iso_free(i);
        return pipes__fail(field, message, "status", "proposed, planned or active");
    }
    i->incident = g_strdup(json_is_string(incident) ? json_string_value(incident) : "");
    i->note = g_strdup(json_is_string(note) ? json_string_value(note) : "");
    i->actor = g_strdup(actor);
    i->created_ms = i->updated_ms = now;
    return iso_queue(p, i, 1, actor, source, done, arg);
}

/* Is the valve one the crew works on here: to close, reported, or failed? */
static int iso_has_valve(disp_pipes *p, const pipes__iso *i, const char *valve)
{
    if (strv_has(i->failed, valve) || strv_has(i->closed, valve))
        return 1;
    gis_iso_result r;
    int found = 0;
    gis_pipenet *g = pipes__net_at(p, i->net)->net;
    int v = gis_pipenet_find_valve(g, valve);
    if (pipes__iso_answer(p, i, &r) == 0)
        for (guint k = 0; k < r.close->len && !found; k++)
            found = g_array_index(r.close, int, k) == v;
    gis_iso_result_clear(&r);
    return found;
}

int disp_isolation_report(disp_pipes *p, int64_t id, const char *valve, const char *result,
                          const char *actor, const char *source, disp_json_done done, void *arg,
                          char **field, char **message)
{
    pipes__iso *cur = pipes__iso_get(p, id);
    if (!cur)
        return CORE_ENOTFOUND;
    if (!pipes__iso_open(cur))
        return pipes__fail(field, message, "isolation", "isolation %" G_GINT64_FORMAT " is %s", id,
                           cur->status);
    gis_pipenet *g = pipes__net_at(p, cur->net)->net;
    if (!valve || gis_pipenet_find_valve(g, valve) < 0)
        return pipes__fail(field, message, "valve", "no valve %s in network %s", valve ? valve : "",
                           gis_pipenet_name(g));
    if (!result || (strcmp(result, "closed") != 0 && strcmp(result, "failed") != 0))
        return pipes__fail(field, message, "result", "closed or failed");
    if (!iso_has_valve(p, cur, valve))
        return pipes__fail(field, message, "valve", "valve %s is not one of this isolation's",
                           valve);
    pipes__iso *i = pipes__iso_copy(cur);
    GPtrArray *to = strcmp(result, "closed") == 0 ? i->closed : i->failed;
    GPtrArray *from = to == i->closed ? i->failed : i->closed;
    for (guint k = 0; k < from->len; k++)
        if (strcmp(from->pdata[k], valve) == 0)
            g_ptr_array_remove_index(from, k--);
    if (!strv_has(to, valve))
        g_ptr_array_add(to, g_strdup(valve));
    if (strcmp(i->status, "proposed") == 0 || strcmp(i->status, "planned") == 0)
        g_free(i->status), i->status = g_strdup("active");
    i->updated_ms = core_now_ms();
    return iso_queue(p, i, 0, actor, source, done, arg);
}

int disp_isolation_end(disp_pipes *p, int64_t id, const char *status, const char *actor,
                       const char *source, disp_json_done done, void *arg)
{
    pipes__iso *cur = pipes__iso_get(p, id);
    if (!cur)
        return CORE_ENOTFOUND;
    if (!pipes__iso_open(cur))
        return CORE_ECONFLICT;
    pipes__iso *i = pipes__iso_copy(cur);
    g_free(i->status);
    i->status = g_strdup(status);
    i->updated_ms = core_now_ms();
    return iso_queue(p, i, 0, actor, source, done, arg);
}

/* ---- a burst reported as a call proposes its isolation ---- */

static int allowed_any(const char *agency, void *user)
{
    return strcmp(agency, (const char *)user) == 0;
}

static void proposed(int rc, json_t *result, void *arg)
{
    (void)arg;
    if (rc)
        log_warn("pipes.propose", "error=\"%s\"", core_strerror(rc));
    json_decref(result);
}

static void on_incident(core_event *ev, void *user)
{
    disp_pipes *p = user;
    const char *type = json_string_value(json_object_get(ev->data, "type"));
    const char *utility = !type                                           ? NULL
                          : strcmp(type, "utility/water-main-burst") == 0 ? "water"
                          : strcmp(type, "utility/gas-leak") == 0         ? "gas"
                                                                          : NULL;
    json_t *loc = json_object_get(ev->data, "location");
    if (!utility || !loc)
        return;
    char *field = NULL, *message = NULL;
    json_t *body = json_pack(
        "{s[ff] sO ss ss}", "point", json_number_value(json_object_get(loc, "lon")),
        json_number_value(json_object_get(loc, "lat")), "incident", json_object_get(ev->data, "id"),
        "status", "proposed", "note", "proposed for the reported burst");
    int rc = disp_isolation_create(p, body, "system", "local", allowed_any, (void *)utility,
                                   proposed, NULL, &field, &message);
    if (rc && rc != CORE_EINVAL)
        log_warn("pipes.propose", "incident=%s error=\"%s\"", ev->subject, core_strerror(rc));
    else if (rc)
        log_info("pipes.propose", "incident=%s none=\"%s\"", ev->subject, message);
    g_free(field);
    g_free(message);
    json_decref(body);
}

/* ---- start ---- */

static void load(sqlite3 *db, void *arg)
{
    disp_pipes *p = arg;
    sqlite3_stmt *s;
    pipes__networks_load(p, db);
    if (sqlite3_prepare_v2(db,
                           "SELECT id, network, link, lon, lat, failed, closed, from_ms, to_ms,"
                           " status, incident, note, actor, created_ms, updated_ms"
                           " FROM pipe_isolations ORDER BY id",
                           -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            int n = pipes__net_index(p, disp__col_text(s, 1));
            int link =
                n < 0 ? -1 : gis_pipenet_find_link(pipes__net_at(p, n)->net, disp__col_text(s, 2));
            if (link < 0) {
                log_warn("pipes.load", "isolation=%lld network=%s pipe=%s gone",
                         (long long)sqlite3_column_int64(s, 0), disp__col_text(s, 1),
                         disp__col_text(s, 2));
                continue;
            }
            pipes__iso *i = g_new0(pipes__iso, 1);
            i->id = sqlite3_column_int64(s, 0);
            i->net = n, i->link = link;
            i->lon = sqlite3_column_double(s, 3), i->lat = sqlite3_column_double(s, 4);
            i->failed = g_ptr_array_new_with_free_func(g_free);
            i->closed = g_ptr_array_new_with_free_func(g_free);
            for (int c = 5; c <= 6; c++) {
                json_t *a = json_loads(disp__col_text(s, c), 0, NULL);
                size_t k;
                json_t *v;
                json_array_foreach(a, k, v) if (json_is_string(v))
                    g_ptr_array_add(c == 5 ? i->failed : i->closed, g_strdup(json_string_value(v)));
                json_decref(a);
            }
            i->from_ms = sqlite3_column_int64(s, 7), i->to_ms = sqlite3_column_int64(s, 8);
            i->status = g_strdup(disp__col_text(s, 9));
            i->incident = g_strdup(disp__col_text(s, 10));
            i->note = g_strdup(disp__col_text(s, 11));
            i->actor = g_strdup(disp__col_text(s, 12));
            i->created_ms = sqlite3_column_int64(s, 13);
            i->updated_ms = sqlite3_column_int64(s, 14);
            g_hash_table_replace(p->isos, &i->id, i);
        }
        sqlite3_finalize(s);
    }
    pipes__orders_load(p, db);
}

static void net_free(gpointer x)
{
    pipes__net *n = x;
    gis_pipenet_free(n->net);
    g_free(n->agency);
    g_free(n);
}

static void iso_free_cb(gpointer x)
{
    pipes__iso_free(x);
}
static void order_free_cb(gpointer x)
{
    pipes__order_free(x);
}

disp_pipes *disp_pipes_new(const disp_pipes_deps *deps, gis_pipenet **networks)
{
    disp_pipes *p = g_new0(disp_pipes, 1);
    p->d = *deps;
    if (p->d.approval_customers <= 0)
        p->d.approval_customers = DISP_PIPES_APPROVAL_DEFAULT;
    p->nets = g_ptr_array_new_with_free_func(net_free);
    for (size_t k = 0; networks && networks[k]; k++) {
        pipes__net *n = g_new0(pipes__net, 1);
        n->net = networks[k];
        n->agency = g_strdup(gis_pipenet_utility(networks[k]));
        g_ptr_array_add(p->nets, n);
    }
    p->isos = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, iso_free_cb);
    p->orders = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, order_free_cb);
    if (p->d.store && core_store_load(p->d.store, load, p) != 0)
        log_error("pipes.load", "error=\"cannot read the store\"");
    if (p->d.bus && p->nets->len)
        p->sub = core_bus_subscribe(p->d.bus, "incident.opened", on_incident, p);
    return p;
}

void disp_pipes_free(disp_pipes *p)
{
    if (!p)
        return;
    if (p->sub)
        core_bus_unsubscribe(p->d.bus, p->sub);
    g_hash_table_destroy(p->orders);
    g_hash_table_destroy(p->isos);
    g_ptr_array_unref(p->nets);
    g_free(p);
}

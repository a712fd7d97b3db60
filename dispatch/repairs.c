/*
 * repairs.c — repair orders: an isolation given to a crew (pipes.h).
 *
 * An order belongs to the agency of its network. Its crew is the one named,
 * or the nearest available crew of that utility by road (the dispatch
 * module's recommendation, with a one-slot plan of the utility's crew
 * kind). It needs approval before work starts when its isolation cuts off
 * more customers than the configured number or any priority customer
 * (hospital, school, ...); a supervisor or leader of the agency approves.
 *
 * Its status moves one step at a time: planned → in_progress →
 * valves_closed → repaired → restored → closed, or to cancelled from any
 * open step. Closing or cancelling the order ends its isolation in the same
 * transaction. What the crew must do and whom to tell (valves in order,
 * customers) is the isolation's answer, read live.
 */
#include "pipes_internal.h"

#include "../core/log.h"
#include "internal.h"
#include "recommend.h"

#include <sqlite3.h>
#include <string.h>

static const char *const steps[] = {"planned",  "in_progress", "valves_closed", "repaired",
                                    "restored", "closed",      "cancelled"};

static int step_index(const char *s)
{
    for (size_t k = 0; s && k < G_N_ELEMENTS(steps); k++)
        if (strcmp(s, steps[k]) == 0)
            return (int)k;
    return -1;
}

static int order_open(const pipes__order *o)
{
    return step_index(o->status) < 5;
}

void pipes__order_free(pipes__order *o)
{
    if (!o)
        return;
    g_free(o->agency);
    g_free(o->crew);
    g_free(o->status);
    g_free(o->approved_by);
    g_free(o->incident);
    g_free(o->notes);
    g_free(o->actor);
    g_free(o);
}

static pipes__order *order_copy(const pipes__order *o)
{
    pipes__order *c = g_memdup2(o, sizeof *o);
    c->agency = g_strdup(o->agency);
    c->crew = g_strdup(o->crew);
    c->status = g_strdup(o->status);
    c->approved_by = g_strdup(o->approved_by);
    c->incident = g_strdup(o->incident);
    c->notes = g_strdup(o->notes);
    c->actor = g_strdup(o->actor);
    return c;
}

int pipes__order_for_isolation(disp_pipes *p, int64_t isolation, pipes__order **out)
{
    GHashTableIter it;
    gpointer v;
    *out = NULL;
    g_hash_table_iter_init(&it, p->orders);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        pipes__order *o = v;
        if (o->isolation == isolation && (!*out || o->id > (*out)->id))
            *out = o;
    }
    return *out ? 0 : CORE_ENOTFOUND;
}

const char *disp_repair_agency(const disp_pipes *p, int64_t id)
{
    pipes__order *o = g_hash_table_lookup(p->orders, &id);
    return o ? o->agency : NULL;
}

int pipes__orders_load(disp_pipes *p, sqlite3 *db)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(
            db,
            "SELECT id, isolation, agency, crew, status, needs_approval, approved_by,"
            " approved_ms, incident, notes, actor, created_ms, updated_ms"
            " FROM repair_orders ORDER BY id",
            -1, &s, NULL) != SQLITE_OK)
        return CORE_EDB;
    while (sqlite3_step(s) == SQLITE_ROW) {
        pipes__order *o = g_new0(pipes__order, 1);
        o->id = sqlite3_column_int64(s, 0);
        o->isolation = sqlite3_column_int64(s, 1);
        o->agency = g_strdup(disp__col_text(s, 2));
        o->crew = g_strdup(disp__col_text(s, 3));
        o->status = g_strdup(disp__col_text(s, 4));
        o->needs_approval = sqlite3_column_int(s, 5);
        o->approved_by = g_strdup(disp__col_text(s, 6));
        o->approved_ms = sqlite3_column_int64(s, 7);
        o->incident = g_strdup(disp__col_text(s, 8));
        o->notes = g_strdup(disp__col_text(s, 9));
        o->actor = g_strdup(disp__col_text(s, 10));
        o->created_ms = sqlite3_column_int64(s, 11);
        o->updated_ms = sqlite3_column_int64(s, 12);
        g_hash_table_replace(p->orders, &o->id, o);
    }
    sqlite3_finalize(s);
    return 0;
}

/* ---- reads ---- */

static json_t *crew_json(disp_pipes *p, const char *crew)
{
    if (!crew || !g_str_has_prefix(crew, "U-") || !p->d.units)
        return json_null();
    const disp_unit_info *u = disp_units_get(p->d.units, g_ascii_strtoll(crew + 2, NULL, 10));
    if (!u)
        return json_pack("{ss}", "id", crew);
    return json_pack("{ss ss ss ss}", "id", crew, "call_sign", u->call_sign, "kind", u->kind,
                     "status", u->status);
}

/* The order's own fields (safe in the writer: reads only the order). */
static json_t *order_brief(const pipes__order *o)
{
    char created[32], updated[32], approved[32];
    core_iso8601(o->created_ms, created, sizeof created);
    core_iso8601(o->updated_ms, updated, sizeof updated);
    core_iso8601(o->approved_ms, approved, sizeof approved);
    json_t *j =
        json_pack("{sI sI ss ss ss sb ss ss ss ss ss}", "id", (json_int_t)o->id, "isolation",
                  (json_int_t)o->isolation, "agency", o->agency, "crew_id", o->crew, "status",
                  o->status, "needs_approval", o->needs_approval, "incident", o->incident, "notes",
                  o->notes, "by", o->actor, "created_at", created, "updated_at", updated);
    json_object_set_new(j, "approved_by",
                        *o->approved_by ? json_string(o->approved_by) : json_null());
    json_object_set_new(j, "approved_at", o->approved_ms ? json_string(approved) : json_null());
    return j;
}

static json_t *next_steps(const pipes__order *o)
{
    json_t *a = json_array();
    int k = step_index(o->status);
    if (k >= 0 && k < 5) {
        json_array_append_new(a, json_string(steps[k + 1]));
        json_array_append_new(a, json_string("cancelled"));
    }
    return a;
}

static json_t *order_json(disp_pipes *p, const pipes__order *o, int detail)
{
    json_t *j = order_brief(o);
    json_object_set_new(j, "crew", crew_json(p, o->crew));
    json_object_set_new(j, "next", next_steps(o));
    json_object_set_new(j, "awaiting_approval",
                        json_boolean(o->needs_approval && !*o->approved_by && order_open(o)));
    json_t *iso = disp_isolation_json(p, o->isolation, detail);
    if (iso && !detail) {
        json_t *ans = json_object_get(iso, "answer");
        json_t *sum = json_object();
        json_object_set(sum, "pipe", json_object_get(iso, "pipe"));
        json_object_set(sum, "network", json_object_get(iso, "network"));
        json_object_set(sum, "customers",
                        json_object_get(json_object_get(ans, "customers"), "count"));
        json_object_set_new(j, "summary", sum);
        json_decref(iso);
    } else if (iso) {
        json_object_set_new(j, "isolation_detail", iso);
    }
    return j;
}

json_t *disp_repair_json(disp_pipes *p, int64_t id)
{
    pipes__order *o = g_hash_table_lookup(p->orders, &id);
    return o ? json_pack("{so}", "order", order_json(p, o, 1)) : NULL;
}

static gint by_id_desc(gconstpointer a, gconstpointer b)
{
    int64_t x = (*(pipes__order *const *)a)->id, y = (*(pipes__order *const *)b)->id;
    return x < y ? 1 : x > y ? -1 : 0;
}

json_t *disp_repairs_json(disp_pipes *p, const core_session *s, int all)
{
    GPtrArray *list = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, p->orders);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if ((all || order_open(v)) &&
            (!s || core_may(s, CORE_ACT_PIPES_READ, ((pipes__order *)v)->agency)))
            g_ptr_array_add(list, v);
    g_ptr_array_sort(list, by_id_desc);
    json_t *out = json_array();
    for (guint k = 0; k < list->len && k < 500; k++)
        json_array_append_new(out, order_json(p, list->pdata[k], 0));
    g_ptr_array_unref(list);
    return json_pack("{so}", "orders", out);
}

/* ---- writes ---- */

static int order_write(core_txn *txn, pipes__op *op, const char *event)
{
    pipes__order *o = op->order;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT OR REPLACE INTO repair_orders (id, isolation, agency, crew, status,"
             " needs_approval, approved_by, approved_ms, incident, notes, actor, created_ms,"
             " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!s)
        return CORE_EDB;
    if (o->id)
        sqlite3_bind_int64(s, 1, o->id);
    else
        sqlite3_bind_null(s, 1);
    sqlite3_bind_int64(s, 2, o->isolation);
    sqlite3_bind_text(s, 3, o->agency, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, o->crew, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, o->status, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 6, o->needs_approval);
    sqlite3_bind_text(s, 7, o->approved_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, o->approved_ms);
    sqlite3_bind_text(s, 9, o->incident, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, o->notes, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, o->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 12, o->created_ms);
    sqlite3_bind_int64(s, 13, o->updated_ms);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    if (!o->id)
        o->id = sqlite3_last_insert_rowid(core_txn_db(txn));
    /* Closing or cancelling the order ends its isolation with it. */
    const char *ends = strcmp(o->status, "closed") == 0      ? "done"
                       : strcmp(o->status, "cancelled") == 0 ? "cancelled"
                                                             : NULL;
    if (ends) {
        sqlite3_stmt *u = core_txn_prepare(
            txn, "UPDATE pipe_isolations SET status = ?, updated_ms = ? WHERE id = ?");
        if (!u)
            return CORE_EDB;
        sqlite3_bind_text(u, 1, ends, -1, SQLITE_STATIC);
        sqlite3_bind_int64(u, 2, o->updated_ms);
        sqlite3_bind_int64(u, 3, o->isolation);
        if ((rc = core_txn_check(txn, sqlite3_step(u))))
            return rc;
    }
    json_t *data = order_brief(o);
    if (op->summary)
        json_object_set(data, "summary", op->summary);
    char subject[40];
    g_snprintf(subject, sizeof subject, "repair-order/%" G_GINT64_FORMAT, o->id);
    json_t *timeline = *o->incident ? json_deep_copy(data) : NULL;
    rc = pipes__emit(txn, op, event, subject, o->agency, data);
    if (!rc && timeline) {
        json_object_set_new(timeline, "event", json_string(event));
        return pipes__timeline(txn, op, o->incident, timeline);
    }
    json_decref(timeline);
    return rc;
}

static int created_write(core_txn *txn, pipes__op *op)
{
    return order_write(txn, op, "repair.created");
}
static int status_write(core_txn *txn, pipes__op *op)
{
    return order_write(txn, op, "repair.status");
}
static int approved_write(core_txn *txn, pipes__op *op)
{
    return order_write(txn, op, "repair.approved");
}

static void order_apply(pipes__op *op)
{
    pipes__order *o = op->order;
    op->order = NULL;
    g_hash_table_replace(op->p->orders, &o->id, o);
    const char *ends = strcmp(o->status, "closed") == 0      ? "done"
                       : strcmp(o->status, "cancelled") == 0 ? "cancelled"
                                                             : NULL;
    pipes__iso *i = pipes__iso_get(op->p, o->isolation);
    if (ends && i) {
        g_free(i->status);
        i->status = g_strdup(ends);
        i->updated_ms = o->updated_ms;
    }
    op->result = json_pack("{so}", "order", order_json(op->p, o, 1));
}

static int order_queue(disp_pipes *p, pipes__order *o, int (*write)(core_txn *, pipes__op *),
                       json_t *summary, const char *actor, const char *source, disp_json_done done,
                       void *arg)
{
    pipes__op *op = pipes__op_new(p, actor, source, done, arg);
    op->order = o;
    op->summary = summary;
    op->write = write;
    op->apply = order_apply;
    return pipes__op_run(op);
}

/* The nearest available crew of the agency's kind by road, as "U-n", or NULL. */
static char *nearest_crew(disp_pipes *p, const pipes__iso *i, const char *agency, char *eta,
                          size_t eta_len)
{
    if (!p->d.roads || !p->d.units || !p->d.avl)
        return NULL;
    const char *kind = strcmp(agency, "gas") == 0 ? "gas_crew" : "water_crew";
    json_t *inc = json_pack("{ss ss ss si s{sf sf} ss s[] s[]}", "id", "I-0", "type",
                            "utility/repair", "family", "utility", "priority", 3, "location", "lon",
                            i->lon, "lat", i->lat, "agency", agency, "joint", "districts");
    json_t *plan =
        json_pack("{ss s[{ss si}]}", "name", "repair crew", "slots", "kind", kind, "count", 1);
    const char *code = NULL, *message = NULL;
    json_t *rec = disp_recommend(p->d.roads, p->d.units, p->d.avl, p->d.incidents, inc, plan, &code,
                                 &message);
    char *crew = NULL;
    size_t k;
    json_t *u;
    json_array_foreach(json_object_get(json_array_get(json_object_get(rec, "slots"), 0), "units"),
                       k, u)
    {
        if (json_is_true(json_object_get(u, "recommended")) &&
            !json_is_true(json_object_get(u, "diversion"))) {
            crew = g_strdup(json_string_value(json_object_get(u, "id")));
            g_snprintf(eta, eta_len, "%" JSON_INTEGER_FORMAT,
                       json_integer_value(json_object_get(u, "eta_ms")) / 1000);
            break;
        }
    }
    json_decref(rec);
    json_decref(plan);
    json_decref(inc);
    return crew;
}

int disp_repair_create(disp_pipes *p, const json_t *body, const char *actor, const char *source,
                       disp_json_done done, void *arg, char **field, char **message)
{
    json_t *jiso = json_object_get(body, "isolation"), *jcrew = json_object_get(body, "crew"),
           *notes = json_object_get(body, "notes");
    if (!json_is_integer(jiso))
        return pipes__fail(field, message, "isolation", "an isolation id (a number)");
    pipes__iso *i = pipes__iso_get(p, json_integer_value(jiso));
    if (!i)
        return pipes__fail(field, message, "isolation", "no isolation %" JSON_INTEGER_FORMAT,
                           json_integer_value(jiso));
    if (!pipes__iso_open(i))
        return pipes__fail(field, message, "isolation", "the isolation is %s", i->status);
    pipes__order *have = NULL;
    if (pipes__order_for_isolation(p, i->id, &have) == 0 && order_open(have))
        return pipes__fail(field, message, "isolation",
                           "repair order %" G_GINT64_FORMAT " already works on it", have->id);
    if (notes && (!json_is_string(notes) || json_string_length(notes) > 2000))
        return pipes__fail(field, message, "notes", "text of up to 2000 bytes");
    const char *agency = pipes__iso_agency(p, i);
    char *crew = NULL, eta[32] = "";
    if (jcrew && !json_is_null(jcrew)) {
        const char *c = json_string_value(jcrew);
        const disp_unit_info *u = c && g_str_has_prefix(c, "U-") && p->d.units
                                      ? disp_units_get(p->d.units, g_ascii_strtoll(c + 2, NULL, 10))
                                      : NULL;
        if (!u)
            return pipes__fail(field, message, "crew", "no unit %s", c ? c : "(not a string)");
        if (strcmp(u->agency, agency) != 0)
            return pipes__fail(field, message, "crew", "%s belongs to %s, the order to %s", c,
                               u->agency, agency);
        crew = g_strdup(c);
    } else {
        crew = nearest_crew(p, i, agency, eta, sizeof eta);
    }
    gis_iso_result r;
    int needs = 0;
    if (pipes__iso_answer(p, i, &r) == 0)
        needs = r.customers > (size_t)p->d.approval_customers || r.priority_customers > 0;
    json_t *summary = json_pack("{sI sI sb ss*}", "customers", (json_int_t)r.customers, "priority",
                                (json_int_t)r.priority_customers, "needs_approval", needs,
                                "crew_eta_s", *eta ? eta : NULL);
    gis_iso_result_clear(&r);
    pipes__order *o = g_new0(pipes__order, 1);
    o->isolation = i->id;
    o->agency = g_strdup(agency);
    o->crew = crew ? crew : g_strdup("");
    o->status = g_strdup("planned");
    o->needs_approval = needs;
    o->approved_by = g_strdup("");
    o->incident = g_strdup(i->incident);
    o->notes = g_strdup(json_is_string(notes) ? json_string_value(notes) : "");
    o->actor = g_strdup(actor);
    o->created_ms = o->updated_ms = core_now_ms();
    return order_queue(p, o, created_write, summary, actor, source, done, arg);
}

int disp_repair_status(disp_pipes *p, int64_t id, const json_t *body, const char *actor,
                       const char *source, disp_json_done done, void *arg, char **field,
                       char **message)
{
    pipes__order *cur = g_hash_table_lookup(p->orders, &id);
    if (!cur)
        return CORE_ENOTFOUND;
    const char *next = json_string_value(json_object_get(body, "status"));
    int from = step_index(cur->status), to = step_index(next);
    if (to < 0)
        return pipes__fail(field, message, "status",
                           "one of planned, in_progress, valves_closed, repaired, restored, "
                           "closed, cancelled");
    if (from >= 5 || (to != from + 1 && to != 6))
        return pipes__fail(field, message, "status", "an order that is %s cannot become %s",
                           cur->status, next);
    if (to == 1 && cur->needs_approval && !*cur->approved_by)
        return pipes__fail(field, message, "status",
                           "the order needs approval before work starts (it cuts off many "
                           "customers or a priority customer)");
    pipes__order *o = order_copy(cur);
    g_free(o->status);
    o->status = g_strdup(next);
    o->updated_ms = core_now_ms();
    return order_queue(p, o, status_write, json_pack("{ss}", "from", cur->status), actor, source,
                       done, arg);
}

int disp_repair_approve(disp_pipes *p, int64_t id, const char *actor, const char *source,
                        disp_json_done done, void *arg, char **field, char **message)
{
    pipes__order *cur = g_hash_table_lookup(p->orders, &id);
    if (!cur)
        return CORE_ENOTFOUND;
    if (!cur->needs_approval)
        return pipes__fail(field, message, "order", "this order needs no approval");
    if (*cur->approved_by)
        return pipes__fail(field, message, "order", "already approved by %s", cur->approved_by);
    if (!order_open(cur))
        return pipes__fail(field, message, "order", "the order is %s", cur->status);
    pipes__order *o = order_copy(cur);
    g_free(o->approved_by);
    o->approved_by = g_strdup(actor);
    o->approved_ms = o->updated_ms = core_now_ms();
    return order_queue(p, o, approved_write, NULL, actor, source, done, arg);
}

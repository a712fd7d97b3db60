/*
 * networks.c — the pipe networks as the server holds them: listing, layers
 * for the map, valve states as crews find them, and changes to the network
 * itself (a valve installed or taken out, a pipe abandoned), kept in the
 * store and applied again at start (pipes.h).
 *
 * A change to the network recomputes its segments at once (gis/pipes.h);
 * at start the stored changes are applied in order with the recomputation
 * held until the last. Loop thread.
 */
#include "pipes_internal.h"

#include "../core/log.h"
#include "internal.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>

/* ---- networks ---- */

int pipes__net_index(const disp_pipes *p, const char *name)
{
    for (guint i = 0; name && i < p->nets->len; i++) {
        pipes__net *n = p->nets->pdata[i];
        if (strcmp(gis_pipenet_name(n->net), name) == 0)
            return (int)i;
    }
    return -1;
}

pipes__net *pipes__net_at(const disp_pipes *p, int i)
{
    return p->nets->pdata[i];
}

size_t disp_pipes_network_count(const disp_pipes *p)
{
    return p ? p->nets->len : 0;
}

const char *disp_pipes_agency(const disp_pipes *p, const char *network)
{
    int i = pipes__net_index(p, network);
    return i < 0 ? NULL : pipes__net_at(p, i)->agency;
}

json_t *disp_pipes_networks_json(disp_pipes *p, const core_session *s)
{
    json_t *list = json_array();
    for (guint i = 0; i < p->nets->len; i++) {
        pipes__net *n = pipes__net_at(p, (int)i);
        if (s && !core_may(s, CORE_ACT_PIPES_READ, n->agency))
            continue;
        double b[4];
        gis_pipenet_bbox(n->net, b);
        json_array_append_new(
            list, json_pack("{ss ss ss sI sI sI sI sI s[ffff]}", "name", gis_pipenet_name(n->net),
                            "utility", gis_pipenet_utility(n->net), "agency", n->agency, "nodes",
                            (json_int_t)gis_pipenet_node_count(n->net), "links",
                            (json_int_t)gis_pipenet_link_count(n->net), "valves",
                            (json_int_t)gis_pipenet_valve_count(n->net), "customers",
                            (json_int_t)gis_pipenet_customer_count(n->net), "segments",
                            (json_int_t)gis_pipenet_segment_count(n->net), "bbox", b[0], b[1], b[2],
                            b[3]));
    }
    return json_pack("{so}", "networks", list);
}

json_t *disp_pipes_segments_json(disp_pipes *p, const char *network)
{
    int i = pipes__net_index(p, network);
    return i < 0 ? NULL : gis_pipenet_segments_json(pipes__net_at(p, i)->net);
}

static int in_bbox(const double *b, double x, double y)
{
    return !b || (x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]);
}

static json_t *feature(json_t *geometry, json_t *props)
{
    return json_pack("{ss so so}", "type", "Feature", "geometry", geometry, "properties", props);
}

static json_t *pt(double x, double y)
{
    return json_pack("{ss s[ff]}", "type", "Point", "coordinates", x, y);
}

static void layer_links(gis_pipenet *g, const double *bbox, json_t *fs)
{
    for (size_t j = 0; j < gis_pipenet_link_count(g); j++) {
        const gis_pipe_link *l = gis_pipenet_link(g, j);
        int hit = 0;
        for (size_t k = 0; k < l->nvert && !hit; k++)
            hit = in_bbox(bbox, l->xy[2 * k], l->xy[2 * k + 1]);
        if (l->removed || !hit)
            continue;
        json_t *c = json_array();
        for (size_t k = 0; k < l->nvert; k++)
            json_array_append_new(c, json_pack("[ff]", l->xy[2 * k], l->xy[2 * k + 1]));
        json_array_append_new(
            fs, feature(json_pack("{ss so}", "type", "LineString", "coordinates", c),
                        json_pack("{ss ss ss ss sf sf si}", "id", l->id, "kind",
                                  gis_link_kind_name(l->kind), "from",
                                  gis_pipenet_node(g, (size_t)l->from)->id, "to",
                                  gis_pipenet_node(g, (size_t)l->to)->id, "length_m",
                                  round(l->length_m * 10) / 10, "diameter_mm", l->diameter_mm,
                                  "segment", gis_pipenet_link_segment(g, j))));
    }
}

json_t *disp_pipes_layer_json(disp_pipes *p, const char *network, const char *layer,
                              const double *bbox, int *rc)
{
    int i = pipes__net_index(p, network);
    *rc = 0;
    if (i < 0) {
        *rc = CORE_ENOTFOUND;
        return NULL;
    }
    gis_pipenet *g = pipes__net_at(p, i)->net;
    json_t *fs = json_array();
    if (strcmp(layer, "links") == 0) {
        layer_links(g, bbox, fs);
    } else if (strcmp(layer, "valves") == 0) {
        for (size_t v = 0; v < gis_pipenet_valve_count(g); v++) {
            const gis_pipe_valve *va = gis_pipenet_valve(g, v);
            if (!va->removed && in_bbox(bbox, va->x, va->y))
                json_array_append_new(
                    fs, feature(pt(va->x, va->y),
                                json_pack("{ss ss ss ss}", "id", va->id, "link",
                                          gis_pipenet_link(g, (size_t)va->link)->id, "node",
                                          gis_pipenet_node(g, (size_t)va->node)->id, "state",
                                          gis_valve_state_name(va->state))));
        }
    } else if (strcmp(layer, "nodes") == 0) {
        for (size_t k = 0; k < gis_pipenet_node_count(g); k++) {
            const gis_pipe_node *nd = gis_pipenet_node(g, k);
            if (in_bbox(bbox, nd->x, nd->y))
                json_array_append_new(
                    fs, feature(pt(nd->x, nd->y), json_pack("{ss ss si}", "id", nd->id, "kind",
                                                            gis_node_kind_name(nd->kind), "segment",
                                                            gis_pipenet_node_segment(g, k))));
        }
    } else if (strcmp(layer, "customers") == 0) {
        for (size_t k = 0; k < gis_pipenet_customer_count(g); k++) {
            const gis_pipe_customer *c = gis_pipenet_customer(g, k);
            if (in_bbox(bbox, c->x, c->y))
                json_array_append_new(
                    fs,
                    feature(
                        pt(c->x, c->y),
                        json_pack("{ss ss ss si sb ss* ss*}", "id", c->id, "name", c->name, "kind",
                                  c->kind, "units", c->units, "priority", c->priority, "link",
                                  c->link >= 0 ? gis_pipenet_link(g, (size_t)c->link)->id : NULL,
                                  "node",
                                  c->node >= 0 ? gis_pipenet_node(g, (size_t)c->node)->id : NULL)));
        }
    } else {
        json_decref(fs);
        *rc = CORE_EINVAL;
        return NULL;
    }
    return json_pack("{ss so}", "type", "FeatureCollection", "features", fs);
}

/* ---- valve states ---- */

static int valve_write(core_txn *txn, pipes__op *op)
{
    sqlite3_stmt *s = core_txn_prepare(
        txn,
        "INSERT OR REPLACE INTO pipe_valve_states (network, valve, state, reason, actor, at_ms)"
        " VALUES (?, ?, ?, ?, ?, ?)");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_text(s, 1, op->network, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, op->valve, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, op->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, op->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, op->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, core_now_ms());
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    op->result = json_pack("{s{ss ss ss ss}}", "valve", "network", op->network, "id", op->valve,
                           "state", op->state, "reason", op->reason);
    char subject[300];
    g_snprintf(subject, sizeof subject, "valve/%s/%s", op->network, op->valve);
    return pipes__emit(txn, op, "pipes.valve", subject, disp_pipes_agency(op->p, op->network),
                       json_deep_copy(json_object_get(op->result, "valve")));
}

static void valve_apply(pipes__op *op)
{
    int n = pipes__net_index(op->p, op->network);
    if (n < 0)
        return;
    gis_pipenet *g = pipes__net_at(op->p, n)->net;
    int v = gis_pipenet_find_valve(g, op->valve);
    if (v >= 0)
        gis_pipenet_set_valve_state(g, (size_t)v, gis_valve_state_parse(op->state));
}

int disp_pipes_valve_set(disp_pipes *p, const char *network, const char *valve, const json_t *body,
                         const char *actor, const char *source, disp_json_done done, void *arg,
                         char **field, char **message)
{
    int n = pipes__net_index(p, network);
    if (n < 0 || gis_pipenet_find_valve(pipes__net_at(p, n)->net, valve) < 0)
        return CORE_ENOTFOUND;
    const char *state = json_string_value(json_object_get(body, "state"));
    json_t *reason = json_object_get(body, "reason");
    if (gis_valve_state_parse(state) < 0)
        return pipes__fail(field, message, "state", "open, closed or inoperable");
    if (reason && (!json_is_string(reason) || json_string_length(reason) > 500))
        return pipes__fail(field, message, "reason", "text of up to 500 bytes");
    pipes__op *op = pipes__op_new(p, actor, source, done, arg);
    op->network = g_strdup(network);
    op->valve = g_strdup(valve);
    op->state = g_strdup(state);
    op->reason = g_strdup(json_is_string(reason) ? json_string_value(reason) : "");
    op->write = valve_write;
    op->apply = valve_apply;
    return pipes__op_run(op);
}

/* ---- changes to the network itself ---- */

/* Applies one change; 0 or CORE_ENOTFOUND / CORE_EEXISTS / CORE_EINVAL. */
static int apply_edit(gis_pipenet *g, const char *kind, const char *element, const char *link,
                      const char *node, char **err)
{
    if (strcmp(kind, "valve.added") == 0) {
        int rc = gis_pipenet_add_valve(g, element, link, node, GIS_VALVE_OPEN, err);
        return rc < 0 ? rc : 0;
    }
    if (strcmp(kind, "valve.removed") == 0) {
        int v = gis_pipenet_find_valve(g, element);
        return v < 0 || gis_pipenet_valve(g, (size_t)v)->removed
                   ? CORE_ENOTFOUND
                   : gis_pipenet_remove_valve(g, (size_t)v);
    }
    if (strcmp(kind, "link.removed") == 0) {
        int l = gis_pipenet_find_link(g, element);
        return l < 0 || gis_pipenet_link(g, (size_t)l)->removed
                   ? CORE_ENOTFOUND
                   : gis_pipenet_remove_link(g, (size_t)l);
    }
    return CORE_EINVAL;
}

static int edit_write(core_txn *txn, pipes__op *op)
{
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT INTO pipe_network_edits (network, kind, element, link, node, actor, at_ms)"
             " VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_text(s, 1, op->network, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, op->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, op->valve, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, op->link ? op->link : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, op->node ? op->node : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, op->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, core_now_ms());
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    json_t *data =
        json_pack("{ss ss ss}", "network", op->network, "change", op->state, "id", op->valve);
    if (op->link)
        json_object_set_new(data, "link", json_string(op->link));
    if (op->node)
        json_object_set_new(data, "node", json_string(op->node));
    char subject[300];
    g_snprintf(subject, sizeof subject, "network/%s", op->network);
    return pipes__emit(txn, op, "pipes.network.changed", subject,
                       disp_pipes_agency(op->p, op->network), data);
}

static void edit_apply(pipes__op *op)
{
    int n = pipes__net_index(op->p, op->network);
    gis_pipenet *g = pipes__net_at(op->p, n)->net;
    char *err = NULL;
    int64_t t0 = core_mono_us();
    int rc = apply_edit(g, op->state, op->valve, op->link, op->node, &err);
    if (rc)
        log_error("pipes.edit", "network=%s change=%s id=%s error=\"%s\"", op->network, op->state,
                  op->valve, err ? err : core_strerror(rc));
    g_free(err);
    op->result =
        json_pack("{s{ss ss ss sI sI}}", "change", "network", op->network, "change", op->state,
                  "id", op->valve, "segments", (json_int_t)gis_pipenet_segment_count(g), "ms",
                  (json_int_t)((core_mono_us() - t0) / 1000));
}

int disp_pipes_edit(disp_pipes *p, const char *network, const char *change, const json_t *body,
                    const char *element, const char *actor, const char *source, disp_json_done done,
                    void *arg, char **field, char **message)
{
    int n = pipes__net_index(p, network);
    if (n < 0)
        return CORE_ENOTFOUND;
    gis_pipenet *g = pipes__net_at(p, n)->net;
    pipes__op *op = pipes__op_new(p, actor, source, done, arg);
    op->network = g_strdup(network);
    op->state = g_strdup(change);
    int rc = 0;
    if (strcmp(change, "valve.added") == 0) {
        const char *link = json_string_value(json_object_get(body, "link"));
        const char *node = json_string_value(json_object_get(body, "node"));
        const char *id = json_string_value(json_object_get(body, "id"));
        int li = gis_pipenet_find_link(g, link);
        int ni = gis_pipenet_find_node(g, node);
        char auto_id[40];
        if (!id) {
            g_snprintf(auto_id, sizeof auto_id, "V-new-%zu", gis_pipenet_valve_count(g) + 1);
            id = auto_id;
        }
        if (li < 0 || gis_pipenet_link(g, (size_t)li)->removed)
            rc = pipes__fail(field, message, "link", "no pipe %s in network %s", link ? link : "",
                             network);
        else if (ni < 0 || (gis_pipenet_link(g, (size_t)li)->from != ni &&
                            gis_pipenet_link(g, (size_t)li)->to != ni))
            rc = pipes__fail(field, message, "node", "an end node of pipe %s", link);
        else if (strlen(id) > 100 || gis_pipenet_find_valve(g, id) >= 0)
            rc = pipes__fail(field, message, "id", "a new valve id of up to 100 bytes");
        op->valve = g_strdup(id);
        op->link = g_strdup(link);
        op->node = g_strdup(node);
    } else if (strcmp(change, "valve.removed") == 0) {
        int v = gis_pipenet_find_valve(g, element);
        if (v < 0 || gis_pipenet_valve(g, (size_t)v)->removed)
            rc = CORE_ENOTFOUND;
        op->valve = g_strdup(element);
    } else {
        int l = gis_pipenet_find_link(g, element);
        if (l < 0 || gis_pipenet_link(g, (size_t)l)->removed)
            rc = CORE_ENOTFOUND;
        op->valve = g_strdup(element);
    }
    if (rc) {
        pipes__op_free(op);
        return rc;
    }
    op->write = edit_write;
    op->apply = edit_apply;
    return pipes__op_run(op);
}

/* ---- start ---- */

void pipes__networks_load(disp_pipes *p, sqlite3 *db)
{
    sqlite3_stmt *s;
    for (guint k = 0; k < p->nets->len; k++)
        gis_pipenet_hold(pipes__net_at(p, (int)k)->net, 1);
    if (sqlite3_prepare_v2(db,
                           "SELECT network, kind, element, link, node FROM pipe_network_edits"
                           " ORDER BY id",
                           -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            int n = pipes__net_index(p, disp__col_text(s, 0));
            char *err = NULL;
            int rc = n < 0 ? CORE_ENOTFOUND
                           : apply_edit(pipes__net_at(p, n)->net, disp__col_text(s, 1),
                                        disp__col_text(s, 2), disp__col_text(s, 3),
                                        disp__col_text(s, 4), &err);
            if (rc)
                log_warn("pipes.edit", "network=%s change=%s id=%s skipped=\"%s\"",
                         disp__col_text(s, 0), disp__col_text(s, 1), disp__col_text(s, 2),
                         err ? err : core_strerror(rc));
            g_free(err);
        }
        sqlite3_finalize(s);
    }
    for (guint k = 0; k < p->nets->len; k++)
        gis_pipenet_hold(pipes__net_at(p, (int)k)->net, 0);
    if (sqlite3_prepare_v2(db, "SELECT network, valve, state FROM pipe_valve_states", -1, &s,
                           NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            int n = pipes__net_index(p, disp__col_text(s, 0));
            gis_pipenet *g = n < 0 ? NULL : pipes__net_at(p, n)->net;
            int v = g ? gis_pipenet_find_valve(g, disp__col_text(s, 1)) : -1;
            if (v >= 0)
                gis_pipenet_set_valve_state(g, (size_t)v,
                                            gis_valve_state_parse(disp__col_text(s, 2)));
        }
        sqlite3_finalize(s);
    }
}

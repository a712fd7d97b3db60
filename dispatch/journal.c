/*
 * journal.c — the duty journal: validated entries, stored with their event.
 *
 * An entry row and its "journal.created" event are written in one store
 * transaction, so the feed never shows an entry the store does not have.
 */
#include "dispatch.h"

#include "../core/core.h"

#include <glib.h>
#include <string.h>

static const char *const kinds[] = {"note", "handover", "instruction"};

static const core_migration migrations[] = {
    {"dispatch", 1,
     "CREATE TABLE journal ("
     "  id INTEGER PRIMARY KEY,"
     "  at_ms INTEGER NOT NULL,"
     "  author TEXT NOT NULL,"
     "  kind TEXT NOT NULL,"
     "  text TEXT NOT NULL,"
     "  seq INTEGER NOT NULL)"},
    {"dispatch", 2, "ALTER TABLE journal ADD COLUMN agency TEXT NOT NULL DEFAULT 'command'"},
};

void disp_journal_register(core_store *st)
{
    core_store_add_migrations(st, migrations, G_N_ELEMENTS(migrations));
}

typedef struct {
    char *kind, *text, *author, *source, *agency;
    char **agencies; /* visible agencies for reads, NULL: all */
    int64_t at_ms, id, before;
    int limit;
    json_t *result;
    int rc;
    disp_json_done done;
    void *arg;
} jop;

static void jop_free(jop *op)
{
    g_free(op->kind);
    g_free(op->text);
    g_free(op->author);
    g_free(op->source);
    g_free(op->agency);
    g_strfreev(op->agencies);
    json_decref(op->result);
    g_free(op);
}

static json_t *entry_json(int64_t id, int64_t seq, int64_t at_ms, const char *kind,
                          const char *text, const char *author, const char *agency)
{
    char at[32];
    core_iso8601(at_ms, at, sizeof at);
    return json_pack("{sIsIssssssssss}", "id", (json_int_t)id, "seq", (json_int_t)seq, "at", at,
                     "kind", kind, "text", text, "author", author, "agency", agency);
}

static int add_write(core_txn *txn, void *arg)
{
    jop *op = arg;
    sqlite3_stmt *s = core_txn_prepare(txn, "INSERT INTO journal (at_ms, author, kind, text, seq,"
                                            " agency) VALUES (?, ?, ?, ?, 0, ?)");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, op->at_ms);
    sqlite3_bind_text(s, 2, op->author, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, op->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, op->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, op->agency, -1, SQLITE_STATIC);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    op->id = sqlite3_last_insert_rowid(core_txn_db(txn));
    char subject[32];
    g_snprintf(subject, sizeof subject, "journal/%" G_GINT64_FORMAT, op->id);
    core_event *ev = core_event_new("journal.created", op->author, subject,
                                    json_pack("{sIssssss}", "id", (json_int_t)op->id, "kind",
                                              op->kind, "text", op->text, "agency", op->agency));
    ev->at_ms = op->at_ms;
    core_event_set_source(ev, op->source);
    if ((rc = core_txn_emit(txn, ev)))
        return rc;
    s = core_txn_prepare(txn, "UPDATE journal SET seq = ? WHERE id = ?");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, ev->seq);
    sqlite3_bind_int64(s, 2, op->id);
    return core_txn_check(txn, sqlite3_step(s));
}

static void add_done(int rc, GPtrArray *events, void *arg)
{
    jop *op = arg;
    json_t *entry = NULL;
    if (!rc) {
        core_event *ev = events->pdata[0];
        entry = entry_json(op->id, ev->seq, op->at_ms, op->kind, op->text, op->author, op->agency);
    }
    op->done(rc, entry, op->arg);
    jop_free(op);
}

int disp_journal_add(core_store *st, const json_t *body, const char *actor, const char *agency,
                     const char *source, disp_json_done done, void *arg, char **field,
                     char **message)
{
    json_t *text = json_object_get(body, "text");
    json_t *kind = json_object_get(body, "kind");
    *field = *message = NULL;
    if (!json_is_string(text)) {
        *field = g_strdup("text");
        *message = g_strdup("\"text\" is required and must be a string");
        return CORE_EINVAL;
    }
    char *clean = g_strstrip(g_strdup(json_string_value(text)));
    glong chars = g_utf8_strlen(clean, -1);
    gboolean has_nul = strlen(json_string_value(text)) != json_string_length(text);
    if (chars == 0 || chars > DISP_JOURNAL_TEXT_MAX || has_nul) {
        g_free(clean);
        *field = g_strdup("text");
        *message = g_strdup_printf("\"text\" must have 1 to %d characters and no NUL",
                                   DISP_JOURNAL_TEXT_MAX);
        return CORE_EINVAL;
    }
    const char *k = "note";
    if (kind) {
        k = json_is_string(kind) ? json_string_value(kind) : "";
        gboolean known = FALSE;
        for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++)
            known |= strcmp(k, kinds[i]) == 0;
        if (!known) {
            g_free(clean);
            *field = g_strdup("kind");
            *message = g_strdup("\"kind\" must be one of note, handover, instruction");
            return CORE_EINVAL;
        }
    }
    jop *op = g_new0(jop, 1);
    op->text = clean;
    op->kind = g_strdup(k);
    op->author = g_strdup(actor);
    op->source = g_strdup(source);
    op->agency = g_strdup(agency);
    op->at_ms = core_now_ms();
    op->done = done;
    op->arg = arg;
    int rc = core_store_write(st, add_write, add_done, op);
    if (rc)
        jop_free(op);
    return rc;
}

static json_t *row_json(sqlite3_stmt *s)
{
    return entry_json(
        sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
        (const char *)sqlite3_column_text(s, 3), (const char *)sqlite3_column_text(s, 4),
        (const char *)sqlite3_column_text(s, 5), (const char *)sqlite3_column_text(s, 6));
}

/* " AND agency IN (?, ?)" for the visible agencies, binding from index first. */
static char *agency_filter(char **agencies)
{
    if (!agencies)
        return g_strdup("");
    GString *q = g_string_new(" AND agency IN (");
    for (char **a = agencies; *a; a++)
        g_string_append(q, a == agencies ? "?" : ", ?");
    if (!*agencies)
        g_string_append(q, "NULL");
    g_string_append(q, ")");
    return g_string_free(q, FALSE);
}

static void bind_agencies(sqlite3_stmt *s, int first, char **agencies)
{
    for (int i = 0; agencies && agencies[i]; i++)
        sqlite3_bind_text(s, first + i, agencies[i], -1, SQLITE_STATIC);
}

static void list_read(sqlite3 *db, void *arg)
{
    jop *op = arg;
    sqlite3_stmt *s;
    op->result = json_array();
    char *filter = agency_filter(op->agencies);
    char *sql = g_strdup_printf("SELECT id, seq, at_ms, kind, text, author, agency FROM journal"
                                " WHERE id < ?%s ORDER BY id DESC LIMIT ?",
                                filter);
    int prepared = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    g_free(sql);
    g_free(filter);
    if (prepared != SQLITE_OK) {
        op->rc = CORE_EDB;
        return;
    }
    int n = op->agencies ? (int)g_strv_length(op->agencies) : 0;
    sqlite3_bind_int64(s, 1, op->before > 0 ? op->before : INT64_MAX);
    bind_agencies(s, 2, op->agencies);
    sqlite3_bind_int(s, 2 + n, op->limit);
    while (sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(op->result, row_json(s));
    sqlite3_finalize(s);
}

static void get_read(sqlite3 *db, void *arg)
{
    jop *op = arg;
    sqlite3_stmt *s;
    op->rc = CORE_ENOTFOUND;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, seq, at_ms, kind, text, author, agency FROM journal"
                           " WHERE id = ?",
                           -1, &s, NULL) != SQLITE_OK) {
        op->rc = CORE_EDB;
        return;
    }
    sqlite3_bind_int64(s, 1, op->id);
    if (sqlite3_step(s) == SQLITE_ROW) {
        op->result = row_json(s);
        op->rc = 0;
    }
    sqlite3_finalize(s);
}

static void read_done(void *arg)
{
    jop *op = arg;
    json_t *r = op->rc ? NULL : op->result;
    op->result = NULL;
    op->done(op->rc, r, op->arg);
    jop_free(op);
}

static int start_read(core_store *st, jop *op, core_read_fn fn)
{
    int rc = core_store_read(st, fn, read_done, op);
    if (rc)
        jop_free(op);
    return rc;
}

int disp_journal_list(core_store *st, char **agencies, int64_t before, int limit,
                      disp_json_done done, void *arg)
{
    jop *op = g_new0(jop, 1);
    op->agencies = agencies ? g_strdupv(agencies) : NULL;
    op->before = before;
    op->limit = CLAMP(limit, 1, 500);
    op->done = done;
    op->arg = arg;
    return start_read(st, op, list_read);
}

int disp_journal_get(core_store *st, int64_t id, disp_json_done done, void *arg)
{
    jop *op = g_new0(jop, 1);
    op->id = id;
    op->done = done;
    op->arg = arg;
    return start_read(st, op, get_read);
}

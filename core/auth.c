/*
 * auth.c — roles, passwords and the users table (see auth.h).
 */
#include "auth.h"
#include "core.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

static const char *const role_names[] = {
#define CORE__ROLE_NAME(name, bit) #name,
    CORE_ROLES(CORE__ROLE_NAME)
#undef CORE__ROLE_NAME
};

static const core_migration migrations[] = {
    {"auth", 1,
     "CREATE TABLE users ("
     "  id INTEGER PRIMARY KEY,"
     "  username TEXT NOT NULL UNIQUE,"
     "  display_name TEXT NOT NULL,"
     "  agency TEXT NOT NULL,"
     "  leads TEXT NOT NULL DEFAULT '',"
     "  roles TEXT NOT NULL,"
     "  password_hash TEXT NOT NULL,"
     "  disabled INTEGER NOT NULL DEFAULT 0,"
     "  failed_logins INTEGER NOT NULL DEFAULT 0,"
     "  locked_until_ms INTEGER NOT NULL DEFAULT 0,"
     "  created_at_ms INTEGER NOT NULL,"
     "  changed_at_ms INTEGER NOT NULL)"},
    {"auth", 2,
     "CREATE TABLE sessions ("
     "  token_hash TEXT PRIMARY KEY,"
     "  user_id INTEGER NOT NULL REFERENCES users(id),"
     "  created_at_ms INTEGER NOT NULL,"
     "  last_seen_ms INTEGER NOT NULL,"
     "  expires_at_ms INTEGER NOT NULL,"
     "  source TEXT NOT NULL,"
     "  ended_at_ms INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX sessions_user ON sessions(user_id)"},
};

void core_auth_register(core_store *st)
{
    core_store_add_migrations(st, migrations, G_N_ELEMENTS(migrations));
}

int core_roles_parse(const char *csv, unsigned *out, char **err)
{
    *out = 0;
    char **parts = g_strsplit(csv ? csv : "", ",", -1);
    int rc = 0;
    for (char **p = parts; *p && !rc; p++) {
        char *name = g_strstrip(*p);
        if (!*name)
            continue;
        size_t i = 0;
        while (i < G_N_ELEMENTS(role_names) && strcmp(role_names[i], name) != 0)
            i++;
        if (i == G_N_ELEMENTS(role_names)) {
            *err = g_strdup_printf("unknown role '%s' (roles: call_taker, dispatcher, supervisor,"
                                   " field_unit, crew, leader, operator, auditor)",
                                   name);
            rc = CORE_EINVAL;
        } else {
            *out |= 1u << i;
        }
    }
    g_strfreev(parts);
    if (!rc && !*out) {
        *err = g_strdup("at least one role is required");
        rc = CORE_EINVAL;
    }
    return rc;
}

char *core_roles_format(unsigned roles)
{
    GString *s = g_string_new("");
    for (size_t i = 0; i < G_N_ELEMENTS(role_names); i++)
        if (roles & (1u << i))
            g_string_append_printf(s, "%s%s", s->len ? "," : "", role_names[i]);
    return g_string_free(s, FALSE);
}

int core_agency_known(const char *agencies_csv, const char *agency)
{
    if (!agency || !*agency)
        return 0;
    char **parts = g_strsplit(agencies_csv ? agencies_csv : CORE_DEFAULT_AGENCIES, ",", -1);
    int found = 0;
    for (char **p = parts; *p && !found; p++)
        found = strcmp(g_strstrip(*p), agency) == 0;
    g_strfreev(parts);
    return found;
}

int core_username_valid(const char *u)
{
    size_t n = u ? strlen(u) : 0;
    if (n < 3 || n > 32 || !(g_ascii_islower(u[0]) || g_ascii_isdigit(u[0])))
        return 0;
    for (; *u; u++)
        if (!(g_ascii_islower(*u) || g_ascii_isdigit(*u) || *u == '.' || *u == '_' || *u == '-'))
            return 0;
    return 1;
}

static int refuse(char **field, char **message, const char *f, char *msg)
{
    *field = g_strdup(f);
    *message = msg;
    return CORE_EINVAL;
}

int core_user_check(const char *username, const char *display_name, const char *roles_csv,
                    const char *agency, const char *leads, const char *agencies, unsigned *roles,
                    char **field, char **message)
{
    char *err = NULL;
    if (!core_username_valid(username))
        return refuse(field, message, "username",
                      g_strdup("3-32 characters of a-z, 0-9, '.', '_', '-'"));
    if (display_name && (!g_utf8_validate(display_name, -1, NULL) || !*display_name ||
                         g_utf8_strlen(display_name, -1) > 100))
        return refuse(field, message, "display_name", g_strdup("1-100 characters of UTF-8"));
    for (const char *c = display_name; c && *c; c++)
        if ((unsigned char)*c < 0x20)
            return refuse(field, message, "display_name", g_strdup("no control characters"));
    if (core_roles_parse(roles_csv, roles, &err))
        return refuse(field, message, "roles", err);
    if (!core_agency_known(agencies, agency))
        return refuse(field, message, "agency",
                      g_strdup_printf("one of %s", agencies ? agencies : CORE_DEFAULT_AGENCIES));
    char **parts = g_strsplit(leads ? leads : "", ",", -1);
    int rc = 0;
    for (char **l = parts; *l && !rc; l++)
        if (**l && strcmp(*l, "*") != 0 && !core_agency_known(agencies, *l))
            rc = refuse(field, message, "leads", g_strdup_printf("unknown agency '%s'", *l));
    g_strfreev(parts);
    return rc;
}

const char *core_password_weakness(const char *pw)
{
    if (!pw || !*pw)
        return "a password needs at least 10 characters";
    if (strlen(pw) > CORE_PASSWORD_MAX)
        return "a password may have at most 512 bytes";
    if (!g_utf8_validate(pw, -1, NULL))
        return "a password must be UTF-8 text";
    if (g_utf8_strlen(pw, -1) < CORE_PASSWORD_MIN)
        return "a password needs at least 10 characters";
    return NULL;
}

int core_password_hash(const char *pw, char out[128])
{
    G_STATIC_ASSERT(crypto_pwhash_STRBYTES == 128);
    if (core_password_weakness(pw))
        return CORE_EINVAL;
    /* OWASP minimum for Argon2id: 19 MiB, two passes, one lane (libsodium's lanes = 1). */
    if (crypto_pwhash_str_alg(out, pw, strlen(pw), 2, 19u * 1024 * 1024,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return CORE_ENOMEM;
    return 0;
}

int core_password_verify(const char *hash, const char *pw)
{
    if (!hash || !pw || strlen(pw) > CORE_PASSWORD_MAX)
        return CORE_EINVAL;
    return crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0 ? 0 : CORE_EINVAL;
}

void core_user_free(core_user *u)
{
    if (!u)
        return;
    g_free(u->username);
    g_free(u->display_name);
    g_free(u->agency);
    g_free(u->leads);
    if (u->password_hash)
        sodium_memzero(u->password_hash, strlen(u->password_hash));
    g_free(u->password_hash);
    g_free(u);
}

#define USER_COLUMNS                                                                               \
    "id, username, display_name, agency, leads, roles, password_hash, disabled, failed_logins,"    \
    " locked_until_ms, changed_at_ms"

static core_user *row_user(sqlite3_stmt *s)
{
    core_user *u = g_new0(core_user, 1);
    char *err = NULL;
    u->id = sqlite3_column_int64(s, 0);
    u->username = g_strdup((const char *)sqlite3_column_text(s, 1));
    u->display_name = g_strdup((const char *)sqlite3_column_text(s, 2));
    u->agency = g_strdup((const char *)sqlite3_column_text(s, 3));
    u->leads = g_strdup((const char *)sqlite3_column_text(s, 4));
    if (core_roles_parse((const char *)sqlite3_column_text(s, 5), &u->roles, &err))
        g_free(err); /* a role this build does not know grants nothing */
    u->password_hash = g_strdup((const char *)sqlite3_column_text(s, 6));
    u->disabled = sqlite3_column_int(s, 7);
    u->failed_logins = sqlite3_column_int(s, 8);
    u->locked_until_ms = sqlite3_column_int64(s, 9);
    u->changed_at_ms = sqlite3_column_int64(s, 10);
    return u;
}

static core_user *one_user(sqlite3 *db, const char *where, const char *text, int64_t id)
{
    char *sql = g_strdup_printf("SELECT " USER_COLUMNS " FROM users WHERE %s", where);
    sqlite3_stmt *s;
    core_user *u = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        if (text)
            sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(s, 1, id);
        if (sqlite3_step(s) == SQLITE_ROW)
            u = row_user(s);
        sqlite3_finalize(s);
    }
    g_free(sql);
    return u;
}

core_user *core_user_by_name(sqlite3 *db, const char *username)
{
    return one_user(db, "username = ?", username ? username : "", 0);
}

core_user *core_user_by_id(sqlite3 *db, int64_t id)
{
    return one_user(db, "id = ?", NULL, id);
}

GPtrArray *core_users_list(sqlite3 *db)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)core_user_free);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT " USER_COLUMNS " FROM users ORDER BY username", -1, &s,
                           NULL) != SQLITE_OK)
        return out;
    while (sqlite3_step(s) == SQLITE_ROW)
        g_ptr_array_add(out, row_user(s));
    sqlite3_finalize(s);
    return out;
}

/* Changes to accounts are security records: they go to the audit trail
 * (with their details as JSON), not to the operational event feed. */
static int audit_user(core_txn *txn, const char *action, const char *outcome, int64_t id,
                      const char *username, const char *actor, const char *source, json_t *extra)
{
    char object[32];
    g_snprintf(object, sizeof object, "user/%" G_GINT64_FORMAT, id);
    json_t *data = extra ? extra : json_object();
    if (username)
        json_object_set_new(data, "username", json_string(username));
    char *detail = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(data);
    int rc = core_txn_audit(txn, actor, action, object, source, outcome, detail);
    free(detail);
    return rc;
}

int core_user_insert(core_txn *txn, const core_user *u, const char *actor, const char *source,
                     int64_t *id)
{
    sqlite3_stmt *s = core_txn_prepare(txn, "INSERT INTO users (username, display_name, agency,"
                                            " leads, roles, password_hash, created_at_ms,"
                                            " changed_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (!s)
        return CORE_EDB;
    char *roles = core_roles_format(u->roles);
    int64_t now = core_now_ms();
    sqlite3_bind_text(s, 1, u->username, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, u->display_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, u->agency, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, u->leads ? u->leads : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, roles, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, u->password_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, now);
    sqlite3_bind_int64(s, 8, now);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (!rc) {
        *id = sqlite3_last_insert_rowid(core_txn_db(txn));
        rc = audit_user(txn, "user.created", "ok", *id, u->username, actor, source,
                        json_pack("{ssssssss}", "display_name", u->display_name, "agency",
                                  u->agency, "roles", roles, "leads", u->leads ? u->leads : ""));
    }
    g_free(roles);
    return rc;
}

int core_user_set_disabled(core_txn *txn, int64_t id, int disabled, const char *actor,
                           const char *source)
{
    sqlite3_stmt *s =
        core_txn_prepare(txn, "UPDATE users SET disabled = ?, changed_at_ms = ?, failed_logins = 0,"
                              " locked_until_ms = 0 WHERE id = ?");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int(s, 1, disabled ? 1 : 0);
    sqlite3_bind_int64(s, 2, core_now_ms());
    sqlite3_bind_int64(s, 3, id);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    if (sqlite3_changes(core_txn_db(txn)) == 0)
        return CORE_ENOTFOUND;
    return audit_user(txn, disabled ? "user.disabled" : "user.enabled", "ok", id, NULL, actor,
                      source, NULL);
}

int core_user_login_failed(core_txn *txn, int64_t id, const char *source, int limit,
                           int64_t lock_ms, int *locked)
{
    int64_t now = core_now_ms();
    sqlite3_stmt *s = core_txn_prepare(
        txn,
        /* After a lock has run out, counting starts again. */
        "UPDATE users SET failed_logins = CASE WHEN locked_until_ms BETWEEN 1 AND ?4 THEN 1"
        " ELSE failed_logins + 1 END,"
        " locked_until_ms = CASE WHEN (CASE WHEN locked_until_ms BETWEEN 1 AND ?4 THEN 1"
        " ELSE failed_logins + 1 END) >= ?1 THEN ?2 WHEN locked_until_ms <= ?4 THEN 0"
        " ELSE locked_until_ms END"
        " WHERE id = ?3 RETURNING failed_logins, username");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int(s, 1, limit);
    sqlite3_bind_int64(s, 2, now + lock_ms);
    sqlite3_bind_int64(s, 3, id);
    sqlite3_bind_int64(s, 4, now);
    int step = sqlite3_step(s);
    if (step != SQLITE_ROW)
        return step == SQLITE_DONE ? CORE_ENOTFOUND : core_txn_check(txn, step);
    int failures = sqlite3_column_int(s, 0);
    char *username = g_strdup((const char *)sqlite3_column_text(s, 1));
    sqlite3_reset(s);
    *locked = failures == limit;
    int rc = audit_user(txn, *locked ? "user.locked" : "session.login", "failed", id, username,
                        username, source, json_pack("{si}", "failures", failures));
    g_free(username);
    return rc;
}

int core_user_login_ok(core_txn *txn, int64_t id)
{
    sqlite3_stmt *s = core_txn_prepare(
        txn, "UPDATE users SET failed_logins = 0, locked_until_ms = 0 WHERE id = ?");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, id);
    return core_txn_check(txn, sqlite3_step(s));
}

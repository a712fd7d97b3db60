/*
 * session.c — sessions in memory and in the store; the authorization matrix.
 *
 * Invariants: every session in `by_hash` is live as far as memory knows;
 * a session leaves the table before its end is written, so a request never
 * sees a session that is ending. Users changed by anyone (API or the admin
 * command) are picked up by a 1 s poll of users.changed_at_ms.
 */
#include "session.h"
#include "core.h"
#include "log.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

/* ---- the matrix ---- */

#define R(name) CORE_ROLE_##name
static const unsigned matrix[CORE_ACT_COUNT] = {
    [CORE_ACT_JOURNAL_READ] =
        R(call_taker) | R(dispatcher) | R(supervisor) | R(field_unit) | R(crew) | R(leader),
    [CORE_ACT_JOURNAL_WRITE] = R(call_taker) | R(dispatcher) | R(supervisor) | R(leader),
    [CORE_ACT_EVENTS_READ] =
        R(call_taker) | R(dispatcher) | R(supervisor) | R(field_unit) | R(crew) | R(leader),
    [CORE_ACT_AUDIT_READ] = R(auditor),
    [CORE_ACT_USERS_READ] = R(supervisor) | R(operator),
    [CORE_ACT_USERS_MANAGE] = R(operator),
    [CORE_ACT_METRICS_READ] = R(operator),
    [CORE_ACT_CALLS_CREATE] = R(call_taker) | R(dispatcher) | R(supervisor),
    [CORE_ACT_INCIDENTS_READ] =
        R(call_taker) | R(dispatcher) | R(supervisor) | R(field_unit) | R(crew) | R(leader),
    [CORE_ACT_INCIDENTS_UPDATE] = R(dispatcher) | R(supervisor),
    [CORE_ACT_UNITS_READ] =
        R(call_taker) | R(dispatcher) | R(supervisor) | R(field_unit) | R(crew) | R(leader),
    [CORE_ACT_UNITS_MANAGE] = R(supervisor) | R(operator),
    [CORE_ACT_UNITS_STATUS] = R(dispatcher) | R(supervisor) | R(field_unit) | R(crew),
    [CORE_ACT_MAP_READ] =
        R(call_taker) | R(dispatcher) | R(supervisor) | R(field_unit) | R(crew) | R(leader),
    /* Pipe networks are a utility's own: its crews and supervisors, the
     * command centre's dispatchers, and leaders. */
    [CORE_ACT_PIPES_READ] = R(dispatcher) | R(supervisor) | R(crew) | R(leader),
    [CORE_ACT_PIPES_ISOLATE] = R(dispatcher) | R(supervisor) | R(crew),
    [CORE_ACT_PIPES_MANAGE] = R(supervisor),
    [CORE_ACT_REPAIRS_APPROVE] = R(supervisor) | R(leader),
    /* CCTV: who works incidents and units sees the cameras of their agency. */
    [CORE_ACT_CAMERAS_READ] =
        R(call_taker) | R(dispatcher) | R(supervisor) | R(field_unit) | R(crew) | R(leader),
    [CORE_ACT_CAMERAS_MANAGE] = R(supervisor) | R(operator),
    /* Pan, tilt and zoom: who dispatches points the cameras. */
    [CORE_ACT_CAMERAS_CONTROL] = R(dispatcher) | R(supervisor),
};

/* Roles that act on every agency's records for an action (system-wide
 * duties), not only their own agency's. */
static const unsigned everywhere[CORE_ACT_COUNT] = {
    [CORE_ACT_USERS_READ] = R(operator),
    [CORE_ACT_USERS_MANAGE] = R(operator),
    [CORE_ACT_UNITS_MANAGE] = R(operator),
    [CORE_ACT_CAMERAS_MANAGE] = R(operator),
};

/* Roles of the command centre (agency "command") that act on every
 * agency's records for an action: it coordinates all of them. */
static const unsigned command_wide[CORE_ACT_COUNT] = {
    [CORE_ACT_INCIDENTS_READ] = ~0u,
    [CORE_ACT_INCIDENTS_UPDATE] = ~0u,
    [CORE_ACT_UNITS_READ] = ~0u,
    [CORE_ACT_PIPES_READ] = ~0u,
    [CORE_ACT_CAMERAS_READ] = ~0u,
    [CORE_ACT_CAMERAS_CONTROL] = R(dispatcher) | R(supervisor),
    [CORE_ACT_PIPES_ISOLATE] = R(dispatcher) | R(supervisor),
    /* A crew or field unit of the centre drives its own cars only. */
    [CORE_ACT_UNITS_STATUS] = R(dispatcher) | R(supervisor),
};
#undef R

/* The command centre's own records are joint: every agency may read them. */
#define JOINT_AGENCY "command"

const char *core_action_name(core_action a)
{
    static const char *const names[] = {
#define CORE__ACTION_NAME(name, text) text,
        CORE_ACTIONS(CORE__ACTION_NAME)
#undef CORE__ACTION_NAME
    };
    return a < CORE_ACT_COUNT ? names[a] : "unknown";
}

static int leads_agency(const core_session *s, const char *agency)
{
    if (!(s->roles & CORE_ROLE_leader) || !s->leads || !*s->leads)
        return 0;
    if (strcmp(s->leads, "*") == 0)
        return 1;
    return core_agency_known(s->leads, agency);
}

int core_may(const core_session *s, core_action action, const char *agency)
{
    if (!s || action >= CORE_ACT_COUNT || !(s->roles & matrix[action]))
        return 0;
    if (!agency || (s->roles & everywhere[action]))
        return 1;
    /* The command centre's own staff coordinate every agency's incidents and units. */
    if ((s->roles & command_wide[action]) && strcmp(s->agency, JOINT_AGENCY) == 0)
        return 1;
    if (strcmp(agency, s->agency) == 0 || leads_agency(s, agency))
        return 1;
    /* Joint records are readable by all; only their own agency writes them. */
    return action == CORE_ACT_JOURNAL_READ && strcmp(agency, JOINT_AGENCY) == 0;
}

char **core_readable_agencies(const core_session *s, core_action action)
{
    GPtrArray *a = g_ptr_array_new();
    if (s && action < CORE_ACT_COUNT && (s->roles & matrix[action])) {
        if ((s->roles & everywhere[action]) ||
            ((s->roles & command_wide[action]) && strcmp(s->agency, JOINT_AGENCY) == 0) ||
            ((s->roles & CORE_ROLE_leader) && s->leads && strcmp(s->leads, "*") == 0)) {
            g_ptr_array_free(a, TRUE);
            return NULL;
        }
        g_ptr_array_add(a, g_strdup(s->agency));
        if (action == CORE_ACT_JOURNAL_READ && strcmp(s->agency, JOINT_AGENCY) != 0)
            g_ptr_array_add(a, g_strdup(JOINT_AGENCY));
        char **leads =
            g_strsplit((s->roles & CORE_ROLE_leader) && s->leads ? s->leads : "", ",", -1);
        for (char **l = leads; *l; l++)
            if (**l && core_may(s, action, *l))
                g_ptr_array_add(a, g_strdup(*l));
        g_strfreev(leads);
    }
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

int core_may_any(const core_session *s, core_action action, char **agencies)
{
    for (char **a = agencies; a && *a; a++)
        if (core_may(s, action, *a))
            return 1;
    return 0;
}

/* Does the event's "agencies" list name one for which s may do action? */
static int may_any_listed(const core_session *s, core_action action, const core_event *ev)
{
    json_t *list = json_object_get(ev->data, "agencies");
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a) if (core_may(s, action, json_string_value(a))) return 1;
    return 0;
}

int core_may_see_event(const core_session *s, const core_event *ev)
{
    if (g_str_has_prefix(ev->type, "incident.") || g_str_has_prefix(ev->type, "call."))
        return may_any_listed(s, CORE_ACT_INCIDENTS_READ, ev);
    if (g_str_has_prefix(ev->type, "unit."))
        return may_any_listed(s, CORE_ACT_UNITS_READ, ev);
    /* A unit entering or leaving a fence, or a fence of one agency. */
    if (g_str_has_prefix(ev->type, "geofence.") && json_object_get(ev->data, "agencies"))
        return may_any_listed(s, CORE_ACT_UNITS_READ, ev);
    if (g_str_has_prefix(ev->type, "pipes.") || g_str_has_prefix(ev->type, "repair."))
        return may_any_listed(s, CORE_ACT_PIPES_READ, ev);
    if (g_str_has_prefix(ev->type, "camera."))
        return may_any_listed(s, CORE_ACT_CAMERAS_READ, ev);
    if (g_str_has_prefix(ev->type, "journal.")) {
        const char *agency = json_string_value(json_object_get(ev->data, "agency"));
        return core_may(s, CORE_ACT_JOURNAL_READ, agency ? agency : JOINT_AGENCY);
    }
    return core_may(s, CORE_ACT_EVENTS_READ, NULL);
}

/* ---- sessions ---- */

struct core_sessions {
    core_store *store;
    core_loop *loop;
    GHashTable *by_hash; /* hash -> core_session* (owned) */
    int64_t idle_ms, lifetime_ms, lock_ms;
    int lock_failures;
    core_session_ended_fn on_end;
    void *on_end_user;
    core_session_in_use_fn in_use;
    void *in_use_user;
    guint poll;
    int polling;
    int64_t users_seen_ms; /* newest users.changed_at_ms applied */
    char dummy_hash[128];  /* verified against when the user does not exist */
};

static void session_free(gpointer p)
{
    core_session *s = p;
    g_free(s->username);
    g_free(s->display_name);
    g_free(s->agency);
    g_free(s->leads);
    g_free(s);
}

core_session *core_session_copy(const core_session *s)
{
    core_session *c = g_new(core_session, 1);
    *c = *s;
    c->username = g_strdup(s->username);
    c->display_name = g_strdup(s->display_name);
    c->agency = g_strdup(s->agency);
    c->leads = g_strdup(s->leads);
    return c;
}

void core_session_copy_free(core_session *copy)
{
    if (copy)
        session_free(copy);
}

static void token_hash(const char *token, char out[65])
{
    unsigned char d[32];
    crypto_generichash(d, sizeof d, (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, 65, d, sizeof d);
}

static void set_user_fields(core_session *s, const core_user *u)
{
    g_free(s->username);
    g_free(s->display_name);
    g_free(s->agency);
    g_free(s->leads);
    s->user_id = u->id;
    s->username = g_strdup(u->username);
    s->display_name = g_strdup(u->display_name);
    s->agency = g_strdup(u->agency);
    s->leads = g_strdup(u->leads);
    s->roles = u->roles;
}

void core_sessions_on_end(core_sessions *ss, core_session_ended_fn fn, void *user)
{
    ss->on_end = fn;
    ss->on_end_user = user;
}

void core_sessions_in_use(core_sessions *ss, core_session_in_use_fn fn, void *user)
{
    ss->in_use = fn;
    ss->in_use_user = user;
}

/* NULL while s is live (refreshing its idle clock when its owner says it
 * is in use), else why it is over: "lifetime" or "idle". */
static const char *over(core_sessions *ss, core_session *s, int64_t now)
{
    if (now > s->expires_ms)
        return "lifetime";
    if (now - s->last_seen_ms <= ss->idle_ms)
        return NULL;
    if (ss->in_use && ss->in_use(s, ss->in_use_user)) {
        s->last_seen_ms = now;
        return NULL;
    }
    return "idle";
}

/* Sessions are security records: audit rows, not events on the feed. */
static int audit_session(core_txn *txn, const char *action, const char *username, int64_t user_id,
                         const char *source, const char *detail)
{
    char object[32];
    g_snprintf(object, sizeof object, "user/%" G_GINT64_FORMAT, user_id);
    return core_txn_audit(txn, username, action, object, source, "ok", detail);
}

typedef struct {
    char hash[65];
    int64_t user_id;
    char *username, *why, *source;
    int64_t at_ms;
    void (*done)(int rc, void *arg);
    void *arg;
} end_op;

static int end_write(core_txn *txn, void *arg)
{
    end_op *op = arg;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "UPDATE sessions SET ended_at_ms = ? WHERE token_hash = ? AND ended_at_ms = 0");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, op->at_ms);
    sqlite3_bind_text(s, 2, op->hash, -1, SQLITE_STATIC);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    return audit_session(txn, "session.ended", op->username, op->user_id, op->source, op->why);
}

static void end_done(int rc, GPtrArray *events, void *arg)
{
    end_op *op = arg;
    if (op->done)
        op->done(rc, op->arg);
    g_free(op->username);
    g_free(op->why);
    g_free(op->source);
    g_free(op);
}

/* Takes s out of memory, tells the owner of its connections, records the end. */
static int end_session(core_sessions *ss, core_session *s, const char *why, const char *source,
                       void (*done)(int, void *), void *arg)
{
    end_op *op = g_new0(end_op, 1);
    memcpy(op->hash, s->hash, sizeof op->hash);
    op->user_id = s->user_id;
    op->username = g_strdup(s->username);
    op->why = g_strdup(why);
    op->source = g_strdup(source ? source : "");
    op->at_ms = core_now_ms();
    op->done = done;
    op->arg = arg;
    s->ended = 1;
    g_hash_table_steal(ss->by_hash, s->hash);
    if (ss->on_end)
        ss->on_end(s, why, ss->on_end_user);
    log_info("session.ended", "user=%s reason=%s", s->username, why);
    session_free(s);
    int rc = core_store_write(ss->store, end_write, end_done, op);
    if (rc) {
        g_free(op->username);
        g_free(op->why);
        g_free(op->source);
        g_free(op);
    }
    return rc;
}

int core_sessions_end(core_sessions *ss, core_session *s, const char *source,
                      void (*done)(int rc, void *arg), void *arg)
{
    return end_session(ss, s, "logout", source, done, arg);
}

core_session *core_sessions_check(core_sessions *ss, const char *token, const char **why)
{
    *why = "missing or malformed token";
    if (!token || strlen(token) < 16 || strlen(token) > 128)
        return NULL;
    char h[65];
    token_hash(token, h);
    core_session *s = g_hash_table_lookup(ss->by_hash, h);
    if (!s) {
        *why = "unknown or ended session";
        return NULL;
    }
    int64_t now = core_now_ms();
    const char *reason = over(ss, s, now);
    if (reason) {
        *why = strcmp(reason, "lifetime") == 0 ? "session lifetime over" : "session idle too long";
        end_session(ss, s, reason, "", NULL, NULL);
        return NULL;
    }
    s->last_seen_ms = now;
    return s;
}

/* ---- login ---- */

typedef struct {
    core_sessions *ss;
    char *username, *password, *source, *token;
    core_user *user;
    int verified;
    int locked_now;
    core_session *session;
    core_login_done done;
    void *arg;
} login_op;

static void login_free(login_op *op)
{
    if (op->password)
        sodium_memzero(op->password, strlen(op->password));
    g_free(op->password);
    g_free(op->username);
    g_free(op->source);
    g_free(op->token);
    core_user_free(op->user);
    g_free(op);
}

static void login_read(sqlite3 *db, void *arg)
{
    login_op *op = arg;
    op->user = core_user_by_name(db, op->username);
    /* Verify against a dummy hash for unknown users, so timing does not
     * tell an attacker which usernames exist. */
    const char *hash = op->user ? op->user->password_hash : op->ss->dummy_hash;
    op->verified = core_password_verify(hash, op->password) == 0 && op->user;
}

static int login_failed_write(core_txn *txn, void *arg)
{
    login_op *op = arg;
    return core_user_login_failed(txn, op->user->id, op->source, op->ss->lock_failures,
                                  op->ss->lock_ms, &op->locked_now);
}

static int login_denied_write(core_txn *txn, void *arg)
{
    login_op *op = arg;
    const char *detail = !op->user            ? "unknown user"
                         : op->user->disabled ? "account disabled"
                                              : "account locked";
    char object[32] = "user";
    if (op->user)
        g_snprintf(object, sizeof object, "user/%" G_GINT64_FORMAT, op->user->id);
    return core_txn_audit(txn, op->username, "session.login", object, op->source, "denied", detail);
}

static int login_ok_write(core_txn *txn, void *arg)
{
    login_op *op = arg;
    core_session *s = op->session;
    sqlite3_stmt *st = core_txn_prepare(txn, "INSERT INTO sessions (token_hash, user_id,"
                                             " created_at_ms, last_seen_ms, expires_at_ms, source)"
                                             " VALUES (?, ?, ?, ?, ?, ?)");
    if (!st)
        return CORE_EDB;
    sqlite3_bind_text(st, 1, s->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->user_id);
    sqlite3_bind_int64(st, 3, s->created_ms);
    sqlite3_bind_int64(st, 4, s->last_seen_ms);
    sqlite3_bind_int64(st, 5, s->expires_ms);
    sqlite3_bind_text(st, 6, op->source, -1, SQLITE_STATIC);
    int rc = core_txn_check(txn, sqlite3_step(st));
    if (!rc)
        rc = core_user_login_ok(txn, s->user_id);
    if (rc)
        return rc;
    return audit_session(txn, "session.created", s->username, s->user_id, op->source, "");
}

/* A user's sessions are capped: signing in once more ends the oldest, so
 * scripted logins cannot grow memory without bound. */
static void cap_sessions(core_sessions *ss, const core_session *keep, const char *source)
{
    for (;;) {
        guint n = 0;
        core_session *oldest = NULL;
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, ss->by_hash);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            core_session *x = v;
            if (x->user_id != keep->user_id)
                continue;
            n++;
            if (x != keep && (!oldest || x->created_ms < oldest->created_ms))
                oldest = x;
        }
        if (n <= CORE_SESSIONS_PER_USER || !oldest)
            return;
        end_session(ss, oldest, "too many sessions", source, NULL, NULL);
    }
}

static void login_finished(int rc, GPtrArray *events, void *arg)
{
    login_op *op = arg;
    if (op->session) {
        core_session *s = op->session;
        op->session = NULL;
        if (rc == 0) {
            g_hash_table_insert(op->ss->by_hash, s->hash, s);
            log_info("session.created", "user=%s source=%s", s->username, op->source);
            cap_sessions(op->ss, s, op->source);
            op->done(0, g_steal_pointer(&op->token), s, op->arg);
        } else {
            session_free(s);
            op->done(rc, NULL, NULL, op->arg);
        }
    } else {
        if (op->locked_now)
            log_warn("session.locked", "user=%s source=%s", op->username, op->source);
        op->done(rc ? rc : CORE_EINVAL, NULL, NULL, op->arg);
    }
    login_free(op);
}

static void login_verified(void *arg)
{
    login_op *op = arg;
    core_sessions *ss = op->ss;
    int64_t now = core_now_ms();
    core_write_fn fn;
    if (!op->user || op->user->disabled || op->user->locked_until_ms > now) {
        fn = login_denied_write;
    } else if (!op->verified) {
        fn = login_failed_write;
    } else {
        unsigned char raw[32];
        char token[64];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2base64(token, sizeof token, raw, sizeof raw,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(raw, sizeof raw);
        op->token = g_strdup(token);
        core_session *s = g_new0(core_session, 1);
        token_hash(token, s->hash);
        sodium_memzero(token, sizeof token);
        set_user_fields(s, op->user);
        s->created_ms = s->last_seen_ms = now;
        s->expires_ms = now + ss->lifetime_ms;
        op->session = s;
        fn = login_ok_write;
    }
    int rc = core_store_write(ss->store, fn, login_finished, op);
    if (rc) {
        if (op->session)
            session_free(op->session);
        op->session = NULL;
        op->done(rc, NULL, NULL, op->arg);
        login_free(op);
    }
}

int core_sessions_login(core_sessions *ss, const char *username, const char *password,
                        const char *source, core_login_done done, void *arg)
{
    login_op *op = g_new0(login_op, 1);
    op->ss = ss;
    op->username = g_strdup(username);
    op->password = g_strdup(password);
    op->source = g_strdup(source ? source : "");
    op->done = done;
    op->arg = arg;
    int rc = core_store_read(ss->store, login_read, login_verified, op);
    if (rc)
        login_free(op);
    return rc;
}

/* ---- denied attempts ---- */

typedef struct {
    char *actor, *action, *object, *source, *detail;
    void (*done)(void *arg);
    void *arg;
} denied_op;

static int denied_write(core_txn *txn, void *arg)
{
    denied_op *d = arg;
    return core_txn_audit(txn, d->actor, d->action, d->object, d->source, "denied", d->detail);
}

static void denied_done(int rc, GPtrArray *events, void *arg)
{
    denied_op *d = arg;
    if (rc)
        log_warn("audit.denied_not_recorded", "actor=%s action=%s error=\"%s\"", d->actor,
                 d->action, core_strerror(rc));
    if (d->done)
        d->done(d->arg);
    g_free(d->actor);
    g_free(d->action);
    g_free(d->object);
    g_free(d->source);
    g_free(d->detail);
    g_free(d);
}

void core_sessions_audit_denied(core_sessions *ss, const char *actor, const char *action,
                                const char *object, const char *source, const char *detail,
                                void (*done)(void *arg), void *arg)
{
    denied_op *d = g_new0(denied_op, 1);
    d->actor = g_strdup(actor ? actor : "");
    d->action = g_strdup(action);
    d->object = g_strdup(object ? object : "");
    d->source = g_strdup(source ? source : "");
    d->detail = g_strdup(detail ? detail : "");
    d->done = done;
    d->arg = arg;
    int rc = core_store_write(ss->store, denied_write, denied_done, d);
    if (rc)
        denied_done(rc, NULL, d);
}

/* ---- start-up and the users poll ---- */

typedef struct {
    core_sessions *ss;
    GPtrArray *users;
    GPtrArray *rows; /* sessions: {hash, user_id, created, last_seen, expires} */
} load_op;

static void load_sessions(sqlite3 *db, void *arg)
{
    core_sessions *ss = arg;
    sqlite3_stmt *s;
    int64_t now = core_now_ms();
    if (sqlite3_prepare_v2(db,
                           "SELECT s.token_hash, s.user_id, s.created_at_ms, s.last_seen_ms,"
                           " s.expires_at_ms FROM sessions s JOIN users u ON u.id = s.user_id"
                           " WHERE s.ended_at_ms = 0 AND u.disabled = 0 AND s.expires_at_ms > ?",
                           -1, &s, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(s, 1, now);
    while (sqlite3_step(s) == SQLITE_ROW) {
        core_user *u = core_user_by_id(db, sqlite3_column_int64(s, 1));
        if (!u)
            continue;
        core_session *se = g_new0(core_session, 1);
        g_strlcpy(se->hash, (const char *)sqlite3_column_text(s, 0), sizeof se->hash);
        set_user_fields(se, u);
        se->created_ms = sqlite3_column_int64(s, 2);
        /* The idle clock restarts: last_seen is not written on every request. */
        se->last_seen_ms = now;
        se->expires_ms = sqlite3_column_int64(s, 4);
        g_hash_table_insert(ss->by_hash, se->hash, se);
        core_user_free(u);
    }
    sqlite3_finalize(s);
    sqlite3_prepare_v2(db, "SELECT coalesce(max(changed_at_ms), 0) FROM users", -1, &s, NULL);
    if (sqlite3_step(s) == SQLITE_ROW)
        ss->users_seen_ms = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
}

int core_sessions_load(core_sessions *ss)
{
    int rc = core_store_load(ss->store, load_sessions, ss);
    log_info("session.loaded", "live=%u", g_hash_table_size(ss->by_hash));
    return rc;
}

typedef struct {
    core_sessions *ss;
    int64_t since;
    GPtrArray *users;
} poll_op;

static void poll_read(sqlite3 *db, void *arg)
{
    poll_op *p = arg;
    p->users = g_ptr_array_new_with_free_func((GDestroyNotify)core_user_free);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT id FROM users WHERE changed_at_ms > ?", -1, &s, NULL))
        return;
    /* A window back: a change stamped just before one already seen may
     * commit after it (the admin command is another process). Applying a
     * change twice is harmless. */
    sqlite3_bind_int64(s, 1, p->since - 5000);
    while (sqlite3_step(s) == SQLITE_ROW) {
        core_user *u = core_user_by_id(db, sqlite3_column_int64(s, 0));
        if (u)
            g_ptr_array_add(p->users, u);
    }
    sqlite3_finalize(s);
}

static void poll_done(void *arg)
{
    poll_op *p = arg;
    core_sessions *ss = p->ss;
    ss->polling = 0;
    for (guint i = 0; i < p->users->len; i++) {
        core_user *u = p->users->pdata[i];
        ss->users_seen_ms = MAX(ss->users_seen_ms, u->changed_at_ms);
        GList *mine = NULL;
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, ss->by_hash);
        while (g_hash_table_iter_next(&it, &k, &v))
            if (((core_session *)v)->user_id == u->id)
                mine = g_list_prepend(mine, v);
        for (GList *l = mine; l; l = l->next) {
            if (u->disabled)
                end_session(ss, l->data, "user disabled", "", NULL, NULL);
            else
                set_user_fields(l->data, u);
        }
        g_list_free(mine);
    }
    g_ptr_array_free(p->users, TRUE);
    g_free(p);
}

/* Ends the sessions whose idle time or lifetime ran out, so that their
 * WebSockets close even when nothing is asked of them. */
static void sweep_expired(core_sessions *ss)
{
    int64_t now = core_now_ms();
    GPtrArray *ending = g_ptr_array_new();
    GPtrArray *reasons = g_ptr_array_new();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, ss->by_hash);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *reason = over(ss, v, now);
        if (reason) {
            g_ptr_array_add(ending, v);
            g_ptr_array_add(reasons, (gpointer)reason);
        }
    }
    for (guint i = 0; i < ending->len; i++)
        end_session(ss, ending->pdata[i], reasons->pdata[i], "", NULL, NULL);
    g_ptr_array_free(ending, TRUE);
    g_ptr_array_free(reasons, TRUE);
}

static gboolean poll_users(gpointer arg)
{
    core_sessions *ss = arg;
    sweep_expired(ss);
    if (ss->polling)
        return G_SOURCE_CONTINUE;
    poll_op *p = g_new0(poll_op, 1);
    p->ss = ss;
    p->since = ss->users_seen_ms;
    ss->polling = 1;
    if (core_store_read(ss->store, poll_read, poll_done, p) != 0) {
        ss->polling = 0;
        g_free(p);
    }
    return G_SOURCE_CONTINUE;
}

void core_sessions_refresh(core_sessions *ss)
{
    poll_users(ss);
}

core_sessions *core_sessions_new(core_store *st, core_loop *loop, int idle_s, int lifetime_s,
                                 int lockout_failures, int lockout_s)
{
    core_sessions *ss = g_new0(core_sessions, 1);
    ss->store = st;
    ss->loop = loop;
    ss->by_hash = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, session_free);
    ss->idle_ms = (int64_t)idle_s * 1000;
    ss->lifetime_ms = (int64_t)lifetime_s * 1000;
    ss->lock_failures = lockout_failures;
    ss->lock_ms = (int64_t)lockout_s * 1000;
    /* Same cost as a real hash, so an unknown user takes as long as a known one. */
    core_password_hash("not a real password, only for timing", ss->dummy_hash);
    ss->poll = g_timeout_add(1000, poll_users, ss);
    return ss;
}

void core_sessions_free(core_sessions *ss)
{
    if (!ss)
        return;
    g_source_remove(ss->poll);
    g_hash_table_destroy(ss->by_hash);
    g_free(ss);
}

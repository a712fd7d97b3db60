/*
 * session.h — login sessions and the one place that decides who may do what.
 *
 * A login issues a fresh random token (256 bits, base64url); only its
 * BLAKE2b hash is stored. Sessions live in memory on the loop thread (so
 * checking a request costs a hash and a lookup, no I/O) and in the
 * `sessions` table, from which they are rebuilt at start. A session ends on
 * logout, after --session-idle seconds without use, after
 * --session-lifetime seconds in all, or when its user is disabled (noticed
 * within a second even when another process disabled the user).
 *
 * core_may() is the authorization matrix (docs/SECURITY.md): by role, and
 * for agency-owned things by agency. Loop thread only.
 */
#ifndef CITYCMD_CORE_SESSION_H
#define CITYCMD_CORE_SESSION_H

#include "auth.h"
#include "bus.h"
#include "store.h"

typedef struct {
    char hash[65]; /* hex BLAKE2b-256 of the token */
    int64_t user_id;
    char *username, *display_name, *agency, *leads;
    unsigned roles;
    int64_t created_ms, last_seen_ms, expires_ms;
    int ended;
} core_session;

/* Actions of the matrix. */
#define CORE_ACTIONS(X)                                                                            \
    X(JOURNAL_READ, "journal.read")                                                                \
    X(JOURNAL_WRITE, "journal.write")                                                              \
    X(EVENTS_READ, "events.read")                                                                  \
    X(AUDIT_READ, "audit.read")                                                                    \
    X(USERS_READ, "users.read")                                                                    \
    X(USERS_MANAGE, "users.manage")                                                                \
    X(METRICS_READ, "metrics.read")                                                                \
    X(MAP_READ, "map.read")                                                                        \
    X(CALLS_CREATE, "calls.create")                                                                \
    X(INCIDENTS_READ, "incidents.read")                                                            \
    X(INCIDENTS_UPDATE, "incidents.update")                                                        \
    X(UNITS_READ, "units.read")                                                                    \
    X(UNITS_MANAGE, "units.manage")                                                                \
    X(UNITS_STATUS, "units.status")                                                                \
    X(PIPES_READ, "pipes.read")                                                                    \
    X(PIPES_ISOLATE, "pipes.isolate")                                                              \
    X(PIPES_MANAGE, "pipes.manage")                                                                \
    X(REPAIRS_APPROVE, "repairs.approve")                                                          \
    X(CAMERAS_READ, "cameras.read")                                                                \
    X(CAMERAS_MANAGE, "cameras.manage")                                                            \
    X(CAMERAS_CONTROL, "cameras.control")

typedef enum {
#define CORE__ACTION_ENUM(name, text) CORE_ACT_##name,
    CORE_ACTIONS(CORE__ACTION_ENUM)
#undef CORE__ACTION_ENUM
        CORE_ACT_COUNT
} core_action;

const char *core_action_name(core_action a);
/* May s do action on a thing owned by agency (NULL: not agency-owned)? */
int core_may(const core_session *s, core_action action, const char *agency);
/* The agencies whose records s may read with action (NULL-terminated,
 * g_strfreev; empty when the role may not), or NULL for every agency. The
 * same rules as core_may, as a list for queries. */
char **core_readable_agencies(const core_session *s, core_action action);
/* May s do action on a thing of any of these agencies (NULL-terminated)? */
int core_may_any(const core_session *s, core_action action, char **agencies);
/* May s see this event on the feed? */
int core_may_see_event(const core_session *s, const core_event *ev);

typedef struct core_sessions core_sessions;
/* Called when sessions end (logout, expiry, disabled user): close what they hold. */
typedef void (*core_session_ended_fn)(const core_session *s, const char *why, void *user);

/* Asked before a session ends for idleness: a session whose owner says it is
 * in use (an open WebSocket: a screen that only listens) stays. The
 * absolute lifetime applies regardless. */
typedef int (*core_session_in_use_fn)(const core_session *s, void *user);
void core_sessions_in_use(core_sessions *ss, core_session_in_use_fn fn, void *user);

/* Live sessions per user; signing in once more ends the oldest. */
#define CORE_SESSIONS_PER_USER 32

core_sessions *core_sessions_new(core_store *st, core_loop *loop, int idle_s, int lifetime_s,
                                 int lockout_failures, int lockout_s);
void core_sessions_free(core_sessions *ss);
/* Loads live sessions from the store (start-up, before serving). */
int core_sessions_load(core_sessions *ss);
void core_sessions_on_end(core_sessions *ss, core_session_ended_fn fn, void *user);

/* A copy of s for work that outlives the request (reads on workers): the
 * session itself may end meanwhile. Free with core_session_copy_free. */
core_session *core_session_copy(const core_session *s);
void core_session_copy_free(core_session *copy);

/* The session for a bearer token, or NULL (unknown, ended or expired;
 * *why says which). Refreshes its idle clock. Never blocks. */
core_session *core_sessions_check(core_sessions *ss, const char *token, const char **why);

/* Login: verifies on a worker, records the outcome, then calls done on the
 * loop with rc 0 and the new token (g_free) and session, or CORE_EINVAL
 * (wrong username or password, locked or disabled: deliberately one answer). */
typedef void (*core_login_done)(int rc, char *token, const core_session *s, void *arg);
int core_sessions_login(core_sessions *ss, const char *username, const char *password,
                        const char *source, core_login_done done, void *arg);
/* Ends a session (logout); done(rc, arg) after the store has recorded it. */
int core_sessions_end(core_sessions *ss, core_session *s, const char *source,
                      void (*done)(int rc, void *arg), void *arg);

/* Applies user changes (a disabled account, new roles) to live sessions now
 * rather than at the next poll. */
void core_sessions_refresh(core_sessions *ss);

/* Records a denied attempt in the audit trail; done(arg), if given, runs
 * once the row is committed (or could not be: that is logged). */
void core_sessions_audit_denied(core_sessions *ss, const char *actor, const char *action,
                                const char *object, const char *source, const char *detail,
                                void (*done)(void *arg), void *arg);

#endif

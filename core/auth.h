/*
 * auth.h — identity: roles, agencies, users, passwords.
 *
 * A user has a username, a display name, one agency (police, fire, ems, …:
 * the list is configurable) and one or more roles from the fixed set below;
 * a leader may also lead further agencies. Passwords are hashed with
 * Argon2id (libsodium; t=2, 19 MiB, p=1: the OWASP minimum) and compared in
 * constant time. After --lockout-failures failed logins in a row (default
 * CORE_LOCKOUT_FAILURES) an account is locked for --lockout-seconds
 * (default CORE_LOCKOUT_MS).
 *
 * Users are rows of the `users` table; every change goes through the store
 * as a write function with its audit row (account changes are security
 * records, not events on the operational feed). Hashing takes tens of
 * milliseconds and 19 MiB: never on the loop thread.
 */
#ifndef CITYCMD_CORE_AUTH_H
#define CITYCMD_CORE_AUTH_H

#include "store.h"

#include <stdint.h>

/* X(name, bit) */
#define CORE_ROLES(X)                                                                              \
    X(call_taker, 0)                                                                               \
    X(dispatcher, 1)                                                                               \
    X(supervisor, 2)                                                                               \
    X(field_unit, 3)                                                                               \
    X(crew, 4)                                                                                     \
    X(leader, 5)                                                                                   \
    X(operator, 6)                                                                                 \
    X(auditor, 7)

enum {
#define CORE__ROLE_ENUM(name, bit) CORE_ROLE_##name = 1u << (bit),
    CORE_ROLES(CORE__ROLE_ENUM)
#undef CORE__ROLE_ENUM
};

#define CORE_PASSWORD_MIN 10  /* characters */
#define CORE_PASSWORD_MAX 512 /* bytes */
#define CORE_LOCKOUT_FAILURES 5
#define CORE_LOCKOUT_MS (10 * 60 * 1000)
#define CORE_DEFAULT_AGENCIES "police,fire,ems,traffic,hotline,water,gas,government,command"

/* "dispatcher,leader" → bits. 0, or CORE_EINVAL with *err naming the role. */
int core_roles_parse(const char *csv, unsigned *out, char **err);
/* Bits → "dispatcher,leader" (g_free). */
char *core_roles_format(unsigned roles);
/* TRUE when agency is in the comma-separated list. */
int core_agency_known(const char *agencies_csv, const char *agency);
/* Usernames: 3–32 of [a-z0-9._-], starting with a letter or digit. */
int core_username_valid(const char *username);

/* Checks the fields of a new account (display_name may be NULL: the
 * username is used). Sets *roles. 0, or CORE_EINVAL with *field ("username",
 * "roles", "agency", "leads", "display_name") and *message (g_free). */
int core_user_check(const char *username, const char *display_name, const char *roles_csv,
                    const char *agency, const char *leads, const char *agencies, unsigned *roles,
                    char **field, char **message);

/* Argon2id hash string into out (crypto_pwhash_STRBYTES = 128 bytes). 0 or CORE_EINVAL/NOMEM. */
int core_password_hash(const char *password, char out[128]);
/* 0 when password matches hash, CORE_EINVAL otherwise; constant time. */
int core_password_verify(const char *hash, const char *password);
/* NULL when acceptable, else why not (static string). */
const char *core_password_weakness(const char *password);

typedef struct {
    int64_t id;
    char *username, *display_name, *agency, *leads; /* leads: csv of agencies, may be "" */
    unsigned roles;
    int disabled;
    int failed_logins;
    int64_t locked_until_ms;
    int64_t changed_at_ms;
    char *password_hash;
} core_user;

void core_user_free(core_user *u);

/* Registers the users table with the store (before core_store_open). */
void core_auth_register(core_store *st);

/* Reads. Any read connection. */
core_user *core_user_by_name(sqlite3 *db, const char *username);
core_user *core_user_by_id(sqlite3 *db, int64_t id);
/* All users ordered by username: GPtrArray of core_user* (freed with the array). */
GPtrArray *core_users_list(sqlite3 *db);

/* Writes, on the writer thread inside a core_store_write function. Each
 * writes its audit row (user.created, user.disabled, user.enabled; a failed
 * login is session.login or, when it locks, user.locked, outcome "failed"). */
int core_user_insert(core_txn *txn, const core_user *u, const char *actor, const char *source,
                     int64_t *id);
int core_user_set_disabled(core_txn *txn, int64_t id, int disabled, const char *actor,
                           const char *source);
/* Records a failed login; locks the account for lock_ms when failures reach
 * limit. *locked is set when this failure locked it. */
int core_user_login_failed(core_txn *txn, int64_t id, const char *source, int limit,
                           int64_t lock_ms, int *locked);
int core_user_login_ok(core_txn *txn, int64_t id);

#endif

/*
 * admin.c — `citycmd admin …`: user management and audit checks without the
 * server running (or beside it: SQLite serialises the two writers, and the
 * store re-reads its heads in every transaction).
 *
 * Passwords are read from standard input, never from the command line,
 * where other users could see them in the process list. Every change goes
 * through the store, so it is an event with an audit row like any other;
 * the actor is "admin:<login name>" and the source "local".
 */
#include "web.h"

#include "../core/auth.h"
#include "../core/core.h"
#include "../core/log.h"

#include <sodium.h>

#include <glib.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

typedef struct {
    const char *state, *username, *roles, *agency, *display_name, *leads, *config;
} admin_args;

typedef struct {
    core_loop *loop;
    core_bus *bus;
    core_store *store;
    char actor[96];
} admin_ctx;

static int usage(void)
{
    fprintf(stderr, "Usage: citycmd admin COMMAND --state DIR [OPTIONS]\n\n"
                    "  add-user     --username NAME --role ROLE[,ROLE] --agency AGENCY\n"
                    "               [--display-name TEXT] [--leads AGENCY[,AGENCY]]\n"
                    "               (the password is read from standard input)\n"
                    "  disable-user --username NAME   (ends the user's sessions)\n"
                    "  enable-user  --username NAME\n"
                    "  list-users\n"
                    "  verify-audit (exit 0 when the audit chain is intact, 1 when not)\n\n"
                    "Roles: call_taker, dispatcher, supervisor, field_unit, crew, leader, operator,"
                    " auditor.\n");
    return 2;
}

static int parse_args(int argc, char **argv, admin_args *a)
{
    struct {
        const char *flag;
        const char **dst;
    } map[] = {
        {"--state", &a->state},   {"--username", &a->username},         {"--role", &a->roles},
        {"--agency", &a->agency}, {"--display-name", &a->display_name}, {"--leads", &a->leads},
        {"--config", &a->config}};
    for (int i = 3; i < argc; i++) {
        size_t k = 0;
        while (k < G_N_ELEMENTS(map) && strcmp(argv[i], map[k].flag) != 0)
            k++;
        if (k == G_N_ELEMENTS(map) || i + 1 >= argc) {
            fprintf(stderr, "citycmd admin: %s '%s'\n",
                    k == G_N_ELEMENTS(map) ? "unknown option" : "missing value for", argv[i]);
            return CORE_EINVAL;
        }
        *map[k].dst = argv[++i];
    }
    if (!a->state) {
        fprintf(stderr, "citycmd admin: --state DIR is required\n");
        return CORE_EINVAL;
    }
    return 0;
}

static int open_store(admin_ctx *c, const char *dir)
{
    char *err = NULL;
    core_store_opts so = {dir, 1, 64, 100, NULL};
    c->loop = core_loop_new(1, 16);
    c->bus = core_bus_new();
    c->store = core_store_new(&so, c->loop, c->bus);
    web_register_migrations(c->store);
    if (core_store_open(c->store, &err)) {
        fprintf(stderr, "citycmd admin: %s\n", err);
        g_free(err);
        return 1;
    }
    struct passwd *pw = getpwuid(getuid());
    g_snprintf(c->actor, sizeof c->actor, "admin:%s", pw ? pw->pw_name : "unknown");
    return 0;
}

static void close_store(admin_ctx *c)
{
    if (c->loop)
        core_loop_stop_workers(c->loop);
    if (c->store)
        core_store_stop(c->store);
    if (c->loop)
        core_loop_drain(c->loop);
    core_store_free(c->store);
    core_loop_free(c->loop);
    core_bus_free(c->bus);
}

typedef struct {
    admin_ctx *c;
    core_user *user;
    int disabled;
    int64_t id;
    int rc, done;
} job;

static void job_done(int rc, GPtrArray *events, void *arg)
{
    job *j = arg;
    j->rc = rc;
    j->done = 1;
}

/* Runs one store write to completion. */
static int run_write(admin_ctx *c, core_write_fn fn, job *j)
{
    int rc = core_store_write(c->store, fn, job_done, j);
    if (rc)
        return rc;
    while (!j->done)
        g_main_context_iteration(core_loop_context(c->loop), TRUE);
    return j->rc;
}

static int insert_fn(core_txn *txn, void *arg)
{
    job *j = arg;
    return core_user_insert(txn, j->user, j->c->actor, "local", &j->id);
}

static int disable_fn(core_txn *txn, void *arg)
{
    job *j = arg;
    return core_user_set_disabled(txn, j->id, j->disabled, j->c->actor, "local");
}

/* Reads one line of password from stdin; without echo when it is a terminal. */
static char *read_password(const char *prompt)
{
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO);
    if (tty) {
        fprintf(stderr, "%s", prompt);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char buf[CORE_PASSWORD_MAX + 2];
    char *line = fgets(buf, sizeof buf, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (!line)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    char *pw = g_strdup(buf);
    sodium_memzero(buf, sizeof buf);
    return pw;
}

static int add_user(admin_ctx *c, const admin_args *a, const char *agencies)
{
    unsigned roles = 0;
    char *field = NULL, *message = NULL;
    if (core_user_check(a->username, a->display_name, a->roles, a->agency, a->leads, agencies,
                        &roles, &field, &message)) {
        fprintf(stderr, "citycmd admin: --%s: %s\n",
                strcmp(field, "roles") == 0          ? "role"
                : strcmp(field, "display_name") == 0 ? "display-name"
                                                     : field,
                message);
        g_free(field);
        g_free(message);
        return 2;
    }
    char *pw = read_password("Password: ");
    const char *weak = pw ? core_password_weakness(pw) : "no password on standard input";
    if (weak) {
        fprintf(stderr, "citycmd admin: %s\n", weak);
        g_free(pw);
        return 2;
    }
    if (open_store(c, a->state))
        return 1;
    core_user u = {0};
    char hash[128];
    u.username = (char *)a->username;
    u.display_name = (char *)(a->display_name ? a->display_name : a->username);
    u.agency = (char *)a->agency;
    u.leads = (char *)(a->leads ? a->leads : "");
    u.roles = roles;
    int rc = core_password_hash(pw, hash);
    sodium_memzero(pw, strlen(pw));
    g_free(pw);
    if (rc) {
        fprintf(stderr, "citycmd admin: cannot hash the password: %s\n", core_strerror(rc));
        return 1;
    }
    u.password_hash = hash;
    job j = {.c = c, .user = &u};
    rc = run_write(c, insert_fn, &j);
    if (rc == CORE_ECONFLICT) {
        fprintf(stderr, "citycmd admin: user '%s' already exists\n", a->username);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "citycmd admin: %s\n", core_strerror(rc));
        return 1;
    }
    printf("added user %s (id %" G_GINT64_FORMAT ")\n", a->username, j.id);
    return 0;
}

typedef struct {
    const char *username;
    core_user *user;
    GPtrArray *list;
    int rc;
    int64_t rows, bad;
    char *why;
} reader;

static void find_user(sqlite3 *db, void *arg)
{
    reader *r = arg;
    r->user = core_user_by_name(db, r->username);
}

static int set_disabled(admin_ctx *c, const admin_args *a, int disabled)
{
    if (!a->username) {
        fprintf(stderr, "citycmd admin: --username is required\n");
        return 2;
    }
    if (open_store(c, a->state))
        return 1;
    reader r = {.username = a->username};
    core_store_load(c->store, find_user, &r);
    if (!r.user) {
        fprintf(stderr, "citycmd admin: no user '%s'\n", a->username);
        return 1;
    }
    job j = {.c = c, .id = r.user->id, .disabled = disabled};
    core_user_free(r.user);
    int rc = run_write(c, disable_fn, &j);
    if (rc) {
        fprintf(stderr, "citycmd admin: %s\n", core_strerror(rc));
        return 1;
    }
    printf("%s user %s\n", disabled ? "disabled" : "enabled", a->username);
    return 0;
}

static void read_list(sqlite3 *db, void *arg)
{
    ((reader *)arg)->list = core_users_list(db);
}

static int list_users(admin_ctx *c, const admin_args *a)
{
    if (open_store(c, a->state))
        return 1;
    reader r = {0};
    core_store_load(c->store, read_list, &r);
    printf("%-4s %-20s %-24s %-12s %-30s %s\n", "id", "username", "name", "agency", "roles",
           "state");
    int64_t now = core_now_ms();
    for (guint i = 0; r.list && i < r.list->len; i++) {
        core_user *u = r.list->pdata[i];
        char *roles = core_roles_format(u->roles);
        printf("%-4" G_GINT64_FORMAT " %-20s %-24s %-12s %-30s %s\n", u->id, u->username,
               u->display_name, u->agency, roles,
               u->disabled                ? "disabled"
               : u->locked_until_ms > now ? "locked"
                                          : "active");
        g_free(roles);
    }
    if (r.list)
        g_ptr_array_free(r.list, TRUE);
    return 0;
}

static void read_verify(sqlite3 *db, void *arg)
{
    reader *r = arg;
    r->rc = core_audit_verify(db, &r->rows, &r->bad, &r->why);
}

static int verify_audit(admin_ctx *c, const admin_args *a)
{
    if (open_store(c, a->state))
        return 1;
    reader r = {0};
    core_store_load(c->store, read_verify, &r);
    if (r.rc) {
        printf("audit trail BROKEN at row %" G_GINT64_FORMAT ": %s\n", r.bad,
               r.why ? r.why : core_strerror(r.rc));
        g_free(r.why);
        return 1;
    }
    printf("audit trail intact: %" G_GINT64_FORMAT " rows\n", r.rows);
    return 0;
}

int web_admin_main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    admin_args a = {0};
    if (parse_args(argc, argv, &a))
        return 2;
    core_log_set_level(CORE_LOG_WARN);
    if (sodium_init() < 0)
        return 1;
    core_config cfg = {0};
    char *err = NULL;
    char *cargv[] = {argv[0], (char *)"--config", (char *)a.config, NULL};
    if (core_config_parse(&cfg, a.config ? 3 : 1, cargv, &err) < 0) {
        fprintf(stderr, "citycmd admin: %s\n", err);
        g_free(err);
        return 2;
    }
    admin_ctx c = {0};
    int rc;
    const char *cmd = argv[2];
    if (!strcmp(cmd, "add-user"))
        rc = add_user(&c, &a, cfg.agencies);
    else if (!strcmp(cmd, "disable-user"))
        rc = set_disabled(&c, &a, 1);
    else if (!strcmp(cmd, "enable-user"))
        rc = set_disabled(&c, &a, 0);
    else if (!strcmp(cmd, "list-users"))
        rc = list_users(&c, &a);
    else if (!strcmp(cmd, "verify-audit"))
        rc = verify_audit(&c, &a);
    else
        rc = usage();
    close_store(&c);
    core_config_clear(&cfg);
    return rc;
}

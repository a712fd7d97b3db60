/*
 * dispatch.h — the command domain.
 *
 * So far: the duty journal (值班日志), the command centre's running log of
 * notes, shift handovers and instructions. Calls, incidents, units and
 * response plans arrive here as those capabilities land.
 *
 * All functions run on the loop thread; results come back through callbacks
 * on the loop thread after the store has committed (writes) or read (queries).
 */
#ifndef CITYCMD_DISPATCH_H
#define CITYCMD_DISPATCH_H

#include "../core/store.h"

#include <jansson.h>

#define DISP_JOURNAL_TEXT_MAX 4000

/* rc is 0 or CORE_E*; result (may be NULL) is owned by the callee. */
typedef void (*disp_json_done)(int rc, json_t *result, void *arg);

/* Registers the journal's tables with the store (before core_store_open). */
void disp_journal_register(core_store *st);

/* Validates body {"text": "...", "kind": "note|handover|instruction"} and queues the entry.
 * The entry belongs to `agency` (the author's); source (the client's address,
 * or "local") goes to the audit trail.
 * Returns CORE_EINVAL with *field and *message (g_free) naming the problem, CORE_EBUSY,
 * CORE_ESTOPPED, or 0; done gets {"id":…,"seq":…,"at":…,"kind":…,"text":…,"author":…}. */
int disp_journal_add(core_store *st, const json_t *body, const char *actor, const char *agency,
                     const char *source, disp_json_done done, void *arg, char **field,
                     char **message);
/* Entries of the given agencies (NULL-terminated; NULL: all), newest first, ids below
 * `before` (0: from the newest), at most limit (1..500). done gets an array. */
int disp_journal_list(core_store *st, char **agencies, int64_t before, int limit,
                      disp_json_done done, void *arg);
/* done gets the entry (whose "agency" the caller authorizes), or rc CORE_ENOTFOUND. */
int disp_journal_get(core_store *st, int64_t id, disp_json_done done, void *arg);

#endif

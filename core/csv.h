/*
 * csv.h — reading CSV text record by record (RFC 4180: quoted fields,
 * doubled quotes, line breaks inside quotes, CRLF or LF), for the files
 * the registries import (units, cameras). Pure; any thread.
 */
#ifndef CITYCMD_CORE_CSV_H
#define CITYCMD_CORE_CSV_H

#include <glib.h>

typedef struct {
    const char *p, *end; /* what is left to read */
    int line;            /* the line p is on, from 1 */
} core_csv;

/* Reads one record into fields (g_free'd strings; the array is emptied
 * first). 1, 0 at the end of the text, -1 when a quoted field is not
 * closed properly. */
int core_csv_record(core_csv *c, GPtrArray *fields);

#endif

/*
 * csv.c — CSV records (csv.h). A record ends at an unquoted LF (a CR
 * before it is dropped); a quoted field may hold commas, line breaks and
 * doubled quotes, and must be followed by a comma or the end of the
 * record. The line counter follows the text, so callers can name the line
 * a record started on.
 */
#include "csv.h"

/* One field into out; 0, or -1 when a quoted field is not closed properly. */
static int field(core_csv *c, GString *out)
{
    g_string_truncate(out, 0);
    if (c->p < c->end && *c->p == '"') {
        c->p++;
        for (;;) {
            if (c->p >= c->end)
                return -1;
            if (*c->p == '"') {
                if (c->p + 1 < c->end && c->p[1] == '"') {
                    g_string_append_c(out, '"');
                    c->p += 2;
                    continue;
                }
                c->p++;
                break;
            }
            if (*c->p == '\n')
                c->line++;
            g_string_append_c(out, *c->p++);
        }
        return c->p >= c->end || *c->p == ',' || *c->p == '\r' || *c->p == '\n' ? 0 : -1;
    }
    while (c->p < c->end && *c->p != ',' && *c->p != '\r' && *c->p != '\n')
        g_string_append_c(out, *c->p++);
    return 0;
}

int core_csv_record(core_csv *c, GPtrArray *fields)
{
    g_ptr_array_set_size(fields, 0);
    if (c->p >= c->end)
        return 0;
    GString *f = g_string_new("");
    for (;;) {
        if (field(c, f)) {
            g_string_free(f, TRUE);
            return -1;
        }
        g_ptr_array_add(fields, g_strdup(f->str));
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '\r')
            c->p++;
        if (c->p < c->end && *c->p == '\n')
            c->p++;
        c->line++;
        break;
    }
    g_string_free(f, TRUE);
    return 1;
}

/*
 * export.c — an incident for other systems: NENA EIDO JSON (the
 * Emergency Incident Data Object, NENA-STA-024) for exchange with other
 * centres, and an OASIS CAP 1.2 alert for a public warning.
 *
 * Both are made from the incident as the API returns it (with its calls,
 * timeline and links), so what is exported is exactly what is on record.
 */
#include "incident.h"

#include "../core/core.h"

#include <glib.h>
#include <string.h>

static const char *cap_category(const char *family)
{
    static const char *const map[][2] = {
        {"fire", "Fire"},       {"medical", "Health"}, {"traffic", "Transport"},
        {"police", "Security"}, {"utility", "Infra"},  {"hotline", "Other"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(map); i++)
        if (family && strcmp(map[i][0], family) == 0)
            return map[i][1];
    return "Other";
}

/* EIDO's link kinds for ours. */
static const char *eido_link(const char *kind)
{
    return strcmp(kind, "replaced_by") == 0  ? "REPLACED_BY"
           : strcmp(kind, "replaces") == 0   ? "REPLACING"
           : strcmp(kind, "split_from") == 0 ? "SPLIT_FROM"
                                             : "SPLIT_INTO";
}

static const char *eido_status(const char *status)
{
    return strcmp(status, "closed") == 0 || strcmp(status, "cancelled") == 0 ||
                   strcmp(status, "merged") == 0
               ? "Closed"
           : strcmp(status, "new") == 0 ? "Pending"
                                        : "Active";
}

json_t *disp_incident_eido(const json_t *inc, const char *origin)
{
    const char *id = json_string_value(json_object_get(inc, "id"));
    const char *updated = json_string_value(json_object_get(inc, "updated_at"));
    json_t *loc = json_object_get(inc, "location");
    char *tracking = g_strdup_printf("urn:emergency:uid:incidentid:%s:%s", id, origin);
    char *message = g_strdup_printf("urn:emergency:uid:eido:%s:%s:%s", id, origin, updated);
    json_t *links = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(inc, "links"), i, v)
    {
        char *other = g_strdup_printf("urn:emergency:uid:incidentid:%s:%s",
                                      json_string_value(json_object_get(v, "incident")), origin);
        json_array_append_new(links,
                              json_pack("{ssss}", "linkType",
                                        eido_link(json_string_value(json_object_get(v, "kind"))),
                                        "incidentTrackingIdentifier", other));
        g_free(other);
    }
    json_t *agencies = json_array();
    char **all = disp_incident_agencies(inc);
    for (char **a = all; *a; a++)
        json_array_append_new(agencies,
                              json_pack("{sssb}", "agencyIdentifier", *a, "primary", a == all));
    g_strfreev(all);
    json_t *calls = json_array();
    json_array_foreach(json_object_get(inc, "calls"), i, v)
    {
        json_t *cl = json_object_get(v, "location");
        char *lref = g_strdup_printf("L-%s", json_string_value(json_object_get(v, "id")));
        json_array_append_new(
            calls,
            json_pack("{sOsOsOsOsOsOss}", "componentIdentifier", json_object_get(v, "id"),
                      "callStartTimeStamp", json_object_get(v, "received_at"), "callbackNumber",
                      json_object_get(v, "caller"), "serviceLine", json_object_get(v, "line"),
                      "callTypeDescription", json_object_get(v, "category"), "callNotes",
                      json_object_get(v, "text"), "locationReference", lref));
        g_free(lref);
        (void)cl;
    }
    json_t *notes = json_array();
    json_array_foreach(json_object_get(inc, "timeline"), i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "type")), "incident.note") != 0)
            continue;
        json_array_append_new(notes,
                              json_pack("{sOsOsO}", "notesTimeStamp", json_object_get(v, "at"),
                                        "notesAuthor", json_object_get(v, "actor"), "notesText",
                                        json_object_get(json_object_get(v, "data"), "text")));
    }
    json_t *out = json_pack(
        "{sssOs{sssssOs[O]sssIsOssso}s[{sssOs{sOsO}}]sososos[]}", "eidoMessageIdentifier", message,
        "lastUpdateTimeStamp", json_object_get(inc, "updated_at"), "incidentComponent",
        "componentIdentifier", id, "incidentTrackingIdentifier", tracking, "incidentStartTimeStamp",
        json_object_get(inc, "opened_at"), "incidentTypeCommonRegistryText",
        json_object_get(inc, "type"), "incidentStatusCommonRegistryText",
        eido_status(json_string_value(json_object_get(inc, "status"))),
        "incidentCommonPriorityNumber", json_integer_value(json_object_get(inc, "priority")),
        "incidentLocalStatus", json_object_get(inc, "status"), "locationReference", "L-incident",
        "incidentLinks", links, "locationComponent", "componentIdentifier", "L-incident",
        "civicAddressText", json_object_get(inc, "address"), "geoLocation", "latitude",
        json_object_get(loc, "lat"), "longitude", json_object_get(loc, "lon"), "agencyComponent",
        agencies, "callComponent", calls, "notesComponent", notes, "unitComponent");
    g_free(tracking);
    g_free(message);
    return out;
}

/* CAP times: second precision with an explicit offset. */
static void cap_time(const char *iso, char out[32])
{
    GDateTime *t = iso ? g_date_time_new_from_iso8601(iso, NULL) : NULL;
    if (!t)
        t = g_date_time_new_now_utc();
    GDateTime *u = g_date_time_to_utc(t);
    char *s = g_date_time_format(u, "%Y-%m-%dT%H:%M:%S+00:00");
    g_strlcpy(out, s, 32);
    g_free(s);
    g_date_time_unref(u);
    g_date_time_unref(t);
}

static void element(GString *x, const char *indent, const char *name, const char *text)
{
    char *esc = g_markup_escape_text(text ? text : "", -1);
    g_string_append_printf(x, "%s<%s>%s</%s>\n", indent, name, esc, name);
    g_free(esc);
}

char *disp_incident_cap(const json_t *inc, const char *sender, const char *headline,
                        const char *description, const char *instruction, double radius_km)
{
    const char *id = json_string_value(json_object_get(inc, "id"));
    const char *family = json_string_value(json_object_get(inc, "family"));
    int prio = (int)json_integer_value(json_object_get(inc, "priority"));
    json_t *loc = json_object_get(inc, "location");
    char sent[32], identifier[128], circle[96];
    cap_time(json_string_value(json_object_get(inc, "updated_at")), sent);
    g_snprintf(identifier, sizeof identifier, "%s-%s-%s", sender, id, sent);
    g_ascii_formatd(circle, 40, "%.6f", json_number_value(json_object_get(loc, "lat")));
    g_strlcat(circle, ",", sizeof circle);
    char num[40];
    g_strlcat(
        circle,
        g_ascii_formatd(num, sizeof num, "%.6f", json_number_value(json_object_get(loc, "lon"))),
        sizeof circle);
    g_strlcat(circle, " ", sizeof circle);
    g_strlcat(circle, g_ascii_formatd(num, sizeof num, "%.3f", radius_km), sizeof circle);
    static const char *const urgency[] = {"Immediate", "Immediate", "Expected",
                                          "Expected",  "Future",    "Future"};
    static const char *const severity[] = {"Extreme",  "Severe", "Moderate",
                                           "Moderate", "Minor",  "Minor"};
    int p = CLAMP(prio, 1, 5);
    GString *x = g_string_new("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                              "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\n");
    element(x, "  ", "identifier", identifier);
    element(x, "  ", "sender", sender);
    element(x, "  ", "sent", sent);
    element(x, "  ", "status", "Actual");
    element(x, "  ", "msgType", "Alert");
    element(x, "  ", "scope", "Public");
    g_string_append(x, "  <info>\n");
    element(x, "    ", "language", "en");
    element(x, "    ", "category", cap_category(family));
    element(x, "    ", "event", json_string_value(json_object_get(inc, "type")));
    element(x, "    ", "urgency", urgency[p]);
    element(x, "    ", "severity", severity[p]);
    element(x, "    ", "certainty",
            json_integer_value(json_object_get(inc, "callers")) > 1 ? "Observed" : "Likely");
    element(x, "    ", "senderName", sender);
    element(x, "    ", "headline", headline);
    if (description && *description)
        element(x, "    ", "description", description);
    if (instruction && *instruction)
        element(x, "    ", "instruction", instruction);
    g_string_append(x, "    <area>\n");
    element(x, "      ", "areaDesc", json_string_value(json_object_get(inc, "address")));
    element(x, "      ", "circle", circle);
    g_string_append(x, "    </area>\n  </info>\n</alert>\n");
    return g_string_free(x, FALSE);
}

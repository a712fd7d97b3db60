/*
 * ws.c — the /ws WebSocket: connections, envelope messages, subscriptions
 * (the send queue is ws_queue.c, live video ws_video.c).
 *
 * Subscribing with "after": N replays committed events after N from the store
 * before live ones; live events that arrive during the replay wait in the same
 * bounded queue, so nothing is lost or reordered across a reconnect.
 *
 * The "incidents" topic serves the live board (dispatch/board.c): a snapshot
 * of the open incidents the client may see inside its viewport, then each
 * change as the fields it changed (or the whole new state when the client
 * did not hold the incident in sync), keyed by incident so a slow screen
 * gets only the newest, and a removal when one ends or leaves its view.
 *
 * Clients are refcounted: the connection holds one reference, a replay read in
 * flight another. Loop thread only.
 */
#include "ws_client.h"

#include "../core/core.h"
#include "../core/log.h"
#include "../dispatch/incident.h"

#include <sodium.h>

#include <math.h>
#include <string.h>
#include <sys/socket.h>

#define REPLAY_MAX 1000

typedef struct {
    ws_client *c;
    char token[100]; /* from the upgrade request, until ESTABLISHED */
} ws_pss;
G_STATIC_ASSERT(sizeof(ws_pss) <= WEB_PSS_SIZE);

static uint64_t next_client_id = 1;

static GBytes *event_frame(core_event *ev)
{
    char *s = g_strdup_printf("{\"type\":\"event\",\"data\":%s}", core_event_json(ev));
    GBytes *b = ws_frame_bytes(s, strlen(s));
    g_free(s);
    return b;
}

/* ---- broadcast ---- */

static void on_bus_event(core_event *ev, void *user)
{
    web_server *srv = user;
    GBytes *frame = NULL;
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (!c->sub_events || c->closing || !c->session || !core_may_see_event(c->session, ev))
            continue;
        if (!frame)
            frame = event_frame(ev);
        if (c->replaying) {
            ws_enqueue(c, frame, 0, Q_HOLD);
        } else if (ev->seq > c->last_sent_seq) {
            c->last_sent_seq = ev->seq;
            ws_enqueue(c, frame, 0, Q_SOON);
        }
    }
    if (frame)
        g_bytes_unref(frame);
}

/* ---- replay after a reconnect ---- */

typedef struct {
    ws_client *c;
    int64_t after;
    json_t *re;
} replay;

static int64_t frame_seq(const out_msg *m)
{
    /* Held frames are events: {"type":"event","data":{"seq":N,… */
    const char *s = (const char *)g_bytes_get_data(m->buf, NULL) + LWS_PRE;
    const char *p = strstr(s, "\"seq\":");
    return p ? g_ascii_strtoll(p + 6, NULL, 10) : 0;
}

static void replay_done(GPtrArray *events, void *p)
{
    replay *r = p;
    ws_client *c = r->c;
    if (c->wsi && !c->closing) {
        c->replaying = 0;
        if (events->len > REPLAY_MAX) {
            ws_send_error(c, r->re, "resync_required",
                          "more than %d events were missed; reload the state over the API",
                          REPLAY_MAX);
            g_ptr_array_set_size(events, 0);
        }
        c->last_sent_seq = r->after;
        for (guint i = 0; i < events->len; i++) {
            core_event *ev = events->pdata[i];
            c->last_sent_seq = ev->seq;
            if (!c->session || !core_may_see_event(c->session, ev))
                continue;
            GBytes *f = event_frame(ev);
            ws_enqueue(c, f, 0, 0);
            g_bytes_unref(f);
        }
        out_msg *m;
        while ((m = ws_q_pop(&c->held))) {
            c->held_bytes -= ws_msg_len(m);
            int64_t seq = frame_seq(m);
            if (seq > c->last_sent_seq) {
                c->last_sent_seq = seq;
                ws_enqueue(c, m->buf, 0, 0);
            }
            ws_out_msg_free(m);
        }
    }
    json_decref(r->re);
    ws_client_unref(c);
    g_free(r);
}

/* ---- incoming messages ---- */

/* {"type":"recommendations","data":{"incident":"I-1" or null}}: follow
 * that incident's recommendations (ws_recommend.c), the first at once. */
static void on_recommendations(ws_client *c, web_envelope *env)
{
    const char *code = NULL, *why = NULL;
    json_t *now = ws_rec_follow(c->srv, &c->rec, c->session, env->data, &code, &why);
    if (code) {
        ws_send_error(c, env->id, code, "%s", why);
        return;
    }
    ws_send_text(c, web_envelope_reply("recommendations", env->id, now ? now : json_null()));
}

/* ---- subscriptions ---- */

#define TOPIC_EVENTS 1
#define TOPIC_INCIDENTS 2
#define TOPIC_UNITS 4

static void on_subscribe(ws_client *c, web_envelope *env, int on)
{
    json_t *topics = json_object_get(env->data, "topics");
    if (!json_is_array(topics) || json_array_size(topics) == 0) {
        ws_send_error(c, env->id, "invalid_message", "\"data.topics\" must be a non-empty array");
        return;
    }
    web_server *srv = c->srv;
    int want = 0;
    size_t i;
    json_t *t;
    json_array_foreach(topics, i, t)
    {
        const char *name = json_string_value(t);
        if (name && strcmp(name, "events") == 0 && srv->deps.bus)
            want |= TOPIC_EVENTS;
        else if (name && strcmp(name, "incidents") == 0 && srv->deps.incidents)
            want |= TOPIC_INCIDENTS;
        else if (name && strcmp(name, "units") == 0 && srv->deps.avl)
            want |= TOPIC_UNITS;
        else {
            ws_send_error(c, env->id, "unknown_topic",
                          "unknown topic (known: events, incidents, units)");
            return;
        }
    }
    core_action need[3] = {CORE_ACT_EVENTS_READ, CORE_ACT_INCIDENTS_READ, CORE_ACT_UNITS_READ};
    for (int k = 0; k < 3 && on; k++) {
        if ((want & (1 << k)) && !core_may(c->session, need[k], NULL)) {
            const char *name = core_action_name(need[k]);
            core_sessions_audit_denied(srv->deps.sessions, c->session->username, name,
                                       "ws/subscribe", c->peer, "", NULL, NULL);
            ws_send_error(c, env->id, "forbidden", "your role does not allow %s", name);
            return;
        }
    }
    int64_t last = core_bus_last_seq(srv->deps.bus);
    json_t *after = json_object_get(env->data, "after");
    if (on && after && (!json_is_integer(after) || json_integer_value(after) < 0)) {
        ws_send_error(c, env->id, "invalid_message", "\"data.after\" must be a sequence number");
        return;
    }
    ws_view v;
    if (on && ws_parse_view(c, env->id, env->data, &v) != 0)
        return;
    ws_send_text(
        c, web_envelope_reply(on ? "subscribed" : "unsubscribed", env->id,
                              json_pack("{sOsI}", "topics", topics, "seq", (json_int_t)last)));
    if (on && (want & (TOPIC_INCIDENTS | TOPIC_UNITS)))
        ws_set_view(c, &v);
    if (want & TOPIC_INCIDENTS) {
        c->sub_incidents = on;
        ws_board_unshow_all(c);
        if (on)
            ws_board_snapshot(c);
    }
    if (want & TOPIC_UNITS) {
        c->sub_units = on;
        ws_units_view_leave(c->srv, &c->uview);
        if (on)
            ws_send_units_snapshot(c);
    }
    if (!(want & TOPIC_EVENTS))
        return;
    c->sub_events = on;
    if (!on || !after || json_integer_value(after) >= last) {
        c->last_sent_seq = last;
        return;
    }
    replay *r = g_new0(replay, 1);
    r->c = c;
    r->after = json_integer_value(after);
    r->re = env->id ? json_incref(env->id) : NULL;
    c->replaying = 1;
    c->refs++;
    if (core_store_read_events(srv->deps.store, r->after, REPLAY_MAX + 1, replay_done, r) != 0) {
        c->replaying = 0;
        c->refs--;
        json_decref(r->re);
        g_free(r);
        ws_send_error(c, env->id, "busy", "cannot replay now; try again");
    }
}

/* Re-checks the connection's session (refreshing its idle clock); closes
 * with 1008 when it has ended. Returns the session or NULL. */
static core_session *recheck_session(ws_client *c)
{
    const char *why;
    c->session = core_sessions_check(c->srv->deps.sessions, c->token, &why);
    if (!c->session)
        ws_close_gracefully(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "session ended", 1);
    return c->session;
}

static void video_send_text(void *client, char *text)
{
    ws_send_text(client, text);
}

static void video_write_now(void *client)
{
    ws_write_now(client);
}

static const ws_video_ops video_ops = {video_send_text, video_write_now};

/* video.watch / video.unwatch (ws_video.c): the tiles start with the first. */
static void on_video(ws_client *c, web_envelope *env)
{
    char **readable = core_readable_agencies(c->session, CORE_ACT_CAMERAS_READ);
    int none = readable && !*readable; /* NULL: every agency */
    g_strfreev(readable);
    if (none) {
        ws_send_error(c, env->id, "forbidden", "watching cameras needs cameras.read");
        return;
    }
    if (!c->video)
        c->video = ws_video_new(c->srv, &video_ops, c);
    ws_video_message(c->video, c->session, env);
}

static void handle_message(ws_client *c)
{
    if (!recheck_session(c))
        return;
    web_envelope env;
    const char *code;
    char *msg = NULL;
    if (web_envelope_parse((const char *)c->rx->data, c->rx->len, &env, &code, &msg) != 0) {
        ws_send_error(c, NULL, code, "%s", msg);
        g_free(msg);
        return;
    }
    if (strcmp(env.type, "ping") == 0) {
        char now[32];
        core_iso8601(core_now_ms(), now, sizeof now);
        ws_send_text(c, web_envelope_reply("pong", env.id, json_pack("{ss}", "server_time", now)));
    } else if (strcmp(env.type, "subscribe") == 0) {
        on_subscribe(c, &env, 1);
    } else if (strcmp(env.type, "unsubscribe") == 0) {
        on_subscribe(c, &env, 0);
    } else if (strcmp(env.type, "viewport") == 0) {
        ws_on_viewport(c, &env);
    } else if (strcmp(env.type, "recommendations") == 0) {
        on_recommendations(c, &env);
    } else if (strcmp(env.type, "video.watch") == 0 || strcmp(env.type, "video.unwatch") == 0) {
        on_video(c, &env);
    } else {
        ws_send_error(c, env.id, "unknown_type", "unknown message type '%s'", env.type);
    }
    web_envelope_clear(&env);
}

/* Token bucket: --ws-rate a second, bursts of twice that. Returns 0 to drop the message. */
static int within_rate(ws_client *c)
{
    double rate = c->srv->cfg->ws_rate;
    int64_t now = core_mono_us();
    c->tokens = MIN(2 * rate, c->tokens + rate * (double)(now - c->refill_us) / 1e6);
    c->refill_us = now;
    c->tokens -= 1;
    if (c->tokens >= 0) {
        c->rate_told = 0;
        return 1;
    }
    core_metric_add(c->srv->m_ws_rate, 1);
    if (c->tokens < -2 * rate) {
        /* Stop reading the flood first: closing a socket with unread input
         * makes the kernel send RST, which can destroy the close frame. */
        lws_rx_flow_control(c->wsi, 0);
        c->hold_open = 1;
        ws_close_gracefully(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded", 1);
    } else if (!c->rate_told) { /* once per burst, not once per message */
        c->rate_told = 1;
        ws_send_error(c, NULL, "rate_limited", "more than %d messages a second", (int)rate);
    }
    return 0;
}

static int on_receive(struct lws *wsi, ws_client *c, const void *in, size_t len)
{
    web_server *srv = c->srv;
    if (c->closing)
        return 0;
    if (c->rx->len + len > (size_t)srv->cfg->ws_max_message) {
        core_metric_add(srv->m_ws_toobig, 1);
        log_info("ws.too_large", "client=%" G_GUINT64_FORMAT " limit=%d", c->id,
                 srv->cfg->ws_max_message);
        static const char why[] = "message too large";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                         sizeof why - 1);
        return -1;
    }
    g_byte_array_append(c->rx, in, (guint)len);
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return 0;
    core_metric_add(srv->m_ws_in, 1);
    if (within_rate(c)) {
        if (lws_frame_is_binary(wsi))
            ws_send_error(c, NULL, "binary_not_accepted", "send JSON text messages");
        else
            handle_message(c);
    }
    g_byte_array_set_size(c->rx, 0);
    return 0;
}

/* The bearer token of an upgrade: "bearer.TOKEN" among the offered
 * subprotocols (what a browser can send), or an Authorization header. */
static void upgrade_token(struct lws *wsi, char *out, size_t len)
{
    char buf[512];
    out[0] = '\0';
    if (lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_PROTOCOL) > 0) {
        char **parts = g_strsplit(buf, ",", -1);
        for (char **p = parts; *p; p++) {
            char *t = g_strstrip(*p);
            if (g_str_has_prefix(t, "bearer."))
                g_strlcpy(out, t + 7, len);
        }
        g_strfreev(parts);
    }
    if (!out[0] && lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        g_ascii_strncasecmp(buf, "Bearer ", 7) == 0)
        g_strlcpy(out, g_strstrip(buf + 7), len);
}

/* A browser's Origin must be this server itself or on --allowed-origins;
 * clients that send no Origin (not browsers) are not subject to it. */
static int origin_allowed(struct lws *wsi, web_server *srv)
{
    char origin[256], host[256], self[300];
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0)
        return 1;
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) > 0) {
        g_snprintf(self, sizeof self, "http://%s", host);
        if (g_ascii_strcasecmp(origin, self) == 0)
            return 1;
        g_snprintf(self, sizeof self, "https://%s", host);
        if (g_ascii_strcasecmp(origin, self) == 0)
            return 1;
    }
    int ok = 0;
    char **allowed =
        g_strsplit(srv->cfg->allowed_origins ? srv->cfg->allowed_origins : "", ",", -1);
    for (char **a = allowed; *a && !ok; a++) {
        const char *o = g_strstrip(*a);
        ok = *o && g_ascii_strcasecmp(o, origin) == 0;
    }
    g_strfreev(allowed);
    return ok;
}

static int filter_connection(struct lws *wsi, web_server *srv, ws_pss *pss)
{
    char uri[64] = "", peer[64] = "";
    lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    lws_get_peer_simple(wsi, peer, sizeof peer);
    const char *why = NULL, *session_why = NULL;
    int status = HTTP_STATUS_FORBIDDEN;
    upgrade_token(wsi, pss->token, sizeof pss->token);
    int path_ok = strcmp(uri, "/ws") == 0, origin_ok = path_ok && origin_allowed(wsi, srv);
    core_session *s = NULL;
    if (origin_ok)
        s = core_sessions_check(srv->deps.sessions, pss->token, &session_why);
    if (!path_ok) {
        why = "not_found";
        status = HTTP_STATUS_NOT_FOUND;
    } else if (!origin_ok) {
        why = "origin_not_allowed";
        core_sessions_audit_denied(srv->deps.sessions, "", "ws.connect", "/ws", peer,
                                   "origin not allowed", NULL, NULL);
    } else if (!s) {
        why = "unauthorized";
        status = HTTP_STATUS_UNAUTHORIZED;
        if (pss->token[0])
            core_sessions_audit_denied(srv->deps.sessions, "", "ws.connect", "/ws", peer,
                                       session_why, NULL, NULL);
    } else if (srv->draining) {
        why = "shutting_down";
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
    } else if (srv->ws_count >= srv->cfg->ws_max_clients) {
        why = "too_many_clients";
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
    }
    if (!why)
        return 0;
    sodium_memzero(pss->token, sizeof pss->token);
    core_metric_add(srv->m_ws_rejected, 1);
    log_info("ws.rejected", "uri=%s reason=%s", uri, why);
    lws_return_http_status(wsi, (unsigned)status, why);
    return 1;
}

static void on_established(struct lws *wsi, web_server *srv, ws_pss *pss)
{
    ws_client *c = g_new0(ws_client, 1);
    c->srv = srv;
    c->wsi = wsi;
    c->refs = 1;
    c->id = next_client_id++;
    c->rx = g_byte_array_new();
    c->tokens = 2.0 * srv->cfg->ws_rate;
    c->refill_us = core_mono_us();
    lws_get_peer_simple(wsi, c->peer, sizeof c->peer);
    /* A small kernel buffer makes a slow screen slow at once, so the
     * coalescing of its queue keeps what it gets fresh. */
    if (srv->cfg->ws_send_buffer > 0) {
        int sz = srv->cfg->ws_send_buffer;
        setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    c->keyed = g_hash_table_new(g_direct_hash, g_direct_equal);
    c->slot = ws_board_take_slot(srv);
    ws_units_view_init(&c->uview, &c->has_bbox, c->bbox, &c->session);
    const char *why;
    c->token = g_strdup(pss->token);
    sodium_memzero(pss->token, sizeof pss->token);
    c->session = core_sessions_check(srv->deps.sessions, c->token, &why);
    pss->c = c;
    srv->ws_clients = g_list_prepend(srv->ws_clients, c);
    if (!c->session) /* ended between the upgrade and now */
        ws_close_gracefully(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "session ended", 1);
    srv->ws_count++;
    log_debug("ws.open", "client=%" G_GUINT64_FORMAT " peer=%s", c->id, c->peer);
    ws_send_text(c, web_envelope_reply("hello", NULL,
                                       json_pack("{sssssIsisisi}", "server", "citycmd", "version",
                                                 CITYCMD_VERSION, "seq",
                                                 (json_int_t)core_bus_last_seq(srv->deps.bus),
                                                 "max_message", srv->cfg->ws_max_message,
                                                 "ping_interval", srv->cfg->ws_ping_interval,
                                                 "idle_timeout", srv->cfg->ws_idle_timeout)));
}

static void on_closed(web_server *srv, ws_pss *pss)
{
    ws_client *c = pss->c;
    if (!c)
        return;
    pss->c = NULL;
    srv->ws_clients = g_list_remove(srv->ws_clients, c);
    srv->ws_count--;
    c->wsi = NULL;
    ws_drop_queue(c);
    ws_board_unshow_all(c);
    ws_board_give_slot(srv, c->slot);
    ws_units_view_clear(srv, &c->uview);
    ws_rec_clear(&c->rec);
    ws_video_free(c->video);
    c->video = NULL;
    log_debug("ws.close", "client=%" G_GUINT64_FORMAT, c->id);
    ws_client_unref(c);
}

int web_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    ws_pss *pss = user;
    struct lws_context *ctx = lws_get_context(wsi);
    web_server *srv = ctx ? lws_context_user(ctx) : NULL;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter_connection(wsi, srv, pss);
    case LWS_CALLBACK_ESTABLISHED:
        on_established(wsi, srv, pss);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return pss->c ? on_receive(wsi, pss->c, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return pss->c ? ws_on_writeable(wsi, pss->c) : 0;
    case LWS_CALLBACK_CLOSED:
        on_closed(srv, pss);
        return 0;
    default:
        return 0;
    }
}

static double clients_metric(void *user)
{
    return ((web_server *)user)->ws_count;
}

static double queued_metric(void *user)
{
    size_t total = 0;
    for (GList *l = ((web_server *)user)->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        total += c->out_bytes + c->held_bytes;
    }
    return (double)total;
}

void web_ws_init(web_server *srv)
{
    srv->m_ws_in =
        core_counter("citycmd_ws_messages_received_total", "WebSocket messages received.", "");
    srv->m_ws_out = core_counter("citycmd_ws_messages_sent_total", "WebSocket messages sent.", "");
    srv->m_ws_slow = core_counter("citycmd_ws_disconnects_total",
                                  "WebSocket clients cut off by the server.", "reason=\"slow\"");
    srv->m_ws_toobig =
        core_counter("citycmd_ws_disconnects_total", "WebSocket clients cut off by the server.",
                     "reason=\"too_large\"");
    srv->m_ws_rate = core_counter("citycmd_ws_rate_limited_total",
                                  "WebSocket messages dropped by the rate limit.", "");
    srv->m_ws_rejected =
        core_counter("citycmd_ws_rejected_total", "WebSocket upgrades refused.", "");
    srv->m_ws_coalesced = core_counter(
        "citycmd_ws_coalesced_total",
        "Queued WebSocket messages replaced by a newer state of the same thing (slow clients).",
        "");
    core_gauge_fn("citycmd_ws_clients", "WebSocket clients connected.", "", clients_metric, srv);
    core_gauge_fn("citycmd_ws_queued_bytes", "Bytes waiting in WebSocket send queues.", "",
                  queued_metric, srv);
    srv->ws_scratch = g_byte_array_sized_new(LWS_PRE + 2 * BATCH_MAX);
    srv->ws_holders = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    ws_units_init(srv);
    srv->ws_slot_map = g_array_new(FALSE, TRUE, sizeof(guint64));
    srv->bus_sub = core_bus_subscribe(srv->deps.bus, "", on_bus_event, srv);
    if (srv->deps.incidents)
        disp_live_watch(srv->deps.incidents, ws_board_on_live, srv);
}

int web_ws_session_in_use(web_server *srv, const core_session *s)
{
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (c->session == s && !c->closing)
            return 1;
    }
    return 0;
}

void web_ws_session_ended(web_server *srv, const core_session *s)
{
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (c->session == s) {
            c->session = NULL;
            ws_close_gracefully(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "session ended", 1);
        }
    }
}

void web_ws_close_all(web_server *srv, int status, const char *why)
{
    for (GList *l = srv->ws_clients; l; l = l->next)
        ws_close_gracefully(l->data, status, why, 1);
}

void web_ws_fini(web_server *srv)
{
    core_bus_unsubscribe(srv->deps.bus, srv->bus_sub);
    ws_units_fini(srv);
    if (srv->ws_flush_timer)
        g_source_remove(srv->ws_flush_timer);
    srv->ws_flush_timer = 0;
    if (srv->ws_scratch)
        g_byte_array_unref(srv->ws_scratch);
    srv->ws_scratch = NULL;
    if (srv->ws_holders)
        g_hash_table_destroy(srv->ws_holders);
    srv->ws_holders = NULL;
    if (srv->ws_slot_map)
        g_array_free(srv->ws_slot_map, TRUE);
    srv->ws_slot_map = NULL;
    if (srv->deps.incidents)
        disp_live_unwatch(srv->deps.incidents, ws_board_on_live, srv);
}

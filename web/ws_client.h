/*
 * ws_client.h — a client of the /ws WebSocket and its send queue, shared by
 * the ws*.c files only (ws.c: the connection and its messages; ws_queue.c:
 * the send queue and the writes).
 *
 * Loop thread only.
 */
#ifndef CITYCMD_WEB_WS_CLIENT_H
#define CITYCMD_WEB_WS_CLIENT_H

#include "internal.h"

#include "../dispatch/incident.h"

/* Ids are positive and below 2^62: they serve as hash keys as they are. */
#define ID_KEY(id) GSIZE_TO_POINTER((gsize)(id))
/* The key of a client's units message: above every incident id. */
#define UNITS_KEY ((int64_t)1 << 62)
#define REC_KEY ((int64_t)1 << 61)
G_STATIC_ASSERT(sizeof(gsize) >= sizeof(int64_t));

typedef struct out_msg {
    struct out_msg *next;
    GBytes *buf; /* LWS_PRE bytes of headroom, then the payload */
    int64_t key; /* coalescing key (an incident's id) or 0 */
} out_msg;

/* A FIFO of messages linked through themselves: a broadcast to a hundred
 * clients costs a hundred small allocations, not two hundred. */
typedef struct {
    out_msg *head, *tail;
} msg_queue;

typedef struct ws_client {
    web_server *srv;
    struct lws *wsi;
    int refs;
    uint64_t id;
    char peer[64];
    GByteArray *rx;
    msg_queue out;
    GHashTable *keyed; /* coalescing key (an id, as a pointer) -> out_msg* waiting in out */
    size_t out_bytes;
    int sub_events;
    int sub_incidents;
    int sub_units;
    ws_units_view uview; /* the units it holds (ws_units.c) */
    ws_rec_watch rec;    /* the incident whose recommendations it follows (ws_recommend.c) */
    ws_video *video;     /* its live video tiles (ws_video.c), or NULL */
    int video_turn;      /* the next WRITEABLE writes video first */
    int has_bbox;
    int64_t district; /* the viewport is this district of the city (its bbox in bbox), or 0 */
    double bbox[4];   /* viewport: west, south, east, north */
    int slot;         /* its bit in the holders of each incident */
    guint shown;      /* how many incidents it holds */
    int replaying;    /* live events queue behind the replay */
    int64_t replay_after;
    msg_queue held; /* live events arriving during a replay */
    size_t held_bytes;
    int64_t last_sent_seq;
    char *token;           /* the session's bearer token */
    core_session *session; /* NULL once the session ended */
    double tokens;
    int64_t refill_us;
    int rate_told;         /* a rate_limited error went out in this burst */
    int64_t over_since_us; /* when the queue went over the soft limit, or 0 */
    int want_write;        /* a WRITEABLE callback is asked for */
    int flush_due;         /* broadcast messages wait for the next flush tick */
    int hold_open;         /* policy close: send our own close frame, stop reading */
    int close_sent;
    int closing; /* 0, or a close status to send */
    char close_reason[64];
} ws_client;

#define BATCH_MAX (256 * 1024) /* bytes a batch frame gathers */

#define Q_HOLD 1   /* behind a replay */
#define Q_FORCE 2  /* a snapshot: bounded by the board, not by the queue limits */
#define Q_SOON 4   /* a broadcast: goes out at the next flush tick, with the others */
#define Q_DIRECT 8 /* the caller writes it itself (ws_write_now) */

/* A message: LWS_PRE bytes of headroom, then the payload (frame_bytes). */
GBytes *ws_frame_bytes(const char *payload, size_t n);
void ws_out_msg_free(gpointer m);
out_msg *ws_q_pop(msg_queue *q);
size_t ws_msg_len(const out_msg *m);

/* Drops a reference; the last frees the client. */
void ws_client_unref(ws_client *c);
/* Forgets everything queued. */
void ws_drop_queue(ws_client *c);
/* Asks for a clean close with status; the close frame goes out at the next WRITEABLE. */
void ws_close_gracefully(ws_client *c, int status, const char *why, int grace_secs);
/* Queues a message (takes a reference on buf) with a coalescing key (0:
 * none) and Q_* flags; a client over its limits is cut off. */
void ws_enqueue(ws_client *c, GBytes *buf, int64_t key, int flags);
/* Queues a JSON text (payload freed with free()). */
void ws_send_text(ws_client *c, char *payload);
void ws_send_error(ws_client *c, const json_t *re, const char *code, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
/* ---- ws_board.c: the incidents topic and the viewport ---- */
typedef struct {
    int has_bbox;
    double bbox[4];
    int64_t district;
} ws_view;
/* The viewport of data: "bbox" [w,s,e,n] (null or absent: the whole city)
 * or "district" (an id of /api/v1/gis/districts: its area). 0, or -1 after
 * sending the error. */
int ws_parse_view(ws_client *c, const json_t *re, json_t *data, ws_view *v);
void ws_set_view(ws_client *c, const ws_view *v);
/* {"type":"incidents.snapshot"}: every open incident in view (and holds them). */
void ws_board_snapshot(ws_client *c);
/* Forgets every incident the client holds. */
void ws_board_unshow_all(ws_client *c);
/* A client's bit in the holders of each incident. */
int ws_board_take_slot(web_server *srv);
void ws_board_give_slot(web_server *srv, int slot);
/* The live board changed (dispatch/board.c's watcher; user: the server). */
void ws_board_on_live(const disp_live *l, int gone, void *user);
/* The units in the client's view now (replacing what it held). */
void ws_send_units_snapshot(ws_client *c);
/* {"type":"viewport"}: moves the view of both topics. */
void ws_on_viewport(ws_client *c, web_envelope *env);

/* Writes what is queued now if the socket can take it, else asks for WRITEABLE. */
void ws_write_now(ws_client *c);
/* The WRITEABLE callback's one write: a close frame, a JSON message (or a
 * batch of them) or a video frame. 0, or -1 to close the connection. */
int ws_on_writeable(struct lws *wsi, ws_client *c);

#endif

// The one WebSocket of a screen: connects to /ws, subscribes to its topics
// (the event feed; the live board of incidents), answers liveness, and
// reconnects with backoff. On reconnect it asks for the events after the last
// one it saw, so a screen never silently misses one; the incidents topic
// starts each subscription with a fresh snapshot. Several messages may come
// in one frame as a batch: each is handled in order.
// The session token goes as the subprotocol "bearer.TOKEN" (a browser cannot
// set headers on a WebSocket); a close with 1008 means the session ended.
// Each pong carries the server's time: onClock gets the offset of the
// server's clock from this browser's (ms, server minus browser), which the
// age timers of the consoles use.
// Binary frames (live video, the only binary frames of /ws) and the
// messages a module takes for itself go to its tap: attach({ message(msg)
// → true when taken, binary(ArrayBuffer), connected(), disconnected() }).

import { t } from './i18n.js';

const BACKOFF_MAX_MS = 10000;

// Shows a connection state in the page's #conn-state indicator.
export function showConnectionState(state) {
  const el = document.getElementById('conn-state');
  el.dataset.state = state;
  const label = el.querySelector('.label');
  label.dataset.i18n = `conn.${state}`;
  label.textContent = t(`conn.${state}`);
}

export class Connection {
  constructor({ token, topics = ['events'], onState, onEvent, onMessage, onHello, onError, onClosed, onClock }) {
    this.token = token;
    this.topics = topics;
    this.onMessage = onMessage || (() => {});
    this.onState = onState;
    this.onClosed = onClosed || (() => true);
    this.stopped = false;
    this.onEvent = onEvent;
    this.onHello = onHello || (() => {});
    this.onError = onError || (() => {});
    this.onClock = onClock || (() => {});
    this.pingSentAt = 0;
    this.lastSeq = null;
    this.attempt = 0;
    this.ws = null;
    this.pingTimer = null;
    this.taps = new Set();
  }

  // Adds a tap (see above); returns the function that removes it.
  attach(tap) {
    this.taps.add(tap);
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.helloed) tap.connected?.();
    return () => this.taps.delete(tap);
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/ws`;
  }

  start() {
    if (this.stopped) return;
    this.onState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.url(), ['citycmd.v1', `bearer.${this.token}`]);
    this.ws = ws;
    this.helloed = false;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { this.attempt = 0; };
    ws.onmessage = (m) => this.receive(m.data);
    ws.onclose = (e) => this.closed(ws, e);
    ws.onerror = () => {};
  }

  send(type, data, id) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type, id, data }));
    }
  }

  receive(data) {
    if (typeof data !== 'string') {
      for (const tap of this.taps) tap.binary?.(data);
      return;
    }
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (msg.type === 'batch' && Array.isArray(msg.data)) {
      for (const m of msg.data) this.handle(m);
    } else {
      this.handle(msg);
    }
  }

  handle(msg) {
    for (const tap of this.taps) if (tap.message?.(msg)) return;
    switch (msg.type) {
      case 'hello': {
        this.helloed = true;
        this.onHello(msg.data);
        const data = { topics: this.topics };
        if (this.lastSeq !== null) data.after = this.lastSeq;
        this.send('subscribe', data, 'sub');
        this.schedulePing((msg.data && msg.data.ping_interval) || 20);
        for (const tap of this.taps) tap.connected?.();
        break;
      }
      case 'subscribed':
        if (this.lastSeq === null) this.lastSeq = msg.data.seq;
        this.onState('connected');
        this.ping();
        break;
      case 'pong': {
        const server = Date.parse(msg.data && msg.data.server_time);
        const now = Date.now();
        if (this.pingSentAt && Number.isFinite(server) && now - this.pingSentAt < 2000) {
          this.onClock(server - (this.pingSentAt + now) / 2);
        }
        this.pingSentAt = 0;
        break;
      }
      case 'event':
        if (msg.data.seq > (this.lastSeq || 0)) this.lastSeq = msg.data.seq;
        this.onEvent(msg.data);
        break;
      case 'error':
        this.onError(msg.error);
        break;
      default:
        this.onMessage(msg);
        break;
    }
  }

  ping() {
    this.pingSentAt = Date.now();
    this.send('ping', {});
  }

  schedulePing(seconds) {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.ping(), seconds * 1000);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  async closed(ws, e) {
    if (ws !== this.ws || this.stopped) return;
    clearInterval(this.pingTimer);
    this.helloed = false;
    for (const tap of this.taps) tap.disconnected?.();
    // Asks the owner whether to go on (false: the session is over).
    if (!(await this.onClosed(e.code)) || this.stopped) return;
    this.attempt += 1;
    this.onState(this.attempt > 3 ? 'offline' : 'reconnecting');
    const delay = Math.min(BACKOFF_MAX_MS, 500 * 2 ** Math.min(this.attempt, 5));
    this.retryTimer = setTimeout(() => this.start(), delay * (0.75 + Math.random() / 2));
  }
}

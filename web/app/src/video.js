// Live video over the screen's one WebSocket (/ws): every player of a page
// is a "tile" of the same connection, never a connection of its own.
//
// VideoHub attaches to the page's Connection: it numbers the tiles, sends
// video.watch / video.unwatch, follows the replies and video.state messages,
// and hands the binary frames of a tile to its player. A binary frame is
// big-endian: byte 0 the kind (1: init segment, 2: media fragment), bytes
// 1-4 the tile; an init segment then has the length of the codec string,
// the string (e.g. "avc1.64001f") and the fMP4 init segment (ftyp+moov); a
// fragment has a flags byte (bit 0: starts with a keyframe) and one
// moof+mdat. A new init segment for a tile is a new stream. After a break
// of the connection every tile is watched again.
//
// VideoPlayer draws one camera in a <video> through Media Source Extensions:
// a SourceBuffer of the init segment's codec in "segments" mode, the
// appends one at a time, a new MediaSource for each init segment; it keeps
// to the live edge (more than CATCH_UP_S behind: a jump to just before the
// end) and keeps only KEEP_S of video buffered. Over the picture a bar
// says which camera it is and its state in words (connecting, reconnecting
// and why, no picture, a codec this browser cannot play) rather than a
// black box. The element carries data-state, data-reason, data-frames
// (fragments appended) and data-codec for the tests.
import './video.css';
import { api } from './auth.js';
import { el } from './dom.js';
import { t, tf } from './i18n.js';

const CATCH_UP_S = 0.5; // behind the live edge by more than this: jump
const LIVE_EDGE_S = 0.1; // where the jump lands, before the end
const KEEP_S = 10; // seconds kept behind the playhead
const TRIM_EVERY_MS = 1000;
const QUEUE_MAX = 150; // appends waiting (about 6 s at 25 fps): drop to the next keyframe
const STALL_MS = 3000; // playing, but no fragment for this long: say so
const RETRY_MS = 2000; // a player that failed asks again after this
const TILE_MAX = 65535;

let hubCount = 0;

export class VideoHub {
  // conn: the page's Connection (connection.js).
  constructor(conn) {
    this.conn = conn;
    this.tiles = new Map(); // tile -> VideoPlayer
    this.asked = new Map(); // request id -> tile
    this.next = 1;
    this.seq = 0;
    this.id = ++hubCount;
    this.lost = false; // the connection broke and is not back yet
    this.detach = conn.attach(this);
  }

  // A tile number not in use, counting up (a number just given back is not
  // used again at once: frames of its old camera may still be on the way).
  allocate() {
    for (let i = 0; i < TILE_MAX; i++) {
      const tile = this.next;
      this.next = this.next >= TILE_MAX ? 1 : this.next + 1;
      if (!this.tiles.has(tile)) return tile;
    }
    return 0;
  }

  // Shows a camera in a player (what it showed before stops).
  watch(player, camera) {
    if (player.tile) this.unwatch(player);
    const tile = this.allocate();
    if (!tile) {
      player.failed('too_many_tiles');
      return;
    }
    player.tile = tile;
    player.camera = camera;
    this.tiles.set(tile, player);
    this.sendWatch(tile, camera);
  }

  sendWatch(tile, camera) {
    const id = `video.${this.id}.${++this.seq}`;
    this.asked.set(id, tile);
    if (this.asked.size > 256) this.asked.delete(this.asked.keys().next().value);
    this.conn.send('video.watch', { tile, camera }, id);
  }

  unwatch(player) {
    const { tile } = player;
    if (!tile) return;
    player.tile = 0;
    if (this.tiles.get(tile) !== player) return;
    this.tiles.delete(tile);
    this.conn.send('video.unwatch', { tile }, `video.${this.id}.${++this.seq}`);
  }

  // Stops every player and leaves the connection.
  close() {
    for (const p of [...this.tiles.values()]) p.stop();
    this.detach();
  }

  // ---- what the connection hands over ----

  // A JSON message: true when it was the hub's.
  message(msg) {
    const d = msg.data || {};
    if (msg.type === 'video.watch' || msg.type === 'video.state') {
      if (msg.re) this.asked.delete(msg.re);
      const p = this.tiles.get(d.tile);
      if (p) p.status(d);
      return true;
    }
    if (msg.type === 'video.unwatch') return true;
    if (msg.type === 'error' && msg.re && this.asked.has(msg.re)) {
      const tile = this.asked.get(msg.re);
      this.asked.delete(msg.re);
      const p = this.tiles.get(tile);
      if (p) {
        this.tiles.delete(tile);
        p.tile = 0;
        p.failed((msg.error && msg.error.code) || 'error', msg.error && msg.error.message);
      }
      return true;
    }
    return false;
  }

  binary(buf) {
    if (!(buf instanceof ArrayBuffer) || buf.byteLength < 6) return;
    const v = new DataView(buf);
    const kind = v.getUint8(0);
    const p = this.tiles.get(v.getUint32(1));
    if (!p) return;
    if (kind === 1) {
      const len = v.getUint8(5);
      if (6 + len > buf.byteLength) return;
      const codec = String.fromCharCode(...new Uint8Array(buf, 6, len));
      p.init(codec, new Uint8Array(buf, 6 + len));
    } else if (kind === 2) {
      p.fragment((v.getUint8(5) & 1) === 1, new Uint8Array(buf, 6));
    }
  }

  // The connection is up (again): the server knows no tile of it yet.
  connected() {
    this.lost = false;
    this.asked.clear();
    for (const [tile, p] of this.tiles) {
      p.restart();
      this.sendWatch(tile, p.camera);
    }
  }

  disconnected() {
    this.lost = true;
    for (const p of this.tiles.values()) p.offline();
  }
}

// Why a camera is being retried: the server's word, or its own message.
function reasonText(reason) {
  const key = `video.reason.${reason || 'unknown'}`;
  if (t(key) !== key) return t(key);
  return reason.startsWith('error: ') ? tf('video.reason.error', { detail: reason.slice(7) }) : t('video.reason.unknown');
}

// The words of a state: 'connecting', 'playing', 'retrying' (with a reason),
// and the player's own: 'idle', 'offline', 'unsupported', 'failed'.
function stateText(state, reason, codec) {
  switch (state) {
    case 'connecting': return t('video.connecting');
    case 'playing': return t('video.live');
    case 'retrying': return tf('video.retrying', { why: reasonText(reason) });
    case 'idle': return reason === 'removed' ? t('video.removed') : '';
    case 'offline': return t('video.offline');
    case 'unsupported': return tf('video.unsupported', { codec: codec || '?' });
    case 'failed': {
      const key = `video.error.${reason}`;
      return t(key) === key ? tf('video.error.other', { code: reason }) : t(key);
    }
    default: return '';
  }
}

const mimeOf = (codec) => `video/mp4; codecs="${codec}"`;

// Whether this browser's Media Source Extensions play a codec ("avc1.64001f").
export function playable(codec) {
  return typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported(mimeOf(codec));
}

export class VideoPlayer {
  // hub: the page's VideoHub; name: the camera's name (shown over the picture).
  constructor(hub, { name = '', className = '' } = {}) {
    this.hub = hub;
    this.tile = 0;
    this.camera = null;
    this.name = name;
    this.el = el('div', `vplayer ${className}`.trim());
    this.video = document.createElement('video');
    this.video.muted = true;
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.setAttribute('muted', '');
    this.video.setAttribute('playsinline', '');
    this.video.disablePictureInPicture = true;
    this.bar = el('div', 'vp-bar');
    this.nameEl = el('span', 'vp-name', name);
    this.stateEl = el('span', 'vp-state');
    this.bar.append(this.nameEl, this.stateEl);
    this.note = el('div', 'vp-note'); // large, over the middle, when there is no picture
    this.el.append(this.video, this.note, this.bar);
    this.state = 'idle';
    this.reason = '';
    this.codec = '';
    this.frames = 0;
    this.lastFrame = 0;
    this.timer = null;
    this.retryTimer = null;
    this.ms = null;
    this.sb = null;
    this.queue = [];
    this.waitKey = false;
    this.lastTrim = 0;
    this.video.addEventListener('error', () => this.broken());
    this.show();
  }

  setName(name) {
    this.name = name || '';
    this.nameEl.textContent = this.name;
  }

  // Starts showing a camera ("C-2").
  play(camera, name) {
    if (name !== undefined) this.setName(name);
    clearTimeout(this.retryTimer);
    this.reset();
    this.codec = '';
    this.frames = 0;
    this.lastFrame = 0;
    this.set(this.hub.lost ? 'offline' : 'connecting', '');
    this.hub.watch(this, camera);
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), 250);
  }

  stop() {
    clearTimeout(this.retryTimer);
    clearInterval(this.timer);
    this.timer = null;
    this.hub.unwatch(this);
    this.camera = null;
    this.reset();
    this.set('idle', '');
  }

  // ---- from the hub ----

  status(d) {
    if (this.state === 'unsupported') return;
    if (d.codec) {
      this.codec = d.codec;
      if (!playable(d.codec)) {
        this.unplayable();
        return;
      }
    }
    if (d.state === 'playing' && this.state === 'playing') return;
    if (d.state === 'idle' && d.reason === 'removed') this.reset(); // no last picture of a camera that is gone
    // "playing" is said once the picture is there (the first fragment).
    const state = d.state === 'playing' && !this.sb ? 'connecting' : d.state;
    this.set(state, d.reason || '');
  }

  failed(code) {
    this.reset();
    this.set('failed', code);
    clearInterval(this.timer);
    this.timer = null;
    // A camera that cannot be read stays so; a full server may free a tile.
    if (code === 'too_many_tiles' && this.camera) {
      clearTimeout(this.retryTimer);
      const camera = this.camera;
      this.retryTimer = setTimeout(() => this.play(camera), RETRY_MS * 5);
    }
  }

  offline() {
    this.set('offline', '');
  }

  // The connection came back: the stream starts again with an init segment.
  restart() {
    this.reset();
    this.set('connecting', '');
  }

  init(codec, data) {
    this.codec = codec;
    this.el.dataset.codec = codec;
    const mime = mimeOf(codec);
    this.reset();
    if (!playable(codec)) {
      this.unplayable();
      return;
    }
    // A new stream: it is playing once its first fragment is in.
    if (this.state !== 'connecting') this.set('connecting', '');
    const ms = new MediaSource();
    this.ms = ms;
    this.queue = [{ data: data.slice(), init: true }];
    this.waitKey = true; // the first fragment is a keyframe; anything before one is useless
    this.video.src = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      URL.revokeObjectURL(this.video.src);
      if (this.ms !== ms) return;
      try {
        this.sb = ms.addSourceBuffer(mime);
        this.sb.mode = 'segments';
      } catch {
        this.unplayable();
        return;
      }
      this.sb.addEventListener('updateend', () => this.updated());
      this.sb.addEventListener('error', () => this.broken());
      this.pump();
    }, { once: true });
  }

  fragment(key, data) {
    if (!this.ms || this.state === 'unsupported') return;
    if (this.waitKey && !key) return;
    if (this.queue.length >= QUEUE_MAX) {
      // Far behind (a hidden tab, a slow machine): drop what waits and go on
      // from the next keyframe; the catch-up jumps over the gap.
      this.queue = this.queue.filter((q) => q.init);
      this.waitKey = true;
      if (!key) return;
    }
    this.waitKey = false;
    // A copy: the frame's buffer is one WebSocket message, kept no longer.
    this.queue.push({ data: data.slice(), init: false });
    this.pump();
  }

  // ---- the source buffer ----

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || this.ms.readyState !== 'open') return;
    if (this.trim()) return;
    const next = this.queue.shift();
    if (!next) return;
    this.appending = next;
    try {
      sb.appendBuffer(next.data);
    } catch (e) {
      this.appending = null;
      if (e && e.name === 'QuotaExceededError') {
        // Full: keep only the last second and try the frame again.
        this.queue.unshift(next);
        const now = this.video.currentTime;
        if (!sb.updating && sb.buffered.length && now - 1 > sb.buffered.start(0)) {
          sb.remove(0, now - 1);
        } else {
          this.queue = this.queue.filter((q) => q.init);
          this.waitKey = true;
        }
        return;
      }
      this.broken();
    }
  }

  // Removes what lies more than KEEP_S behind the playhead (at most once a
  // second); true when a removal started.
  trim() {
    const now = performance.now();
    if (now - this.lastTrim < TRIM_EVERY_MS) return false;
    this.lastTrim = now;
    const b = this.sb.buffered;
    const until = this.video.currentTime - KEEP_S;
    if (!b.length || until <= b.start(0)) return false;
    this.sb.remove(0, until);
    return true;
  }

  updated() {
    const done = this.appending;
    this.appending = null;
    if (done && !done.init) {
      this.frames += 1;
      this.lastFrame = performance.now();
      this.el.dataset.frames = String(this.frames);
      if (this.state === 'connecting' || this.state === 'offline') this.set('playing', '');
      else this.show();
      this.catchUp();
      if (this.video.paused) this.video.play().catch(() => {});
    }
    this.pump();
  }

  // Keeps to the live edge: more than CATCH_UP_S behind the end of what is
  // buffered (or in a gap left by dropped frames): a jump to just before it.
  catchUp() {
    const b = this.sb && this.sb.buffered;
    if (!b || !b.length) return;
    const last = b.length - 1;
    const end = b.end(last);
    const now = this.video.currentTime;
    if (end - now > CATCH_UP_S || now < b.start(last) - 0.05) {
      this.video.currentTime = Math.max(b.start(last), end - LIVE_EDGE_S);
    }
  }

  // A codec this browser cannot play (H.265 in most): said over the tile,
  // and the server stops sending what would only be thrown away.
  unplayable() {
    this.reset();
    this.hub.unwatch(this);
    clearInterval(this.timer);
    this.timer = null;
    this.set('unsupported', '');
  }

  // A decode or append error: start again from a fresh init segment.
  broken() {
    if (!this.camera || this.state === 'unsupported') return;
    this.reset();
    this.set('connecting', '');
    clearTimeout(this.retryTimer);
    const camera = this.camera;
    this.retryTimer = setTimeout(() => { if (this.camera === camera) this.hub.watch(this, camera); }, RETRY_MS);
  }

  reset() {
    if (this.ms) {
      try {
        if (this.ms.readyState === 'open' && this.sb && !this.sb.updating) this.ms.endOfStream();
      } catch { /* already ended */ }
    }
    this.ms = null;
    this.sb = null;
    this.queue = [];
    this.appending = null;
    this.waitKey = false;
    if (this.video.getAttribute('src')) {
      this.video.removeAttribute('src');
      this.video.load();
    }
  }

  tick() {
    if (this.state === 'playing') {
      this.catchUp();
      if (this.video.paused && this.sb) this.video.play().catch(() => {});
      this.show();
    }
  }

  // ---- what the overlay says ----

  set(state, reason) {
    this.state = state;
    this.reason = reason || '';
    this.show();
  }

  show() {
    const ds = this.el.dataset;
    const stalled = this.state === 'playing' && performance.now() - this.lastFrame > STALL_MS;
    ds.state = this.state;
    ds.reason = this.reason;
    ds.frames = String(this.frames);
    ds.codec = this.codec;
    if (this.camera) ds.camera = this.camera;
    else delete ds.camera;
    ds.stalled = String(stalled);
    const text = stalled ? t('video.no_picture') : stateText(this.state, this.reason, this.codec);
    // The bar keeps room for the name: the long texts only over the middle.
    const short = this.state === 'unsupported' || this.state === 'failed' ? t(`video.short.${this.state}`) : text;
    if (this.stateEl.textContent !== short) this.stateEl.textContent = short;
    // No picture yet or any more: the state in large letters over the middle.
    const noPicture = this.state !== 'playing' && (this.state !== 'idle' || this.reason === 'removed');
    const note = noPicture || stalled ? text : '';
    if (this.note.textContent !== note) this.note.textContent = note;
    this.note.hidden = !note;
  }

  relabel() {
    this.show();
  }
}

// ---- pictures and clips of the API, read with the session's token ----

// A dialog showing an image (kind 'snapshot') or a video ('clip') of the
// API: read with the token (a plain link would have none), then shown with a
// link to save it. Closes on Escape, on its button, or a click outside.
export async function showMedia({ url, kind, title }) {
  const dialog = el('dialog', 'media-dialog');
  const head = el('div', 'media-head');
  const close = el('button', 'media-close', t('video.close'));
  close.type = 'button';
  close.addEventListener('click', () => dialog.close());
  head.append(el('span', 'media-title', title || ''), close);
  const body = el('div', 'media-body', t('video.loading'));
  dialog.append(head, body);
  dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close(); });
  let objectUrl = null;
  dialog.addEventListener('close', () => {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
  let res;
  try {
    res = await api(url);
  } catch {
    body.textContent = t('auth.unreachable');
    body.dataset.state = 'error';
    return dialog;
  }
  if (!res.ok) {
    const err = await res.json().catch(() => null);
    body.textContent = tf('video.media_failed', { why: (err && err.error && err.error.message) || res.status });
    body.dataset.state = 'error';
    return dialog;
  }
  const blob = await res.blob();
  objectUrl = URL.createObjectURL(blob);
  let media;
  if (kind === 'clip') {
    media = document.createElement('video');
    media.controls = true;
    media.autoplay = true;
    media.muted = true;
    media.playsInline = true;
  } else {
    media = document.createElement('img');
    media.alt = title || '';
  }
  media.className = 'media-view';
  media.src = objectUrl;
  const save = el('a', 'media-save', t('video.save'));
  save.href = objectUrl;
  save.download = url.split('/').pop() || (kind === 'clip' ? 'clip.mp4' : 'snapshot.jpg');
  body.replaceChildren(media, save);
  body.dataset.state = 'shown';
  body.dataset.bytes = String(blob.size);
  body.dataset.type = blob.type;
  return dialog;
}

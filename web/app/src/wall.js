// The video wall (/wall.html): the same sign-in as the console, the cameras
// the user may read (GET /api/v1/cameras) and a grid of live tiles, 1, 4, 9
// or 16, every one of them a tile of the page's one WebSocket (video.js).
// Each tile has a choice of its camera and a "Snapshot" button (the
// camera's latest keyframe as a JPEG, read with the session's token and
// shown in a dialog); a click on the picture makes the tile fill the wall,
// another click puts it back. The grid size and which camera is in which
// tile are kept in this browser (localStorage) for the next time. The
// camera list follows the event feed (camera.*): a renamed camera is
// renamed on its tile, a removed one leaves it.
import './field.css';
import './wall.css';
import { $, el } from './dom.js';
import { errorText, listReader } from './request.js';
import { t, tf, formatTime } from './i18n.js';
import { VideoHub, VideoPlayer, showMedia } from './video.js';
import { runFieldPage } from './fieldpage.js';

const SIZES = [1, 4, 9, 16];
const STORE = 'citycmd.wall';
const LIST_DEBOUNCE_MS = 300;

const st = {
  epoch: 0,
  hub: null,
  cameras: [], // GET /api/v1/cameras, by id
  loaded: false,
  size: 4,
  slots: [], // the camera id of each tile ('' for none), as chosen
  tiles: [], // { el, select, player, camera }
  large: -1, // the tile filling the wall, or -1
};

function saved() {
  try {
    const s = JSON.parse(localStorage.getItem(STORE) || '{}');
    return {
      size: SIZES.includes(s.size) ? s.size : 4,
      slots: Array.isArray(s.slots) ? s.slots.filter((x) => typeof x === 'string').slice(0, 16) : null,
    };
  } catch {
    return { size: 4, slots: null };
  }
}

function save() {
  localStorage.setItem(STORE, JSON.stringify({ size: st.size, slots: st.slots }));
}

const cameraById = (id) => st.cameras.find((c) => c.id === id) || null;

// ---- the camera list ----

const cameraList = listReader({
  path: '/api/v1/cameras', wait: LIST_DEBOUNCE_MS, epoch: () => st.epoch, done: camerasRead,
});

function camerasRead(r) {
  if (!r.res || !r.res.ok || !r.body) {
    $('wall-error').textContent = t('wall.failed') + errorText(r.body, r.res);
    $('wall-error').hidden = false;
    return;
  }
  $('wall-error').hidden = true;
  st.cameras = r.body.cameras || [];
  const first = !st.loaded;
  st.loaded = true;
  // The first time: the saved layout, else the cameras in order.
  if (first && !st.slots.some(Boolean)) st.slots = st.cameras.slice(0, 16).map((c) => c.id);
  // A camera no longer readable (removed) leaves its tile.
  st.slots = st.slots.map((id) => (id && cameraById(id) ? id : ''));
  $('wall-none').hidden = st.cameras.length > 0;
  $('wall-count').textContent = tf('wall.count', { n: st.cameras.length });
  render();
}

// ---- the grid ----

function sizeButtons() {
  for (const b of $('grid-sizes').querySelectorAll('button[data-size]')) {
    b.setAttribute('aria-pressed', String(Number(b.dataset.size) === st.size));
  }
}

function setSize(n) {
  st.size = n;
  if (st.large >= n) st.large = -1;
  // Slots beyond the old size get the cameras not shown yet.
  const shown = new Set(st.slots.slice(0, n).filter(Boolean));
  const spare = st.cameras.filter((c) => !shown.has(c.id)).map((c) => c.id);
  for (let i = 0; i < n; i++) {
    if (st.slots[i] === undefined) st.slots[i] = spare.shift() || '';
  }
  save();
  render();
}

function fillSelect(select, chosen) {
  const none = el('option', '', t('wall.empty_tile'));
  none.value = '';
  select.replaceChildren(none, ...st.cameras.map((c) => {
    const o = el('option', '', `${c.name} (${c.id})`);
    o.value = c.id;
    return o;
  }));
  select.value = chosen || '';
}

function makeTile(i) {
  const tile = el('div', 'wall-tile');
  tile.dataset.slot = String(i);
  tile.dataset.testid = 'wall-tile';
  const head = el('div', 'tile-head');
  const select = el('select', 'tile-camera');
  select.setAttribute('aria-label', t('wall.pick'));
  select.addEventListener('change', () => {
    st.slots[i] = select.value;
    save();
    showIn(i);
  });
  const snap = el('button', 'small tile-snapshot', t('wall.snapshot'));
  snap.type = 'button';
  snap.addEventListener('click', () => snapshot(i));
  head.append(select, snap);
  const player = new VideoPlayer(st.hub, { className: 'tile-player' });
  player.el.title = t('wall.enlarge');
  player.el.addEventListener('click', () => enlarge(i));
  tile.append(head, player.el);
  return { el: tile, select, snap, player, camera: '' };
}

// Shows in tile i the camera its slot says (nothing when it already does).
function showIn(i) {
  const tile = st.tiles[i];
  const id = st.slots[i] || '';
  const cam = cameraById(id);
  tile.el.dataset.camera = id;
  tile.snap.disabled = !cam;
  if (cam) tile.player.setName(cam.name);
  if (tile.camera === id) return;
  tile.camera = id;
  if (cam) tile.player.play(cam.id, cam.name);
  else {
    tile.player.stop();
    tile.player.setName('');
  }
}

function render() {
  sizeButtons();
  const grid = $('wall-grid');
  grid.dataset.size = String(st.size);
  // Tiles beyond the size stop (their tile on the server is given back).
  while (st.tiles.length > st.size) {
    const gone = st.tiles.pop();
    gone.player.stop();
    gone.el.remove();
  }
  while (st.tiles.length < st.size) {
    const tile = makeTile(st.tiles.length);
    st.tiles.push(tile);
    grid.append(tile.el);
  }
  st.tiles.forEach((tile, i) => {
    fillSelect(tile.select, st.slots[i]);
    showIn(i);
    tile.el.classList.toggle('large', st.large === i);
  });
  grid.classList.toggle('has-large', st.large >= 0);
}

function enlarge(i) {
  st.large = st.large === i ? -1 : i;
  st.tiles.forEach((tile, j) => tile.el.classList.toggle('large', st.large === j));
  $('wall-grid').classList.toggle('has-large', st.large >= 0);
}

function snapshot(i) {
  const cam = cameraById(st.slots[i]);
  if (!cam) return;
  showMedia({
    url: `/api/v1/cameras/${encodeURIComponent(cam.id)}/snapshot.jpg`,
    kind: 'snapshot',
    title: tf('wall.snapshot_title', { name: cam.name, time: formatTime(new Date().toISOString()) }),
  });
}

// ---- the page ----

function clear() {
  for (const tile of st.tiles) tile.player.stop();
  st.tiles = [];
  st.large = -1;
  $('wall-grid').replaceChildren();
  $('wall-grid').classList.remove('has-large');
}

runFieldPage({
  title: 'wall.title',
  main: 'wall',
  init() {
    const s = saved();
    st.size = s.size;
    st.slots = s.slots || [];
    for (const b of $('grid-sizes').querySelectorAll('button[data-size]')) {
      b.addEventListener('click', () => setSize(Number(b.dataset.size)));
    }
    $('wall-fullscreen').addEventListener('click', () => {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else document.documentElement.requestFullscreen().catch(() => {});
    });
    document.addEventListener('keydown', (k) => { if (k.key === 'Escape' && st.large >= 0) enlarge(st.large); });
    sizeButtons();
  },
  enter(conn) {
    st.hub = new VideoHub(conn);
    st.loaded = false;
    const s = saved();
    st.size = s.size;
    st.slots = s.slots || [];
    render();
    cameraList.load();
    // For the tests: the players and the hub of this page.
    window.citycmdWall = {
      players: () => st.tiles.map((tile) => tile.player),
      hub: () => st.hub,
    };
  },
  leave() {
    st.epoch += 1;
    cameraList.cancel();
    clear();
    st.hub?.close();
    st.hub = null;
    st.cameras = [];
    st.loaded = false;
    $('wall-count').textContent = '';
    $('wall-none').hidden = true;
  },
  onEvent(ev) {
    if (/^camera\./.test(ev.type)) cameraList.schedule();
  },
  onConnected() {
    if (st.hub) cameraList.load();
  },
  relabel() {
    for (const tile of st.tiles) {
      tile.select.setAttribute('aria-label', t('wall.pick'));
      tile.snap.textContent = t('wall.snapshot');
      tile.player.el.title = t('wall.enlarge');
      if (tile.select.options[0]) tile.select.options[0].textContent = t('wall.empty_tile');
      tile.player.relabel();
    }
    if (st.loaded) $('wall-count').textContent = tf('wall.count', { n: st.cameras.length });
  },
});

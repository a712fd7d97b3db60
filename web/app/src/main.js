// The citycmd shell: sign-in, connection state, live event feed, duty
// journal, the city map, the dispatcher's console (incidents.js), the
// units' board (units.js) and the cameras with their live video (cameras.js).
import './style.css';
import { Connection, showConnectionState } from './connection.js';
import { auth, api, signOut, resume, stillSignedIn, bindLoginForm, showLoginReason } from './auth.js';
import { t, tName, setLang, currentLang, applyTranslations, formatTime } from './i18n.js';
import { CityMap, mapState } from './map.js';
import { $ } from './dom.js';
import { initCoverage, startCoverage, stopCoverage, relabelCoverage, coverageCount } from './coverage.js';
import { initPipes, startPipes, stopPipes, pipesEvent, pipesReconnected, relabelPipes } from './pipes.js';
import {
  initConsole, startConsole, stopConsole, consoleEvent, consoleLive, consoleTopics, relabelConsole, setClockSkew,
  consoleReconnected, reloadIncident,
} from './incidents.js';
import {
  initCameras, startCameras, camerasOnMap, stopCameras, camerasEvent, relabelCameras,
} from './cameras.js';
import {
  initUnits, startUnits, stopUnits, unitsLive, unitsEvent, unitsTopics, relabelUnits, setUnitsClockSkew,
} from './units.js';

const FEED_MAX = 200;

function entryItem(entry) {
  const li = document.createElement('li');
  li.className = `entry kind-${entry.kind}`;
  li.dataset.id = entry.id;
  const time = document.createElement('time');
  time.dateTime = entry.at;
  time.textContent = formatTime(entry.at);
  const kind = document.createElement('span');
  kind.className = 'kind';
  kind.dataset.i18n = `journal.kind.${entry.kind}`;
  kind.textContent = t(`journal.kind.${entry.kind}`);
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = entry.text;
  li.append(time, kind, text);
  return li;
}

function addJournalEntry(entry) {
  const list = $('journal-list');
  if (list.querySelector(`[data-id="${entry.id}"]`)) return;
  list.prepend(entryItem(entry));
}

function addFeedItem(ev) {
  const feed = $('feed');
  const li = document.createElement('li');
  li.className = 'event';
  li.dataset.seq = ev.seq;
  const time = document.createElement('time');
  time.dateTime = ev.at;
  time.textContent = formatTime(ev.at);
  const type = document.createElement('code');
  type.textContent = ev.type;
  const subject = document.createElement('span');
  subject.className = 'subject';
  subject.textContent = ev.subject;
  li.append(time, type, subject);
  feed.prepend(li);
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
}

async function loadJournal() {
  const res = await api('/api/v1/journal?limit=50');
  if (!res.ok) return;
  const body = await res.json();
  body.entries.reverse().forEach(addJournalEntry);
}

async function submitJournal(e) {
  e.preventDefault();
  const input = $('journal-text');
  const error = $('journal-error');
  error.hidden = true;
  const res = await api('/api/v1/journal', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: $('journal-kind').value, text: input.value }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    error.textContent = t('journal.failed') + ((body.error && body.error.message) || res.status);
    error.hidden = false;
    return;
  }
  addJournalEntry(body.entry);
  input.value = '';
}

function tickClock() {
  $('clock').textContent = new Date().toLocaleString(currentLang() === 'zh' ? 'zh-CN' : 'en-GB',
    { hour12: false });
}

let conn = null;
let cityMap = null;

function initMapControls() {
  document.querySelectorAll('.map-layers input[data-layer]').forEach((box) => {
    box.addEventListener('change', () => {
      mapState.layers[box.dataset.layer] = box.checked;
      cityMap?.restyle();
    });
  });
  $('map-district-kind').addEventListener('change', (e) => {
    mapState.districtKind = e.target.value;
    cityMap?.restyle();
  });
  $('map-theme').addEventListener('click', () => {
    mapState.theme = mapState.theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem('citycmd.map.theme', mapState.theme);
    cityMap?.restyle();
  });
  document.querySelector('.map-popup .close').addEventListener('click', () => cityMap?.popup.setPosition(undefined));
  let timer = null;
  $('map-search').addEventListener('input', (e) => {
    clearTimeout(timer);
    const q = e.target.value.trim();
    timer = setTimeout(async () => {
      const list = $('map-results');
      if (!q || !cityMap?.map) { list.hidden = true; return; }
      const results = await cityMap.search(q);
      list.replaceChildren(...results.map((r) => {
        const li = document.createElement('li');
        li.tabIndex = 0;
        li.textContent = r.name;
        const kind = document.createElement('span');
        kind.className = 'kind';
        kind.textContent = r.kind;
        li.append(kind);
        const go = () => { list.hidden = true; cityMap.goTo(r.lon, r.lat); };
        li.addEventListener('click', go);
        li.addEventListener('keydown', (k) => { if (k.key === 'Enter') go(); });
        return li;
      }));
      list.hidden = results.length === 0;
    }, 150);
  });
}

function showUser(user) {
  $('user-name').textContent = user.display_name || user.username;
  $('user-name').title = user.username;
  $('user-agency').dataset.value = user.agency;
  $('user-agency').textContent = tName('agency', user.agency);
  $('user-roles').dataset.value = user.roles;
  $('user-roles').textContent = user.roles.split(',').map((r) => tName('role', r)).join(', ');
}

function enter(user) {
  showUser(user);
  $('login').hidden = true;
  $('main').hidden = false;
  $('who').hidden = false;
  $('logout').hidden = false;
  $('conn-state').hidden = false;
  loadJournal();
  cityMap = new CityMap(document.querySelector('.panel.map'));
  const map = cityMap;
  cityMap.start().then((ok) => {
    if (!ok || map !== cityMap) return;
    startCoverage(map);
    startPipes({ map, user });
    camerasOnMap(map);
  });
  startConsole({ map: cityMap, user, send: (type, data) => conn?.send(type, data) });
  startUnits({ map: cityMap, user });
  conn = new Connection({
    token: auth.token,
    topics: [...consoleTopics(), ...unitsTopics(user)],
    onState: (state) => {
      showConnectionState(state);
      if (state === 'connected') { consoleReconnected(); pipesReconnected(); }
    },
    onHello: (h) => { $('server-version').textContent = `citycmd ${h.version}`; },
    onEvent: (ev) => {
      addFeedItem(ev);
      if (ev.type === 'journal.created') {
        addJournalEntry({ id: ev.data.id, at: ev.at, kind: ev.data.kind, text: ev.data.text });
      }
      consoleEvent(ev);
      unitsEvent(ev);
      pipesEvent(ev);
      camerasEvent(ev);
    },
    onMessage: (msg) => { consoleLive(msg); unitsLive(msg); },
    onClock: (ms) => { setClockSkew(ms); setUnitsClockSkew(ms); },
    // After a close, go on reconnecting unless the session is over.
    onClosed: async () => stillSignedIn(),
  });
  // Live video rides on the same connection (cameras.js, video.js).
  startCameras({ user, conn, reloadIncident });
  window.citycmd = { conn };
  conn.start();
}

// Back to the login page: stops the live connection and clears what the
// previous user saw.
function leave(reason) {
  if (conn) conn.stop();
  conn = null;
  stopCameras();
  stopUnits();
  stopConsole();
  stopCoverage();
  stopPipes();
  cityMap?.stop();
  cityMap = null;
  $('journal-list').replaceChildren();
  $('feed').replaceChildren();
  $('main').hidden = true;
  $('who').hidden = true;
  $('logout').hidden = true;
  $('conn-state').hidden = true;
  $('login').hidden = false;
  showLoginReason(reason, t);
  $('login-username').focus();
}

async function logout() {
  if (conn) conn.stop();
  conn = null;
  await signOut();
  leave(null);
}

async function init() {
  applyTranslations(document);
  $('lang').textContent = currentLang() === 'zh' ? 'English' : '中文';
  $('lang').addEventListener('click', () => {
    setLang(currentLang() === 'zh' ? 'en' : 'zh');
    $('lang').textContent = currentLang() === 'zh' ? 'English' : '中文';
    if (auth.user) showUser(auth.user);
    relabelConsole();
    relabelUnits();
    relabelCoverage();
    relabelPipes();
    relabelCameras();
  });
  $('journal-form').addEventListener('submit', submitJournal);
  initMapControls();
  initCoverage();
  initPipes();
  initCameras();
  window.citycmdCoverage = coverageCount; // for the browser tests
  initConsole();
  initUnits();
  bindLoginForm({ enter, leave });
  $('logout').addEventListener('click', logout);
  auth.onLost = (reason) => leave(reason);
  tickClock();
  setInterval(tickClock, 1000);
  const user = await resume();
  if (user) enter(user);
  else leave(null);
}

init();

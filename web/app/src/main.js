// The citycmd shell: connection state, live event feed, duty journal. The map
// and the consoles grow here as their capabilities land.
import './style.css';
import { Connection } from './connection.js';
import { t, setLang, currentLang, applyTranslations } from './i18n.js';

const FEED_MAX = 200;
const $ = (id) => document.getElementById(id);

function formatTime(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString(currentLang() === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}

function showState(state) {
  const el = $('conn-state');
  el.dataset.state = state;
  const label = el.querySelector('.label');
  label.dataset.i18n = `conn.${state}`;
  label.textContent = t(`conn.${state}`);
}

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
  const res = await fetch('/api/v1/journal?limit=50');
  if (!res.ok) return;
  const body = await res.json();
  body.entries.reverse().forEach(addJournalEntry);
}

async function submitJournal(e) {
  e.preventDefault();
  const input = $('journal-text');
  const error = $('journal-error');
  error.hidden = true;
  const res = await fetch('/api/v1/journal', {
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

function init() {
  applyTranslations(document);
  $('lang').textContent = currentLang() === 'zh' ? 'English' : '中文';
  $('lang').addEventListener('click', () => {
    setLang(currentLang() === 'zh' ? 'en' : 'zh');
    $('lang').textContent = currentLang() === 'zh' ? 'English' : '中文';
  });
  $('journal-form').addEventListener('submit', submitJournal);
  tickClock();
  setInterval(tickClock, 1000);
  loadJournal();
  const conn = new Connection({
    onState: showState,
    onHello: (h) => { $('server-version').textContent = `citycmd ${h.version}`; },
    onEvent: (ev) => {
      addFeedItem(ev);
      if (ev.type === 'journal.created') {
        addJournalEntry({ id: ev.data.id, at: ev.at, kind: ev.data.kind, text: ev.data.text });
      }
    },
  });
  window.citycmd = { conn };
  conn.start();
}

init();

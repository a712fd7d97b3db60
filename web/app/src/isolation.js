// An isolation's answer as the console's "Pipes" panel (pipes.js) and the
// repair crew's page (crew.js) both describe it: the isolated and dry
// totals (or why there are none), the valves to close and those that could
// not be closed, the note on valves already closed, and the customers' line.
// Each page passes the ids of its own elements and how it draws a valve.
import { $, el } from './dom.js';
import { t, tf, formatDistance } from './i18n.js';

export const lonlatText = (p) => (p ? `${p[1].toFixed(5)}, ${p[0].toFixed(5)}` : '—');

// Why a valve could not be closed: it failed, or the network has it inoperable.
export const cannotText = (v) => t(v.failed ? 'iso.valve_failed' : 'iso.valve_inoperable');

// Which part of the area a customer is in (isolated, or dry downstream).
export const partTag = (p) => el('span', `part ${p.dry ? 'dry' : 'isolated'}`, t(p.dry ? 'iso.part.dry' : 'iso.part.isolated'));

// Shows iso's answer (iso null: clears it) in the elements of ids:
// { isolated, dry, warn, valvesTitle, valves, valvesNote, cannotBox, cannot,
// customers }; valveItem(v) and cannotItem(v) make the valves' list items.
// Returns the answer (or null).
export function showAnswer(ids, iso, { valveItem, cannotItem }) {
  const a = (iso && iso.answer) || null;
  const isolated = $(ids.isolated);
  const dry = $(ids.dry);
  const warn = $(ids.warn);
  isolated.dataset.count = a ? String(a.isolated.links.length) : '';
  isolated.textContent = a ? tf('iso.isolated', {
    n: a.isolated.links.length, length: formatDistance(a.isolated.length_m), volume: Number(a.isolated.volume_m3).toFixed(1),
  }) : '';
  dry.dataset.count = a ? String(a.dry.links.length) : '';
  dry.textContent = a ? tf('iso.dry', { n: a.dry.links.length, length: formatDistance(a.dry.length_m) }) : '';
  warn.hidden = !(iso && (!a || a.no_source));
  warn.textContent = iso && !a ? t('iso.no_answer') : a && a.no_source ? t('iso.no_source') : '';

  const valves = (a && a.valves) || [];
  $(ids.valvesTitle).textContent = tf('iso.valves', { n: valves.length });
  $(ids.valves).replaceChildren(...valves.map((v) => valveItem(v)));
  const already = (a && a.already_closed) || [];
  const note = $(ids.valvesNote);
  note.hidden = valves.length > 0 && already.length === 0;
  note.textContent = [valves.length ? '' : t('iso.valves_none'), already.length ? tf('iso.already_closed', { n: already.length }) : '']
    .filter(Boolean).join(' · ');
  const cannot = (a && a.cannot_close) || [];
  $(ids.cannotBox).hidden = cannot.length === 0;
  $(ids.cannot).replaceChildren(...cannot.map((v) => cannotItem(v)));

  const c = a && a.customers;
  const cust = $(ids.customers);
  cust.dataset.count = c ? String(c.count) : '';
  cust.textContent = c ? tf('iso.customers_line', { n: c.count, units: c.units, p: c.priority }) : '';
  return a;
}

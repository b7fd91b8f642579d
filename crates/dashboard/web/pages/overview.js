// Overview: what is happening right now. Counters move with the live stream
// (system-events and incidents.detected over the WebSocket), not by polling.

import { h, replace } from '../lib/dom.js';
import { subscribe } from '../lib/live.js';
import { SEVERITIES, number, severityClass } from '../lib/format.js';

export default async function render(root) {
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  let total = 0;
  const cells = Object.fromEntries(SEVERITIES.map((s) => [s, h('span', { class: 'value', 'data-severity': s }, '0')]));
  const totalCell = h('span', { class: 'value', id: 'live-events-total' }, '0');
  const incidents = h('ul', { class: 'feed', id: 'live-incidents' });

  replace(root,
    h('h1', {}, 'Overview'),
    h('div', { class: 'tiles' },
      h('div', { class: 'tile' }, h('span', { class: 'label' }, 'Events since opened'), totalCell),
      SEVERITIES.map((s) => h('div', { class: 'tile' }, h('span', { class: severityClass(s) }, s), cells[s]))),
    h('h2', {}, 'New incidents'),
    incidents);

  const stop = subscribe(['system-events', 'incidents.detected'], (record) => {
    if (record.topic === 'system-events') {
      total += 1;
      const severity = String(record.value?.severity || '').toLowerCase();
      if (severity in counts) {
        counts[severity] += 1;
        cells[severity].textContent = number(counts[severity], 0);
      }
      totalCell.textContent = number(total, 0);
    } else {
      const incident = record.value || {};
      incidents.prepend(h('li', {},
        h('span', { class: severityClass(incident.severity) }, incident.severity || '?'), ' ',
        h('a', { href: `#/incidents/${encodeURIComponent(incident.id || record.key)}` }, incident.title || record.key)));
      while (incidents.children.length > 20) incidents.lastChild.remove();
    }
  });
  return stop;
}

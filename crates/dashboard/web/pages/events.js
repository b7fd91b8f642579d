// Events: search the stored events with the query API's filters (service, severity, type,
// environment, host, text, time range), page through them with the keyset cursor, and
// open one to see everything it carries. The filters live in the hash query, so a link
// reproduces the search. Event text comes from producers: all of it is rendered as text.

import { h, replace, append } from '../lib/dom.js';
import { get } from '../lib/api.js';
import { SEVERITIES, severityClass, time } from '../lib/format.js';

const PAGE = 50;
const RANGES = [['1', 'last hour'], ['6', 'last 6 h'], ['24', 'last 24 h'], ['168', 'last 7 days'], ['720', 'last 30 days'], ['', 'any time']];
const FIELDS = ['q', 'service', 'severity', 'event_type', 'environment', 'host', 'hours'];
const DETAILS_SHOWN = 160;

export default async function render(root, { query, navigate }) {
  const state = Object.fromEntries(FIELDS.map((f) => [f, query.get(f) ?? '']));
  if (!query.has('hours')) state.hours = '24';

  const input = (name, label, props = {}) => h('label', {}, label,
    h('input', { name, id: `events-${name}`, value: state[name], ...props }));
  const severity = h('select', { name: 'severity', id: 'events-severity' },
    h('option', { value: '' }, 'any'),
    SEVERITIES.map((s) => h('option', { value: s, selected: s === state.severity }, s)));
  const hours = h('select', { name: 'hours', id: 'events-hours' },
    RANGES.map(([value, text]) => h('option', { value, selected: value === state.hours }, text)));
  const form = h('form', { class: 'filters', id: 'events-form', onsubmit: (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const field of FIELDS) {
      const value = String(data.get(field) ?? '').trim();
      if (value || field === 'hours') next.set(field, value);
    }
    navigate(`#/events?${next}`);
  } },
  input('q', 'Text in details', { type: 'search', placeholder: 'timeout', size: 18 }),
  input('service', 'Service', { placeholder: 'checkout', size: 14 }),
  h('label', {}, 'Severity', severity),
  input('event_type', 'Type', { placeholder: 'ERROR', size: 10 }),
  input('environment', 'Environment', { placeholder: 'PRODUCTION', size: 12 }),
  input('host', 'Host', { size: 12 }),
  h('label', {}, 'Time', hours),
  h('button', { type: 'submit', id: 'events-search' }, 'Search'),
  h('button', { type: 'button', class: 'secondary', onclick: () => navigate('#/events') }, 'Clear'));

  const body = h('tbody', { id: 'events-rows' });
  const status = h('p', { class: 'muted small', id: 'events-status' }, 'Searching…');
  const more = h('button', { type: 'button', class: 'secondary', id: 'events-more', hidden: true }, 'Load more');
  replace(root,
    h('h1', {}, 'Events'),
    form,
    h('table', { class: 'events', id: 'events-table' },
      h('thead', {}, h('tr', {}, h('th', { class: 'col-time' }, 'Time'), h('th', {}, 'Service'),
        h('th', {}, 'Severity'), h('th', {}, 'Type'), h('th', {}, 'Details'))),
      body),
    h('div', { class: 'events-footer' }, status, more));

  let cursor = null;
  let shown = 0;
  let aborted = false;

  async function load() {
    more.disabled = true;
    try {
      const page = await get('/api/v1/events', {
        q: state.q, service: state.service, severity: state.severity,
        event_type: state.event_type, environment: state.environment, host: state.host,
        hours: state.hours, limit: PAGE, cursor,
      });
      if (aborted) return;
      for (const event of page?.items || []) append(body, rows(event));
      shown += page?.items?.length || 0;
      cursor = page?.next_cursor || null;
      more.hidden = !cursor;
      status.textContent = shown ? `${shown} event${shown === 1 ? '' : 's'}${cursor ? ', more available' : ''}, newest first. Click a row for everything it carries.`
        : 'No events match.';
    } catch (error) {
      if (aborted) return;
      replace(status, h('span', { class: 'error' }, problemText(error)));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', load);
  await load();
  return () => { aborted = true; };
}

/** A result row and its (hidden until clicked) detail row. */
function rows(event) {
  const details = String(event.details ?? '');
  const detail = h('tr', { class: 'event-detail', hidden: true },
    h('td', { colspan: 5 }));
  const row = h('tr', {
    class: 'event-row', tabindex: 0, 'aria-expanded': 'false', dataset: { id: event.event_id },
    onclick: () => toggle(), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } },
  },
  h('td', { class: 'col-time' }, time(event.timestamp)),
  h('td', {}, event.service_name),
  h('td', {}, h('span', { class: severityClass(event.severity) }, event.severity)),
  h('td', {}, event.event_type),
  h('td', { class: 'details', title: details.length > DETAILS_SHOWN ? details.slice(0, 1000) : null },
    details.length > DETAILS_SHOWN ? `${details.slice(0, DETAILS_SHOWN)}…` : details));
  let filled = false;
  function toggle() {
    const open = detail.hidden;
    detail.hidden = !open;
    row.setAttribute('aria-expanded', String(open));
    row.classList.toggle('open', open);
    if (open && !filled) {
      filled = true;
      replace(detail.firstChild, expanded(event));
    }
  }
  return [row, detail];
}

/** Everything one event carries, as text. */
function expanded(event) {
  const facts = [
    ['Event id', event.event_id], ['Time', time(event.timestamp)], ['Received', time(event.received_at)],
    ['Service', event.service_name], ['Environment', event.environment], ['Host', event.host || '—'],
    ['Source', `${event.source || '—'} (${event.source_type || '—'})`], ['Fingerprint', event.fingerprint],
    ['Correlation id', event.correlation_id],
  ];
  const tags = Object.entries(event.tags || {});
  const correlations = h('div', { class: 'correlations' },
    h('button', { type: 'button', class: 'link', onclick: async (e) => {
      e.stopPropagation();
      replace(correlations, h('span', { class: 'muted' }, 'Loading correlations…'));
      try {
        const answer = await get(`/api/v1/events/${encodeURIComponent(event.event_id)}/correlations`);
        const items = answer?.items || [];
        replace(correlations, items.length
          ? h('ul', {}, items.map((c) => h('li', {},
            h('a', { href: `#/incidents/${encodeURIComponent(c.incident_id)}` }, `incident ${c.incident_id}`),
            ` — ${c.kind} (${Number(c.score).toFixed(2)}): ${c.reason}`)))
          : h('span', { class: 'muted' }, 'Not linked to any incident.'));
      } catch (error) {
        replace(correlations, h('span', { class: 'error' }, problemText(error)));
      }
    } }, 'Show the incidents it is linked to'));
  return h('div', { class: 'event-full' },
    h('dl', { class: 'facts' }, facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')])),
    h('h3', {}, 'Details'),
    h('pre', { class: 'event-details' }, String(event.details ?? '')),
    tags.length ? [h('h3', {}, 'Tags'), h('p', {}, tags.map(([k, v]) => h('code', { class: 'tag' }, `${k}=${v}`)))] : null,
    h('h3', {}, 'Metadata'),
    h('pre', { class: 'event-metadata' }, JSON.stringify(event.metadata ?? {}, null, 2)),
    correlations);
}

function problemText(error) {
  const fields = (error?.errors || []).map((e) => `${e.field}: ${e.reason}`).join('; ');
  return fields ? `${error.message} (${fields})` : String(error?.message || error);
}

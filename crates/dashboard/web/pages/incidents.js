// Incidents: what is (or was) wrong, newest first. Filters live in the hash query so a
// filtered view can be bookmarked and shared; older pages load on demand (keyset cursor);
// new and changed incidents arrive over the live stream and are updated in place.

import { h, replace } from '../lib/dom.js';
import { get, withQuery } from '../lib/api.js';
import { subscribe } from '../lib/live.js';
import { SEVERITIES, ago, number, severityClass, time } from '../lib/format.js';

const STATUSES = ['open', 'acknowledged', 'resolved'];
const RANGES = [['', 'any time'], ['1', 'last hour'], ['6', 'last 6 h'], ['24', 'last 24 h'], ['168', 'last 7 days']];
const PAGE = 50;

/** Whether `incident` passes the filters `f` (the live feed is not filtered by the node). */
function matches(incident, f) {
  if (f.status && !f.status.split(',').includes(incident.status)) return false;
  if (f.min_severity && SEVERITIES.indexOf(incident.severity) > SEVERITIES.indexOf(f.min_severity)) return false;
  if (f.service && incident.service_name !== f.service
    && !(incident.affected_services || []).includes(f.service)) return false;
  if (f.hours && incident.detected_at < Date.now() - Number(f.hours) * 3_600_000) return false;
  return true;
}

/** The status as a badge (`.status status-<name>`). */
export function statusBadge(status) {
  return h('span', { class: `status status-${status}` }, String(status || '?').replace('_', ' '));
}

export default async function render(root, { query, navigate }) {
  const filters = {
    status: query.get('status') || '',
    min_severity: query.get('min_severity') || '',
    service: query.get('service') || '',
    hours: query.get('hours') || '',
  };
  const apply = (change) => navigate(withQuery('#/incidents', { ...filters, ...change }));

  const option = (value, label, current) => h('option', { value, selected: value === current }, label);
  const statusSelect = h('select', { id: 'filter-status', onchange: () => apply({ status: statusSelect.value }) },
    option('', 'any status', filters.status),
    option('open,acknowledged', 'not resolved', filters.status),
    STATUSES.map((s) => option(s, s, filters.status)));
  const severitySelect = h('select', { id: 'filter-severity', onchange: () => apply({ min_severity: severitySelect.value }) },
    option('', 'any severity', filters.min_severity),
    SEVERITIES.map((s) => option(s, `${s} or worse`, filters.min_severity)));
  const serviceInput = h('input', { id: 'filter-service', value: filters.service, placeholder: 'e.g. checkout', size: 16 });
  const rangeSelect = h('select', { id: 'filter-range', onchange: () => apply({ hours: rangeSelect.value }) },
    RANGES.map(([value, label]) => option(value, label, filters.hours)));
  const form = h('form', { class: 'filters', onsubmit: (event) => {
    event.preventDefault();
    apply({ service: serviceInput.value.trim() });
  } },
  h('label', {}, 'Status', statusSelect),
  h('label', {}, 'Severity', severitySelect),
  h('label', {}, 'Service', serviceInput),
  h('label', {}, 'Detected', rangeSelect),
  h('button', { type: 'submit', class: 'secondary' }, 'Apply'),
  Object.values(filters).some(Boolean)
    ? h('button', { type: 'button', class: 'link', onclick: () => navigate('#/incidents') }, 'Clear filters') : null);

  const body = h('tbody', { id: 'incidents-rows' });
  const table = h('table', { class: 'incidents-table', id: 'incidents-table' },
    h('colgroup', {}, ['7em', null, '9em', '14em', '8.5em', '8em', '4.5em'].map((w) => h('col', { style: w ? { width: w } : {} }))),
    h('thead', {}, h('tr', {},
      h('th', {}, 'Severity'), h('th', {}, 'Incident'), h('th', {}, 'Status'), h('th', {}, 'Services'),
      h('th', {}, 'Age'), h('th', {}, 'Assignee'), h('th', { class: 'num', title: 'occurrences' }, '#'))),
    body);
  const empty = h('p', { class: 'muted', id: 'incidents-empty', hidden: true }, 'No incidents match these filters.');
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const more = h('button', { type: 'button', id: 'incidents-more', class: 'secondary', hidden: true }, 'Load more');
  const summary = h('span', { class: 'muted', id: 'incidents-count' });

  replace(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Incidents'), summary),
    form, error, table, empty, h('div', { class: 'more' }, more));

  const rows = new Map();
  let cursor = null;

  function cells(incident) {
    const services = [...new Set([incident.service_name, ...(incident.affected_services || [])])].filter(Boolean);
    return [
      h('td', {}, h('span', { class: severityClass(incident.severity) }, incident.severity)),
      h('td', { class: 'title' },
        h('a', { href: `#/incidents/${encodeURIComponent(incident.id)}`, class: 'incident-link' }, incident.title || incident.id),
        incident.flapping ? h('span', { class: 'tag warn', title: 'opened and resolved repeatedly' }, 'flapping') : null),
      h('td', {}, statusBadge(incident.status)),
      h('td', { class: 'services' }, services.map((s) => h('span', { class: 'tag' }, s))),
      h('td', { class: 'age', title: time(incident.detected_at), dataset: { at: String(incident.detected_at) } }, ago(incident.detected_at)),
      h('td', {}, incident.assignee || h('span', { class: 'muted' }, '—')),
      h('td', { class: 'num' }, number(incident.occurrences, 0)),
    ];
  }

  function upsert(incident, { prepend = false, flash = false } = {}) {
    let row = rows.get(incident.id);
    if (row) {
      replace(row, cells(incident));
    } else {
      row = h('tr', { dataset: { id: incident.id } }, cells(incident));
      rows.set(incident.id, row);
      if (prepend) body.prepend(row); else body.append(row);
    }
    if (flash) {
      row.classList.remove('flash');
      void row.offsetWidth; // restarts the animation
      row.classList.add('flash');
    }
  }

  function showCount() {
    empty.hidden = rows.size > 0;
    table.hidden = rows.size === 0;
    summary.textContent = `${number(rows.size, 0)} shown${cursor ? ' (more available)' : ''}`;
  }

  async function load() {
    more.disabled = true;
    try {
      const page = await get('/api/v1/incidents', { ...filters, limit: PAGE, cursor });
      for (const incident of page.items || []) upsert(incident);
      cursor = page.next_cursor || null;
      more.hidden = !cursor;
      error.hidden = true;
    } catch (problem) {
      replace(error, `Could not load incidents: ${problem.message}`);
      error.hidden = false;
    } finally {
      more.disabled = false;
      showCount();
    }
  }
  more.addEventListener('click', load);
  await load();

  const stop = subscribe(['incidents.detected', 'incidents.updated'], (record) => {
    const incident = record.value;
    if (!incident?.id) return;
    if (matches(incident, filters)) {
      upsert(incident, { prepend: true, flash: true });
    } else if (rows.has(incident.id)) {
      rows.get(incident.id).remove();
      rows.delete(incident.id);
    }
    showCount();
  });
  // Ages move on without reloading anything.
  const ticker = setInterval(() => {
    for (const cell of body.querySelectorAll('td.age')) cell.textContent = ago(Number(cell.dataset.at));
  }, 10_000);
  return () => { stop(); clearInterval(ticker); };
}

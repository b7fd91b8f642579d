// Playbook executions: every run, newest first, filterable by status (in the hash query).
// Executions are not on the live stream, so the list is re-read every few seconds (more
// often while runs are going) and rows are updated in place.

import { h, replace } from '../lib/dom.js';
import { get, withQuery } from '../lib/api.js';
import { ago, time } from '../lib/format.js';
import { statusBadge } from './incidents.js';

export const EXECUTION_STATUSES = ['pending', 'running', 'awaiting_approval', 'succeeded', 'failed', 'rolled_back', 'rejected', 'dry_run'];
const FINAL = new Set(['succeeded', 'failed', 'rolled_back', 'rejected', 'dry_run']);
const POLL_MS = 3000;

/** Whether nothing more will happen to a run in `status`. */
export const isFinal = (status) => FINAL.has(status);

/** A one-line description of what a run is about (`subject` is `{kind, value}`). */
export function subjectSummary(subject) {
  const v = subject?.value || {};
  const what = v.title || v.details || v.explanation || v.event_type || v.id || v.event_id || '';
  return [subject?.kind, v.service_name, what].filter(Boolean).join(' · ');
}

/** A link to the subject's own page, when it has one. */
export function subjectLink(subject) {
  const v = subject?.value || {};
  if (subject?.kind === 'incident' && v.id) return h('a', { href: `#/incidents/${encodeURIComponent(v.id)}` }, subjectSummary(subject));
  return subjectSummary(subject);
}

export default async function render(root, { query, navigate }) {
  const status = query.get('status') || '';
  const select = h('select', { id: 'filter-execution-status',
    onchange: () => navigate(withQuery('#/executions', { status: select.value })) },
  h('option', { value: '' }, 'any status'),
  h('option', { value: 'pending,running,awaiting_approval', selected: status === 'pending,running,awaiting_approval' }, 'in progress'),
  EXECUTION_STATUSES.map((s) => h('option', { value: s, selected: s === status }, s.replace('_', ' '))));
  const body = h('tbody', { id: 'executions-rows' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const empty = h('p', { class: 'muted', hidden: true }, 'No executions match.');
  const table = h('table', { id: 'executions-table' },
    h('colgroup', {}, [null, '11em', '7em', '16em', '10em', '9em'].map((w) => h('col', { style: w ? { width: w } : {} }))),
    h('thead', {}, h('tr', {}, ['Playbook', 'Status', 'Steps', 'About', 'Started', 'By'].map((t) => h('th', {}, t)))), body);
  replace(root, h('h1', {}, 'Executions'),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, h('label', {}, 'Status', select)),
    error, table, empty);

  const rows = new Map();
  function cells(e) {
    const done = e.steps.filter((s) => ['succeeded', 'failed', 'rolled_back', 'rollback_failed', 'skipped', 'dry_run'].includes(s.status)).length;
    return [
      h('td', {}, h('a', { href: `#/executions/${encodeURIComponent(e.id)}`, class: 'execution-link' }, e.template_name || e.template_id),
        e.dry_run ? h('span', { class: 'tag' }, 'dry run') : null,
        h('div', { class: 'muted small' }, h('code', {}, e.id))),
      h('td', {}, statusBadge(e.status)),
      h('td', { class: 'num' }, `${done}/${e.steps.length}`),
      h('td', { class: 'small' }, subjectLink(e.subject)),
      h('td', { title: time(e.created_at) }, ago(e.created_at)),
      h('td', {}, e.started_by),
    ];
  }

  let timer = null;
  let stopped = false;
  async function load() {
    try {
      const { items = [] } = await get('/api/v1/executions', { status, limit: 100 });
      const seen = new Set();
      let previous = null;
      for (const e of items) {
        seen.add(e.id);
        let row = rows.get(e.id);
        if (row) replace(row, cells(e));
        else {
          row = h('tr', { dataset: { id: e.id } }, cells(e));
          rows.set(e.id, row);
        }
        // Keep the node's order (newest first) without rebuilding rows that did not move.
        const want = previous ? previous.nextSibling : body.firstChild;
        if (want !== row) body.insertBefore(row, want);
        previous = row;
      }
      for (const [id, row] of rows) if (!seen.has(id)) { row.remove(); rows.delete(id); }
      empty.hidden = items.length > 0;
      error.hidden = true;
      // Quickly while something runs, slowly otherwise (new runs still show up).
      if (!stopped) timer = setTimeout(load, items.some((e) => !isFinal(e.status)) ? POLL_MS : POLL_MS * 4);
    } catch (problem) {
      replace(error, `Could not load executions: ${problem.message}`);
      error.hidden = false;
      if (!stopped) timer = setTimeout(load, POLL_MS * 4);
    }
  }
  await load();
  return () => { stopped = true; clearTimeout(timer); };
}

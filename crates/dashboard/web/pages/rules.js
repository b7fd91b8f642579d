// Rules and playbooks: when sightline responds (trigger rules) and how (playbooks). Both
// are edited as forms whose structured parts (a rule's condition, a playbook's steps) are
// JSON; the node compiles them before storing, and its complaints (a path such as
// `conditions.metadata.cpu_usage.$gt`) are shown next to the part they are about. A rule can
// be backtested over stored history and a playbook dry-run against a subject; nothing runs.

import { h, replace } from '../lib/dom.js';
import { del, get, hasRole, post, put, withQuery } from '../lib/api.js';
import { errorSlots, parseJson } from '../lib/problems.js';
import { SEVERITIES, number, severityClass, time } from '../lib/format.js';
import { statusBadge } from './incidents.js';

const ENGINEER_ONLY = 'Needs the engineer role';
const RISKS = ['low', 'medium', 'high', 'critical'];

const EXAMPLE_CONDITION = { event_type: 'ERROR', service_name: 'checkout' };
const EXAMPLE_STEPS = [
  { name: 'diagnose', kind: 'diagnostic', action: { type: 'noop' } },
  { name: 'restart', kind: 'remediation', approval_required: true, action: { type: 'noop' } },
];

const pretty = (value) => JSON.stringify(value, null, 2);
const optionalNumber = (input) => (input.value.trim() === '' ? null : Number(input.value));
const field = (label, control, hint) => h('label', {}, label, control, hint ? h('span', { class: 'hint small' }, hint) : null);

/** An inline "are you sure" in place of `confirm()`: the button turns into Yes/No. */
function confirmButton(label, question, action, props = {}) {
  const holder = h('span', { class: 'confirm' });
  const start = h('button', { type: 'button', class: 'danger', ...props, onclick: () => {
    replace(holder, h('span', { class: 'small' }, question, ' '),
      h('button', { type: 'button', class: 'danger', dataset: { confirm: 'yes' }, onclick: () => action(holder) }, 'Yes, delete'), ' ',
      h('button', { type: 'button', class: 'secondary', onclick: () => replace(holder, start) }, 'No'));
  } }, label);
  return replace(holder, start);
}

export default async function render(root, { query, navigate }) {
  const tab = query.get('tab') === 'playbooks' ? 'playbooks' : 'triggers';
  const canEdit = hasRole('engineer');
  const tabs = h('div', { class: 'tabs', role: 'tablist' },
    [['triggers', 'Trigger rules'], ['playbooks', 'Playbooks']].map(([name, label]) => h('button', {
      type: 'button', role: 'tab', id: `tab-${name}`, 'aria-selected': String(tab === name),
      class: tab === name ? 'tab active' : 'tab',
      onclick: () => navigate(withQuery('#/rules', { tab: name === 'triggers' ? '' : name })),
    }, label)));
  const panel = h('div', { class: 'tab-panel', role: 'tabpanel' });
  replace(root, h('h1', {}, 'Rules & playbooks'), tabs, panel);
  if (tab === 'playbooks') await playbooks(panel, canEdit);
  else await triggers(panel, canEdit);
}

/* ── trigger rules ── */

async function triggers(panel, canEdit) {
  const listError = h('p', { class: 'error', role: 'alert', hidden: true });
  const body = h('tbody', { id: 'rules-rows' });
  const table = h('table', { id: 'rules-table' }, h('thead', {}, h('tr', {},
    ['Name', 'On', 'Severity ≥', 'Threshold', 'Throttle', 'Playbook', 'Active', ''].map((t) => h('th', {}, t)))), body);
  const formBox = h('div', { id: 'rule-form-box' });
  const tools = h('div', { id: 'rule-tools' });
  const create = h('button', { type: 'button', id: 'rule-new', disabled: !canEdit, title: canEdit ? undefined : ENGINEER_ONLY,
    onclick: () => showForm(null) }, 'New trigger rule');
  replace(panel, h('div', { class: 'toolbar' }, create), formBox, listError, table, tools);

  let templates = [];
  try { templates = (await get('/api/v1/rules/responses')).items || []; } catch { /* the form lets the id be typed */ }

  async function load() {
    try {
      const { items = [] } = await get('/api/v1/rules/triggers');
      replace(body, items.length ? items.map(row) : h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No trigger rules yet.')));
      listError.hidden = true;
    } catch (problem) {
      replace(listError, `Could not load the rules: ${problem.message}`);
      listError.hidden = false;
    }
  }

  function row(rule) {
    const template = templates.find((t) => t.id === rule.response_template_id);
    return h('tr', { dataset: { id: rule.id, name: rule.name } },
      h('td', {}, h('strong', {}, rule.name), rule.description ? h('div', { class: 'muted small' }, rule.description) : null,
        h('details', {}, h('summary', { class: 'small' }, 'condition'), h('pre', {}, pretty(rule.conditions)))),
      h('td', {}, rule.applies_to),
      h('td', {}, rule.severity_threshold ? h('span', { class: severityClass(rule.severity_threshold) }, rule.severity_threshold) : '—'),
      h('td', {}, rule.threshold_count > 1 ? `${rule.threshold_count} in ${rule.time_window_minutes ?? '?'} min` : 'every match',
        (rule.group_by || []).length ? h('div', { class: 'muted small' }, `per ${rule.group_by.join(', ')}`) : null),
      h('td', {}, rule.throttle ? `${rule.throttle.mode.replace('_', ' ')} ${rule.throttle.minutes} min` : '—',
        rule.max_triggers_per_hour ? h('div', { class: 'muted small' }, `≤ ${rule.max_triggers_per_hour}/h`) : null),
      h('td', {}, rule.response_template_id ? (template ? template.name : h('code', {}, rule.response_template_id)) : '—'),
      h('td', {}, rule.active ? 'yes' : h('span', { class: 'muted' }, 'no')),
      rowActions(canEdit, {
        edit: () => showForm(rule),
        extra: ['Backtest', 'What it would have done', () => backtest(rule)],
        name: rule.name,
        path: `/api/v1/rules/triggers/${encodeURIComponent(rule.id)}`,
        reload: load,
      }));
  }

  function showForm(rule) {
    replace(tools);
    const name = h('input', { id: 'rule-name', value: rule?.name || '', required: true, size: 30 });
    const description = h('input', { id: 'rule-description', value: rule?.description || '', size: 50 });
    const appliesTo = h('select', { id: 'rule-applies-to' },
      ['events', 'anomalies', 'incidents'].map((k) => h('option', { value: k, selected: rule?.applies_to === k }, k)));
    const conditions = h('textarea', { id: 'rule-conditions', class: 'code', rows: 8, spellcheck: 'false',
      value: pretty(rule ? rule.conditions : EXAMPLE_CONDITION) });
    const severity = h('select', { id: 'rule-severity' }, h('option', { value: '' }, 'any'),
      SEVERITIES.map((s) => h('option', { value: s, selected: rule?.severity_threshold === s }, s)));
    const windowMinutes = h('input', { id: 'rule-window', type: 'number', min: 1, value: rule?.time_window_minutes ?? '', size: 6 });
    const threshold = h('input', { id: 'rule-threshold', type: 'number', min: 1, value: rule?.threshold_count ?? 1, size: 6 });
    const groupBy = h('input', { id: 'rule-group-by', value: (rule?.group_by || []).join(', '), placeholder: 'service_name, host', size: 24 });
    const perHour = h('input', { id: 'rule-per-hour', type: 'number', min: 1, value: rule?.max_triggers_per_hour ?? '', size: 6 });
    const throttleMode = h('select', { id: 'rule-throttle-mode' },
      [['', 'none'], ['once_within', 'once within'], ['once_after', 'once after quiet']].map(([v, l]) =>
        h('option', { value: v, selected: (rule?.throttle?.mode || '') === v }, l)));
    const throttleMinutes = h('input', { id: 'rule-throttle-minutes', type: 'number', min: 1, value: rule?.throttle?.minutes ?? '', size: 6 });
    const template = h('select', { id: 'rule-template' }, h('option', { value: '' }, 'none (record only)'),
      templates.map((t) => h('option', { value: t.id, selected: rule?.response_template_id === t.id }, t.name)),
      rule?.response_template_id && !templates.some((t) => t.id === rule.response_template_id)
        ? h('option', { value: rule.response_template_id, selected: true }, rule.response_template_id) : null);
    const active = h('input', { id: 'rule-active', type: 'checkbox', checked: rule ? rule.active : true });
    const general = h('p', { class: 'error', id: 'rule-form-error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', id: 'rule-submit' }, rule ? 'Save changes' : 'Create rule');
    const form = h('form', { class: 'card editor', id: 'rule-form', novalidate: true },
      h('h2', {}, rule ? `Edit “${rule.name}”` : 'New trigger rule'),
      h('div', { class: 'form-grid' },
        field('Name', name), field('Description', description), field('Evaluated on', appliesTo),
        field('Severity at least', severity)),
      h('label', { for: 'rule-conditions' }, 'Condition (JSON)'), conditions,
      h('div', { class: 'form-grid' },
        field('Matches needed', threshold, '1 = every match fires'), field('Within (minutes)', windowMinutes),
        field('Group by (paths)', groupBy), field('Max firings per hour', perHour),
        field('Throttle', throttleMode), field('Throttle minutes', throttleMinutes),
        field('Playbook to start', template), h('label', { class: 'check' }, active, 'Active')),
      general,
      h('div', { class: 'buttons' }, submit, ' ',
        h('button', { type: 'button', class: 'secondary', onclick: () => replace(formBox) }, 'Cancel')));
    replace(formBox, form);
    const errors = errorSlots({
      name, description, applies_to: appliesTo, conditions, severity_threshold: severity,
      time_window_minutes: windowMinutes, threshold_count: threshold, group_by: groupBy,
      max_triggers_per_hour: perHour, throttle: throttleMinutes, response_template_id: template,
    }, general);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const parsed = parseJson(conditions.value);
      if (parsed instanceof Error) { errors.mark('conditions', parsed.message); return; }
      const spec = {
        name: name.value, description: description.value, applies_to: appliesTo.value, conditions: parsed,
        severity_threshold: severity.value || null, time_window_minutes: optionalNumber(windowMinutes),
        threshold_count: optionalNumber(threshold) ?? 1,
        group_by: groupBy.value.split(',').map((s) => s.trim()).filter(Boolean),
        max_triggers_per_hour: optionalNumber(perHour),
        throttle: throttleMode.value ? { mode: throttleMode.value, minutes: optionalNumber(throttleMinutes) } : null,
        response_template_id: template.value || null, active: active.checked,
      };
      submit.disabled = true;
      try {
        if (rule) await put(`/api/v1/rules/triggers/${encodeURIComponent(rule.id)}`, spec);
        else await post('/api/v1/rules/triggers', spec);
        replace(formBox);
        await load();
      } catch (problem) {
        errors.show(problem);
      } finally {
        submit.disabled = false;
      }
    });
    name.focus();
  }

  function backtest(rule) {
    replace(formBox);
    const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    const from = h('input', { id: 'backtest-from', type: 'datetime-local', value: local(Date.now() - 24 * 3_600_000) });
    const to = h('input', { id: 'backtest-to', type: 'datetime-local', value: local(Date.now() + 60_000) });
    const general = h('p', { class: 'error', id: 'backtest-error', role: 'alert', hidden: true });
    const result = h('div', { id: 'backtest-result' });
    const run = h('button', { type: 'submit', id: 'backtest-run' }, 'Run backtest');
    const form = h('form', { class: 'inline' }, field('From', from), field('To', to), run);
    const errors = errorSlots({ from, to }, general);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      run.disabled = true;
      errors.clear();
      try {
        const report = await post(`/api/v1/rules/${encodeURIComponent(rule.id)}/backtest`, {
          from: new Date(from.value).getTime(), to: new Date(to.value).getTime(),
        });
        showReport(result, report);
      } catch (problem) {
        errors.show(problem);
      } finally {
        run.disabled = false;
      }
    });
    replace(tools, h('section', { class: 'card', id: 'backtest' },
      h('h2', {}, `Backtest “${rule.name}”`),
      h('p', { class: 'muted small' }, `Replays the stored ${rule.applies_to} in the range through this rule alone. Nothing runs.`),
      form, general, result));
    tools.scrollIntoView({ block: 'start' });
  }

  await load();
}

function showReport(box, r) {
  const tile = (label, value, id) => h('div', { class: 'tile' }, h('span', { class: 'label' }, label), h('span', { class: 'value', id }, value));
  replace(box,
    h('div', { class: 'tiles' },
      tile('Scanned', number(r.scanned, 0), 'backtest-scanned'),
      tile('Matched', number(r.matches, 0), 'backtest-matches'),
      tile('Would fire', number(r.would_fire, 0), 'backtest-fired'),
      tile('Throttled', number(r.throttled, 0), 'backtest-throttled')),
    r.truncated ? h('p', { class: 'warn' }, `History was cut: only records from ${time(r.replayed_from)} on were replayed.`) : null,
    Object.keys(r.by_group || {}).length ? [h('h3', {}, 'Firings by group'),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Group'), h('th', { class: 'num' }, 'Firings'))),
        h('tbody', {}, Object.entries(r.by_group).map(([g, n]) => h('tr', {}, h('td', {}, h('code', {}, g || '(all)')), h('td', { class: 'num' }, number(n, 0))))))] : null,
    (r.firings || []).length ? [h('h3', {}, `Firings (${r.firings_listed} listed)`),
      h('table', {}, h('thead', {}, h('tr', {}, ['When', 'Subject', 'Group', 'Matches', 'Playbook'].map((t) => h('th', {}, t)))),
        h('tbody', {}, r.firings.map((f) => h('tr', {},
          h('td', {}, time(f.at)),
          h('td', {}, f.subject_kind === 'incident'
            ? h('a', { href: `#/incidents/${encodeURIComponent(f.subject_id)}` }, f.subject_id)
            : [f.subject_kind, ' ', h('code', {}, f.subject_id)]),
          h('td', {}, h('code', {}, f.group_key || '—')),
          h('td', { class: 'num' }, number(f.match_count, 0)),
          h('td', {}, f.response_template_id || '—')))))]
      : h('p', { class: 'muted' }, 'It would not have fired in this range.'));
}

/* ── playbooks ── */

async function playbooks(panel, canEdit) {
  const listError = h('p', { class: 'error', role: 'alert', hidden: true });
  const body = h('tbody', { id: 'playbooks-rows' });
  const table = h('table', { id: 'playbooks-table' }, h('thead', {}, h('tr', {},
    ['Name', 'Id', 'Risk', 'Steps', 'Updated', ''].map((t) => h('th', {}, t)))), body);
  const formBox = h('div', { id: 'playbook-form-box' });
  const tools = h('div', { id: 'playbook-tools' });
  const create = h('button', { type: 'button', id: 'playbook-new', disabled: !canEdit, title: canEdit ? undefined : ENGINEER_ONLY,
    onclick: () => showForm(null) }, 'New playbook');
  replace(panel, h('div', { class: 'toolbar' }, create), formBox, listError, table, tools);

  async function load() {
    try {
      const { items = [] } = await get('/api/v1/rules/responses');
      replace(body, items.length ? items.map(row) : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No playbooks yet.')));
      listError.hidden = true;
    } catch (problem) {
      replace(listError, `Could not load the playbooks: ${problem.message}`);
      listError.hidden = false;
    }
  }

  function row(t) {
    const gated = t.steps.filter((s) => s.approval_required).length;
    return h('tr', { dataset: { id: t.id } },
      h('td', {}, h('strong', {}, t.name), t.description ? h('div', { class: 'muted small' }, t.description) : null),
      h('td', {}, h('code', {}, t.id)),
      h('td', {}, h('span', { class: `risk risk-${t.risk_level}` }, t.risk_level)),
      h('td', {}, h('ol', { class: 'steps-brief' }, t.steps.map((s) => h('li', {},
        `${s.name} `, h('span', { class: 'muted small' }, `${s.kind} · ${s.action?.type}`),
        s.approval_required ? h('span', { class: 'tag warn' }, 'approval') : null))),
      gated ? h('div', { class: 'muted small' }, `${gated} step(s) wait for an approver`) : null),
      h('td', {}, time(t.updated_at), t.created_by ? h('div', { class: 'muted small' }, `by ${t.created_by}`) : null),
      rowActions(canEdit, {
        edit: () => showForm(t),
        extra: ['Dry-run', 'Render every step without running it', () => dryRun(t)],
        name: t.name,
        path: `/api/v1/rules/responses/${encodeURIComponent(t.id)}`,
        reload: load,
      }));
  }

  function showForm(t) {
    replace(tools);
    const id = h('input', { id: 'playbook-id', value: t?.id || '', disabled: Boolean(t), placeholder: 'generated when empty', size: 24 });
    const name = h('input', { id: 'playbook-name', value: t?.name || '', size: 30 });
    const description = h('input', { id: 'playbook-description', value: t?.description || '', size: 50 });
    const risk = h('select', { id: 'playbook-risk' }, RISKS.map((r) => h('option', { value: r, selected: (t?.risk_level || 'low') === r }, r)));
    const maxTime = h('input', { id: 'playbook-max-time', type: 'number', min: 1, value: t?.max_execution_time ?? '', placeholder: 'default', size: 8 });
    const steps = h('textarea', { id: 'playbook-steps', class: 'code', rows: 14, spellcheck: 'false', value: pretty(t ? t.steps : EXAMPLE_STEPS) });
    const general = h('p', { class: 'error', id: 'playbook-form-error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', id: 'playbook-submit' }, t ? 'Save changes' : 'Create playbook');
    const form = h('form', { class: 'card editor', id: 'playbook-form', novalidate: true },
      h('h2', {}, t ? `Edit “${t.name}”` : 'New playbook'),
      h('div', { class: 'form-grid' }, field('Id', id), field('Name', name), field('Description', description),
        field('Risk', risk), field('Time limit (s)', maxTime)),
      h('label', { for: 'playbook-steps' }, 'Steps (JSON array: name, kind, action, approval_required, rollback, risk_level)'), steps,
      general,
      h('div', { class: 'buttons' }, submit, ' ', h('button', { type: 'button', class: 'secondary', onclick: () => replace(formBox) }, 'Cancel')));
    replace(formBox, form);
    const errors = errorSlots({ id, name, description, risk_level: risk, max_execution_time: maxTime, steps }, general);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const parsed = parseJson(steps.value);
      if (parsed instanceof Error) { errors.mark('steps', parsed.message); return; }
      const doc = { name: name.value, description: description.value, risk_level: risk.value, steps: parsed };
      if (!t && id.value.trim()) doc.id = id.value.trim();
      const limit = optionalNumber(maxTime);
      if (limit !== null) doc.max_execution_time = limit;
      submit.disabled = true;
      try {
        if (t) await put(`/api/v1/rules/responses/${encodeURIComponent(t.id)}`, doc);
        else await post('/api/v1/rules/responses', doc);
        replace(formBox);
        await load();
      } catch (problem) {
        errors.show(problem);
      } finally {
        submit.disabled = false;
      }
    });
    name.focus();
  }

  function dryRun(t) {
    replace(formBox);
    const kind = h('select', { id: 'dry-run-kind' },
      [['event', 'an inline event'], ['event_id', 'a stored event id'], ['incident_id', 'an incident id']].map(([v, l]) => h('option', { value: v }, l)));
    const subject = h('textarea', { id: 'dry-run-subject', class: 'code', rows: 5, spellcheck: 'false',
      value: pretty({ service_name: 'checkout', event_type: 'ERROR', severity: 'high', details: 'example' }) });
    kind.addEventListener('change', () => {
      subject.rows = kind.value === 'event' ? 5 : 1;
      subject.value = kind.value === 'event' ? pretty({ service_name: 'checkout', event_type: 'ERROR', severity: 'high', details: 'example' }) : '';
    });
    const general = h('p', { class: 'error', id: 'dry-run-error', role: 'alert', hidden: true });
    const result = h('div', { id: 'dry-run-result' });
    const run = h('button', { type: 'submit', id: 'dry-run-run' }, 'Render steps');
    const errors = errorSlots({ subject }, general);
    const form = h('form', {}, field('Subject', kind), subject, h('div', { class: 'buttons' }, run));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      let value = subject.value.trim();
      if (kind.value === 'event') {
        value = parseJson(value);
        if (value instanceof Error) { errors.mark('subject', value.message); return; }
      }
      run.disabled = true;
      errors.clear();
      try {
        const execution = await post(`/api/v1/rules/responses/${encodeURIComponent(t.id)}/dry-run`, { subject: { [kind.value]: value } });
        replace(result, h('p', {}, statusBadge(execution.status), ' ', h('span', { class: 'muted small' }, 'recorded as execution '),
          h('a', { href: `#/executions/${encodeURIComponent(execution.id)}` }, execution.id)),
        h('table', { class: 'plan' }, h('thead', {}, h('tr', {}, ['#', 'Step', 'Would run', 'Approval'].map((x) => h('th', {}, x)))),
          h('tbody', {}, execution.steps.map((s, i) => h('tr', {},
            h('td', { class: 'num' }, String(i + 1)), h('td', {}, s.name),
            h('td', {}, h('pre', {}, s.rendered ? pretty(s.rendered) : '—'),
              (s.rendered_rollback || []).length ? h('details', {}, h('summary', { class: 'small' }, 'rollback'), h('pre', {}, pretty(s.rendered_rollback))) : null),
            h('td', {}, s.approval_required ? h('span', { class: 'tag warn' }, 'waits for an approver') : '—'))))));
      } catch (problem) {
        errors.show(problem.errors?.length ? { ...problem, errors: problem.errors.map((e) => ({ ...e, field: `subject.${e.field}` })) } : problem);
      } finally {
        run.disabled = false;
      }
    });
    replace(tools, h('section', { class: 'card', id: 'dry-run' },
      h('h2', {}, `Dry-run “${t.name}”`),
      h('p', { class: 'muted small' }, 'Renders every step for the subject exactly as it would run. Nothing is performed.'),
      form, general, result));
    tools.scrollIntoView({ block: 'start' });
  }

  await load();
}

/**
 * The Edit / extra / Delete cell of a rule or playbook row: `extra` is
 * `[label, title, onclick]`; Delete asks in place, calls DELETE `path`, then `reload()`.
 * Without the engineer role every button is disabled with a tooltip saying why.
 */
function rowActions(canEdit, { edit, extra: [label, title, onclick], name, path, reload }) {
  const tip = canEdit ? undefined : ENGINEER_ONLY;
  return h('td', { class: 'row-actions' },
    h('button', { type: 'button', class: 'secondary', disabled: !canEdit, title: tip, onclick: edit }, 'Edit'), ' ',
    h('button', { type: 'button', class: 'secondary', disabled: !canEdit, title: canEdit ? title : ENGINEER_ONLY, onclick }, label), ' ',
    canEdit ? confirmButton('Delete', `Delete “${name}”?`, async (holder) => {
      try {
        await del(path);
        await reload();
      } catch (problem) {
        replace(holder, h('span', { class: 'error small' }, problem.message));
      }
    }) : h('button', { type: 'button', class: 'danger', disabled: true, title: ENGINEER_ONLY }, 'Delete'));
}

// One playbook execution, step by step as it happens: the node is asked every second while
// the run is pending, running or waiting for approval (executions are not on the live
// stream), and the page stops asking once the run is over. Approvers approve or reject a
// paused step here with one click (their role is the authority; the single-use token the
// approval request carried is spent with it), or with that token pasted in.

import { h, replace } from '../lib/dom.js';
import { get, hasRole, post } from '../lib/api.js';
import { duration, time } from '../lib/format.js';
import { statusBadge } from './incidents.js';
import { isFinal, subjectLink } from './executions.js';

const POLL_MS = 1000;
const APPROVER_ONLY = 'Needs the approver role';

const pretty = (value) => JSON.stringify(value, null, 2);

/** What a rendered action does, in one line. */
function actionLine(r) {
  if (!r) return '';
  switch (r.type) {
    case 'http': return `${r.method} ${r.url}`;
    case 'command': return (r.argv || []).join(' ');
    case 'webhook': return `webhook ${r.url}`;
    case 'email': return `email to ${(r.to || []).join(', ')}: ${r.subject}`;
    default: return r.type;
  }
}

export default async function render(root, { params }) {
  const id = params.id;
  const canDecide = hasRole('approver');
  const head = h('div', { class: 'execution-head', id: 'execution-head' });
  const approval = h('section', { class: 'card approval', id: 'approval', hidden: true });
  const steps = h('ol', { class: 'steps', id: 'steps' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const subject = h('details', { class: 'subject' }, h('summary', {}, 'Subject'), h('pre', { id: 'execution-subject' }));
  replace(root, h('a', { href: '#/executions', class: 'back' }, '← All executions'), head, error, approval, h('h2', {}, 'Steps'), steps, subject);

  const stepViews = [];
  function stepView(i) {
    if (stepViews[i]) return stepViews[i];
    const view = {
      status: h('span', { class: 'step-status' }),
      name: h('strong', {}),
      meta: h('span', { class: 'muted small step-meta' }),
      action: h('code', { class: 'step-action' }),
      output: h('pre', { class: 'step-output', hidden: true }),
      error: h('p', { class: 'error small step-error', hidden: true }),
    };
    view.el = h('li', { class: 'step', dataset: { index: String(i) } },
      h('div', { class: 'step-head' }, view.status, ' ', view.name, ' ', view.meta),
      h('div', {}, view.action), view.error, view.output);
    steps.append(view.el);
    stepViews[i] = view;
    return view;
  }

  function showStep(s, i) {
    const v = stepView(i);
    v.el.dataset.status = s.status;
    replace(v.status, statusBadge(s.status));
    replace(v.name, `${i + 1}. ${s.name}`);
    const bits = [];
    if (s.approval_required) bits.push(s.approved_by ? `approved by ${s.approved_by}` : 'needs approval');
    if (s.started_at) bits.push(`started ${time(s.started_at)}`);
    if (s.started_at && s.finished_at) bits.push(`took ${duration(s.finished_at - s.started_at)}`);
    replace(v.meta, bits.join(' · '));
    replace(v.action, actionLine(s.rendered));
    v.output.hidden = !s.output;
    if (v.output.textContent !== (s.output || '')) v.output.textContent = s.output || '';
    v.error.hidden = !s.error;
    replace(v.error, s.error || '');
  }

  let shownApproval = null;
  function showApproval(e) {
    const waiting = e.status === 'awaiting_approval';
    approval.hidden = !waiting;
    if (!waiting) { shownApproval = null; return; }
    const index = e.steps.findIndex((s) => s.status === 'awaiting_approval');
    // Keep the form (and what the approver typed) while the same step waits.
    if (shownApproval === index) return;
    shownApproval = index;
    const step = e.steps[index];
    const tip = canDecide ? undefined : APPROVER_ONLY;
    const token = h('input', { id: 'approval-token', class: 'code', size: 40, autocomplete: 'off', spellcheck: 'false',
      placeholder: 'token (optional)', disabled: !canDecide, title: tip });
    const state = h('p', { class: 'small', id: 'approval-state', role: 'alert' });
    const decide = (verb) => async () => {
      approveButton.disabled = true;
      rejectButton.disabled = true;
      token.removeAttribute('aria-invalid');
      const pasted = token.value.trim();
      try {
        const updated = await post(`/api/v1/executions/${encodeURIComponent(id)}/${verb}`, pasted ? { token: pasted } : {});
        state.className = 'small';
        replace(state, verb === 'approve' ? 'Approved; the run goes on.' : 'Rejected; the run ends here.');
        show(updated);
        schedule();
      } catch (problem) {
        state.className = 'small error';
        token.setAttribute('aria-invalid', 'true');
        const why = { 403: 'That token does not belong to this step.', 410: 'The token expired; start a new run.',
          409: 'Someone already decided, or the run no longer waits.' }[problem.status];
        replace(state, why ? `${why} (${problem.message})` : problem.message);
        approveButton.disabled = !canDecide;
        rejectButton.disabled = !canDecide;
      }
    };
    const approveButton = h('button', { type: 'button', id: 'approve', disabled: !canDecide, title: tip, onclick: decide('approve') }, 'Approve');
    const rejectButton = h('button', { type: 'button', id: 'reject', class: 'danger', disabled: !canDecide, title: tip, onclick: decide('reject') }, 'Reject');
    replace(approval,
      h('h2', {}, `Step ${index + 1} “${step?.name}” waits for approval`),
      step?.rendered ? h('p', {}, 'It will run: ', h('code', {}, actionLine(step.rendered))) : null,
      step?.rendered ? h('details', {}, h('summary', { class: 'small' }, 'exactly'), h('pre', {}, pretty(step.rendered))) : null,
      canDecide
        ? h('p', { class: 'muted small' }, 'Decide as yourself, or paste the single-use token from the approval request (chat or email).')
        : h('p', { class: 'muted small' }, 'Only approvers can approve or reject this step.'),
      h('div', { class: 'buttons' }, token, ' ', approveButton, ' ', rejectButton),
      state);
  }

  function show(e) {
    replace(head,
      h('div', { class: 'title-row' }, h('h1', {}, e.template_name || e.template_id),
        h('span', { id: 'execution-status', dataset: { status: e.status } }, statusBadge(e.status)),
        e.dry_run ? h('span', { class: 'tag' }, 'dry run') : null),
      e.reason ? h('p', { class: 'warn', id: 'execution-reason' }, e.reason) : null,
      h('dl', { class: 'facts' },
        h('dt', {}, 'About'), h('dd', {}, subjectLink(e.subject)),
        h('dt', {}, 'Started by'), h('dd', {}, e.started_by),
        h('dt', {}, 'Rule'), h('dd', { id: 'execution-rule' }, e.rule_id ? ruleName(e.rule_id) : '—'),
        h('dt', {}, 'Created'), h('dd', {}, time(e.created_at)),
        h('dt', {}, 'Updated'), h('dd', {}, time(e.updated_at),
          isFinal(e.status) ? h('span', { class: 'muted' }, ` (took ${duration(e.updated_at - e.created_at)})`) : null),
        h('dt', {}, 'Rollback on failure'), h('dd', {}, e.rollback_on_failure ? 'yes' : 'no')));
    e.steps.forEach(showStep);
    const text = pretty(e.subject);
    const pre = document.getElementById('execution-subject');
    if (pre && pre.textContent !== text) pre.textContent = text;
    showApproval(e);
    current = e;
  }

  // The rule's name, looked up once (the run only carries its id).
  const ruleNames = new Map();
  function ruleName(ruleId) {
    if (!ruleNames.has(ruleId)) {
      ruleNames.set(ruleId, h('code', {}, ruleId));
      get(`/api/v1/rules/triggers/${encodeURIComponent(ruleId)}`)
        .then((rule) => {
          const link = h('a', { href: '#/rules', title: ruleId }, rule.name);
          ruleNames.set(ruleId, link);
          const cell = document.getElementById('execution-rule');
          if (cell) replace(cell, link);
        })
        .catch(() => { /* deleted since: the id is all there is */ });
    }
    return ruleNames.get(ruleId);
  }

  let current = null;
  let timer = null;
  let stopped = false;
  async function poll() {
    try {
      show(await get(`/api/v1/executions/${encodeURIComponent(id)}`));
      error.hidden = true;
    } catch (problem) {
      replace(error, problem.status === 404 ? `There is no execution ${id}.` : `Could not load the execution: ${problem.message}`);
      error.hidden = false;
      if (problem.status === 404) return;
    }
    schedule();
  }
  function schedule() {
    clearTimeout(timer);
    if (!stopped && (!current || !isFinal(current.status))) timer = setTimeout(poll, POLL_MS);
  }
  await poll();
  return () => { stopped = true; clearTimeout(timer); };
}

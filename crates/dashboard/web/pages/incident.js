// One incident: what it is, what happened to it (one timeline of the incident's own
// history, its events, anomalies and correlations, in time order), what the analyst
// thinks caused it, and the operator's actions (acknowledge, resolve, assign, note,
// feedback on the analysis). Changes and new analyses arrive over the live stream.

import { h, replace } from '../lib/dom.js';
import { ApiProblem, get, hasRole, patch, post } from '../lib/api.js';
import { subscribe } from '../lib/live.js';
import { ago, duration, number, severityClass, time } from '../lib/format.js';
import { statusBadge } from './incidents.js';

const ENGINEER_ONLY = 'Needs the engineer role';
const VERDICTS = [['helpful', 'Helpful'], ['not_helpful', 'Not helpful'], ['incorrect', 'Incorrect']];

/** The DOM id of a timeline entry for a cited signal (evidence links scroll to it). */
const anchor = (kind, id) => `tl-${kind}-${id}`;

/** The incident's history, events, anomalies and correlations as one list, oldest first. */
function timelineItems(detail) {
  const items = [];
  for (const entry of detail.timeline || []) {
    items.push({ at: entry.at, kind: entry.kind, label: entry.kind, text: entry.message, who: entry.actor });
  }
  for (const event of detail.events || []) {
    items.push({
      at: event.timestamp, kind: 'event', id: anchor('event', event.event_id),
      label: `${event.event_type} event`, severity: event.severity,
      text: event.details || event.event_type, who: event.service_name,
      extra: event.host ? `host ${event.host}` : '',
    });
  }
  for (const anomaly of detail.anomalies || []) {
    const signal = anomaly.signal?.metric_type || anomaly.signal?.kind || anomaly.signal?.type || '';
    items.push({
      at: anomaly.timestamp, kind: 'anomaly', id: anchor('anomaly', anomaly.id),
      label: `anomaly (${anomaly.detector})`, severity: anomaly.severity,
      text: anomaly.explanation || `${signal} = ${number(anomaly.value, 2)}`,
      who: anomaly.service_name,
      extra: `value ${number(anomaly.value, 2)}, expected ${number(anomaly.expected_low, 2)}–${number(anomaly.expected_high, 2)}, score ${number(anomaly.score, 2)}`,
    });
  }
  for (const correlation of detail.correlations || []) {
    items.push({
      at: correlation.created_at, kind: 'correlation', label: `correlation (${correlation.kind})`,
      text: correlation.reason, who: '',
      extra: `${correlation.source_id} → ${correlation.target_id}, score ${number(correlation.score, 2)}`,
    });
  }
  return items.sort((a, b) => a.at - b.at);
}

function renderTimeline(list, detail) {
  const items = timelineItems(detail);
  replace(list, items.length ? items.map((item) => h('li', {
    class: `tl tl-${item.kind}`, id: item.id, dataset: { kind: item.kind },
  },
  h('time', { class: 'tl-time', title: ago(item.at) }, time(item.at)),
  h('span', { class: 'tl-kind' }, item.label),
  item.severity ? h('span', { class: severityClass(item.severity) }, item.severity) : null,
  h('span', { class: 'tl-text' }, item.text),
  item.who ? h('span', { class: 'muted tl-who' }, item.who) : null,
  item.extra ? h('div', { class: 'muted tl-extra' }, item.extra) : null))
    : h('li', { class: 'muted' }, 'Nothing recorded yet.'));
}

export default async function render(root, { params }) {
  const id = params.id;
  const canChange = hasRole('engineer');
  const header = h('div', { class: 'incident-head', id: 'incident-head' });
  const actionError = h('p', { class: 'error', id: 'incident-action-error', role: 'alert', hidden: true });
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const timelineNote = h('p', { class: 'muted small', id: 'timeline-note' });
  const analysisBox = h('section', { class: 'card analysis', id: 'analysis', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Loading the analysis…'));
  const actions = h('div', { class: 'incident-actions', id: 'incident-actions' });

  let detail;
  try {
    detail = await get(`/api/v1/incidents/${encodeURIComponent(id)}`);
  } catch (problem) {
    replace(root, h('h1', {}, 'Incident'), h('p', { class: 'error', role: 'alert' },
      problem.status === 404 ? `There is no incident ${id}.` : `Could not load the incident: ${problem.message}`),
    h('a', { href: '#/incidents' }, '← All incidents'));
    return undefined;
  }

  replace(root,
    h('a', { href: '#/incidents', class: 'back' }, '← All incidents'),
    header, actions, actionError,
    h('div', { class: 'incident-body' },
      h('div', { class: 'incident-main' }, h('h2', {}, 'Timeline'), timelineNote, timeline),
      h('div', { class: 'incident-side' }, h('h2', {}, 'Analysis'), analysisBox)));

  function showHeader() {
    const i = detail;
    replace(header,
      h('div', { class: 'title-row' },
        h('span', { class: severityClass(i.severity), id: 'incident-severity' }, i.severity),
        h('h1', { id: 'incident-title' }, i.title),
        h('span', { id: 'incident-status' }, statusBadge(i.status))),
      i.description ? h('p', { class: 'description' }, i.description) : null,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Service'), h('dd', {}, i.service_name),
        h('dt', {}, 'Affected'), h('dd', {}, (i.affected_services || []).map((s) => h('span', { class: 'tag' }, s))),
        h('dt', {}, 'Assignee'), h('dd', { id: 'incident-assignee' }, i.assignee || h('span', { class: 'muted' }, 'unassigned')),
        h('dt', {}, 'Opened'), h('dd', {}, time(i.detected_at), h('span', { class: 'muted' }, ` (${ago(i.detected_at)})`)),
        h('dt', {}, 'Acknowledged'), h('dd', { id: 'incident-acknowledged' }, i.acknowledged_at ? time(i.acknowledged_at) : '—'),
        h('dt', {}, 'Resolved'), h('dd', { id: 'incident-resolved' }, i.resolved_at
          ? [time(i.resolved_at), h('span', { class: 'muted' }, ` (after ${duration(i.resolved_at - i.detected_at)})`)] : '—'),
        h('dt', {}, 'Occurrences'), h('dd', {}, number(i.occurrences, 0), i.flapping ? h('span', { class: 'tag warn' }, 'flapping') : null),
        h('dt', {}, 'Score'), h('dd', {}, number(i.score, 2))));
    renderTimeline(timeline, detail);
    replace(timelineNote, `${(detail.timeline || []).length} changes, ${(detail.events || []).length} events, `
      + `${(detail.anomalies || []).length} anomalies, ${(detail.correlations || []).length} correlations`
      + (detail.events_truncated ? ' (only the first 100 events are shown)' : ''));
    showActions();
  }

  async function change(body, button) {
    actionError.hidden = true;
    button.disabled = true;
    try {
      const updated = await patch(`/api/v1/incidents/${encodeURIComponent(id)}`, body);
      // The answer is the incident without its evidence; keep the evidence we have.
      detail = { ...detail, ...updated };
      showHeader();
    } catch (problem) {
      replace(actionError, problem instanceof ApiProblem && problem.errors.length
        ? problem.errors.map((e) => `${e.field}: ${e.reason}`).join('; ')
        : `Could not change the incident: ${problem.message}`);
      actionError.hidden = false;
      button.disabled = false;
    }
  }

  function showActions() {
    const tip = canChange ? undefined : ENGINEER_ONLY;
    const ack = h('button', { type: 'button', id: 'incident-ack', disabled: !canChange || detail.status !== 'open', title: tip,
      onclick: () => change({ status: 'acknowledged' }, ack) }, 'Acknowledge');
    const resolve = h('button', { type: 'button', id: 'incident-resolve', class: 'secondary',
      disabled: !canChange || detail.status === 'resolved', title: tip,
      onclick: () => change({ status: 'resolved' }, resolve) }, 'Resolve');
    const reopen = detail.status === 'resolved'
      ? h('button', { type: 'button', id: 'incident-reopen', class: 'secondary', disabled: !canChange, title: tip,
        onclick: () => change({ status: 'open' }, reopen) }, 'Reopen') : null;
    const who = h('input', { id: 'incident-assign-to', placeholder: 'assignee', value: detail.assignee || '', size: 14,
      disabled: !canChange, title: tip });
    const assign = h('button', { type: 'submit', class: 'secondary', id: 'incident-assign', disabled: !canChange, title: tip }, 'Assign');
    const note = h('input', { id: 'incident-note', placeholder: 'add a note to the timeline', size: 32, disabled: !canChange, title: tip });
    const addNote = h('button', { type: 'submit', class: 'secondary', id: 'incident-add-note', disabled: !canChange, title: tip }, 'Add note');
    replace(actions,
      ack, resolve, reopen,
      h('form', { class: 'inline', onsubmit: (event) => {
        event.preventDefault();
        const name = who.value.trim();
        change({ assignee: name || null }, assign);
      } }, who, assign),
      h('form', { class: 'inline', onsubmit: (event) => {
        event.preventDefault();
        if (note.value.trim()) change({ note: note.value }, addNote);
      } }, note, addNote),
      canChange ? null : h('span', { class: 'muted small' }, 'Read-only: changing incidents needs the engineer role.'));
  }

  function evidenceLink(ref) {
    const target = anchor(ref.kind, ref.id);
    const present = () => document.getElementById(target);
    return h('li', {}, h('span', { class: 'tag' }, ref.kind), ' ',
      h('a', { href: `#/incidents/${encodeURIComponent(id)}`, class: 'evidence-link', dataset: { target },
        onclick: (event) => {
          event.preventDefault();
          const el = present();
          if (!el) return;
          el.scrollIntoView({ block: 'center', behavior: 'smooth' });
          el.classList.remove('flash');
          void el.offsetWidth;
          el.classList.add('flash');
        } }, h('code', {}, ref.id)),
      present() ? null : h('span', { class: 'muted small' }, ' (not in this incident\'s timeline)'));
  }

  function showAnalysis(a) {
    if (!a) {
      replace(analysisBox,
        h('p', { class: 'muted', id: 'analysis-pending' }, 'No analysis yet. The analyst runs on new and changed incidents; it will appear here when it completes.'),
        regenerate('Analyse now'));
      return;
    }
    const pct = Math.round(Math.max(0, Math.min(1, Number(a.confidence) || 0)) * 100);
    const feedbackNote = h('input', { id: 'feedback-notes', placeholder: 'optional note', size: 24 });
    const feedbackState = h('p', { class: 'small', id: 'feedback-state', role: 'status' });
    const verdictButtons = VERDICTS.map(([verdict, label]) => h('button', {
      type: 'button', class: 'secondary', dataset: { verdict },
      onclick: async (event) => {
        const buttons = verdictButtons;
        for (const b of buttons) b.disabled = true;
        feedbackState.className = 'small';
        try {
          await post(`/api/v1/analysis/${encodeURIComponent(a.id)}/feedback`, { verdict, notes: feedbackNote.value });
          replace(feedbackState, `Recorded as “${label.toLowerCase()}”. Thank you.`);
          event.target.classList.add('chosen');
        } catch (problem) {
          feedbackState.className = 'small error';
          replace(feedbackState, `Feedback not recorded: ${problem.message}`);
          for (const b of buttons) b.disabled = false;
        }
      },
    }, label));
    replace(analysisBox,
      a.status && a.status !== 'completed'
        ? h('p', { class: 'error' }, `The analysis ${a.status}${a.error ? `: ${a.error}` : ''}`) : null,
      h('h3', {}, 'Root cause'),
      h('p', { class: 'root-cause', id: 'analysis-root-cause' }, a.root_cause),
      a.root_cause_service ? h('p', {}, 'Service: ', h('span', { class: 'tag' }, a.root_cause_service)) : null,
      h('div', { class: 'confidence', id: 'analysis-confidence', title: `confidence ${pct}%` },
        h('span', { class: 'label' }, 'Confidence'),
        h('span', { class: 'bar', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct) },
          h('span', { class: 'fill', style: { width: `${pct}%` } })),
        h('span', { class: 'pct' }, `${pct}%`)),
      (a.flags || []).length ? h('div', { class: 'flags', id: 'analysis-flags' },
        h('strong', {}, 'Check before acting: '),
        h('ul', {}, a.flags.map((f) => h('li', {}, f)))) : null,
      (a.impacted_services || []).length ? [h('h3', {}, 'Impacted services'),
        h('p', {}, a.impacted_services.map((s) => h('span', { class: 'tag' }, s)))] : null,
      (a.suggested_actions || []).length ? [h('h3', {}, 'Suggested actions'),
        h('ol', { class: 'suggestions' }, a.suggested_actions.map((s) => h('li', {},
          h('strong', {}, s.title), ' ', h('span', { class: `risk risk-${s.risk}` }, `${s.risk} risk`),
          h('div', {}, s.description),
          s.command_hint ? h('pre', { class: 'hint' }, s.command_hint) : null)))] : null,
      a.executive_summary ? [h('h3', {}, 'Executive summary'), h('p', { id: 'analysis-executive' }, a.executive_summary)] : null,
      a.technical_summary ? [h('h3', {}, 'Technical summary'), h('p', { id: 'analysis-technical', class: 'prewrap' }, a.technical_summary)] : null,
      (a.evidence || []).length ? [h('h3', {}, 'Evidence'), h('ul', { class: 'evidence', id: 'analysis-evidence' }, a.evidence.map(evidenceLink))] : null,
      h('p', { class: 'muted small', id: 'analysis-model' },
        `${a.analyst || 'analyst'} · model ${a.model || '?'} · ${time(a.created_at)}`,
        a.latency_ms ? ` · ${duration(a.latency_ms)}` : '',
        a.prompt_tokens || a.completion_tokens ? ` · ${number(a.prompt_tokens, 0)} + ${number(a.completion_tokens, 0)} tokens` : ''),
      h('div', { class: 'feedback' }, h('span', {}, 'Was this right?'), verdictButtons, feedbackNote),
      feedbackState,
      regenerate('Analyse again'));
  }

  function regenerate(label) {
    const state = h('span', { class: 'small' });
    const button = h('button', { type: 'button', class: 'link', id: 'analysis-regenerate', disabled: !canChange,
      title: canChange ? 'Runs the analyst again now' : ENGINEER_ONLY,
      onclick: async () => {
        button.disabled = true;
        replace(state, ' working…');
        try {
          showAnalysis(await post('/api/v1/analysis/generate', { incident_id: id, force: true }));
        } catch (problem) {
          state.className = 'small error';
          replace(state, ` ${problem.message}`);
          button.disabled = false;
        }
      } }, label);
    return h('p', {}, button, state);
  }

  showHeader();
  try {
    showAnalysis(await get(`/api/v1/analysis/${encodeURIComponent(id)}`));
  } catch (problem) {
    if (problem.status === 404) showAnalysis(null);
    else replace(analysisBox, h('p', { class: 'error' }, `Could not load the analysis: ${problem.message}`));
  }

  let reloading = null;
  async function reload() {
    // One reload at a time; bursts of updates collapse into one.
    if (reloading) return;
    reloading = setTimeout(async () => {
      try {
        detail = await get(`/api/v1/incidents/${encodeURIComponent(id)}`);
        showHeader();
      } catch { /* keep what is shown */ }
      reloading = null;
    }, 300);
  }

  const stop = subscribe(['incidents.updated', 'analysis.completed'], (record) => {
    if (record.topic === 'analysis.completed') {
      if (record.value?.incident_id === id) showAnalysis(record.value);
    } else if (record.key === id || record.value?.id === id) {
      reload();
    }
  });
  return () => { stop(); clearTimeout(reloading); };
}

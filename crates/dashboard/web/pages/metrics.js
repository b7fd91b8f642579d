// Metrics: one service's metric as the stream engine rolled it up (1, 5 or 15 minute
// windows), with the detectors' anomalies marked on the line and a shaded expected range.
// The view lives in the hash query (#/metrics?service=…&metric=…&window=5m&hours=6), so a
// link reproduces it; new rollups and anomalies arrive over the live stream.

import { h, replace } from '../lib/dom.js';
import { get } from '../lib/api.js';
import { subscribe } from '../lib/live.js';
import { number, severityClass, time } from '../lib/format.js';
import { lineChart } from '../lib/chart.js';

const WINDOWS = ['1m', '5m', '15m'];
const RANGES = [['1', 'last hour'], ['3', 'last 3 h'], ['6', 'last 6 h'], ['12', 'last 12 h'],
  ['24', 'last 24 h'], ['72', 'last 3 days'], ['168', 'last 7 days']];
const LINES = [['p95', 'avg and p95'], ['minmax', 'avg, min and max']];
/** Windows before a point that make up its typical range. */
const TYPICAL_WINDOWS = 30;
/** Fewest earlier windows before a typical range is drawn at all. */
const TYPICAL_MIN = 5;
const MAX_ROWS = 10000;

export default async function render(root, { query, navigate }) {
  const state = {
    service: query.get('service') || '',
    metric: query.get('metric') || '',
    window: WINDOWS.includes(query.get('window')) ? query.get('window') : '1m',
    hours: query.get('hours') || (query.get('from') ? '' : '6'),
    from: query.get('from') || '',
    to: query.get('to') || '',
    lines: query.get('lines') === 'minmax' ? 'minmax' : 'p95',
  };

  const services = h('datalist', { id: 'metric-services' });
  const metrics = h('datalist', { id: 'metric-names' });
  const service = h('input', { id: 'metric-service', name: 'service', list: 'metric-services', value: state.service, placeholder: 'checkout', required: true });
  const metric = h('input', { id: 'metric-name', name: 'metric', list: 'metric-names', value: state.metric, placeholder: 'latency_ms', required: true });
  const windowSelect = h('select', { id: 'metric-window', name: 'window' },
    WINDOWS.map((w) => h('option', { value: w, selected: w === state.window }, w)));
  const rangeSelect = h('select', { id: 'metric-range', name: 'hours' },
    state.from ? h('option', { value: '', selected: true }, 'the linked range') : null,
    RANGES.map(([value, text]) => h('option', { value, selected: value === state.hours }, text)));
  const linesSelect = h('select', { id: 'metric-lines', name: 'lines' },
    LINES.map(([value, text]) => h('option', { value, selected: value === state.lines }, text)));
  const form = h('form', { class: 'filters', id: 'metric-form', onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    next.set('service', service.value.trim());
    next.set('metric', metric.value.trim());
    next.set('window', windowSelect.value);
    if (rangeSelect.value) next.set('hours', rangeSelect.value);
    else { if (state.from) next.set('from', state.from); if (state.to) next.set('to', state.to); }
    if (linesSelect.value !== 'p95') next.set('lines', linesSelect.value);
    navigate(`#/metrics?${next}`);
  } },
  h('label', {}, 'Service', service), h('label', {}, 'Metric', metric),
  h('label', {}, 'Window', windowSelect), h('label', {}, 'Range', rangeSelect),
  h('label', {}, 'Lines', linesSelect), h('button', { type: 'submit' }, 'Show'),
  services, metrics);
  for (const select of [windowSelect, rangeSelect, linesSelect]) {
    select.addEventListener('change', () => { if (service.value && metric.value) form.requestSubmit(); });
  }

  const summary = h('div', { class: 'tiles metric-tiles', id: 'metric-summary' });
  const chartBox = h('div', { class: 'chart-box', id: 'metric-chart' });
  const status = h('p', { class: 'muted small', id: 'metric-status' }, '');
  const anomalyBody = h('tbody', {});
  replace(root,
    h('h1', {}, 'Metrics'),
    form,
    summary,
    h('div', { class: 'card' }, chartBox, status),
    h('h2', {}, 'Anomalies in this range'),
    h('table', { id: 'metric-anomalies' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Severity'), h('th', {}, 'Detector'),
        h('th', { class: 'num' }, 'Value'), h('th', { class: 'num' }, 'Expected'), h('th', {}, 'Explanation'))),
      anomalyBody));

  fillPickers(services, metrics, state.service).catch((error) => console.warn('metric names unavailable', error));

  if (!state.service || !state.metric) {
    replace(chartBox, h('p', { class: 'muted chart-placeholder' }, 'Pick a service and a metric.'));
    return undefined;
  }

  const chart = lineChart(chartBox, { height: 300, label: `${state.metric} of ${state.service}` });
  const rows = new Map(); // window_start → rollup
  let anomalies = [];
  let dirty = true;

  const range = () => {
    const to = state.to ? Number(state.to) || Date.parse(state.to) : Date.now();
    const from = state.from ? Number(state.from) || Date.parse(state.from)
      : to - Number(state.hours || 6) * 3_600_000;
    return { from, to };
  };
  const rangeQuery = () => (state.from ? { from: state.from, to: state.to } : { hours: state.hours || 6 });

  function isMine(anomaly) {
    return anomaly?.service_name === state.service && anomaly?.signal?.kind === 'metric'
      && anomaly.signal.metric_type === state.metric;
  }

  function draw() {
    if (!dirty) return;
    dirty = false;
    const { from, to } = range();
    const sorted = [...rows.values()].sort((a, b) => a.window_start - b.window_start);
    const avg = sorted.map((r) => [r.window_start, r.avg]);
    const series = [{ name: 'avg', label: 'avg', cls: 's-avg', points: avg, markers: true }];
    if (state.lines === 'minmax') {
      series.push({ name: 'min', label: 'min', cls: 's-min', points: sorted.map((r) => [r.window_start, r.min]) });
      series.push({ name: 'max', label: 'max', cls: 's-max', points: sorted.map((r) => [r.window_start, r.max]) });
    } else {
      series.push({ name: 'p95', label: 'p95', cls: 's-p95', points: sorted.map((r) => [r.window_start, r.p95]) });
    }
    const band = expectedBand(sorted, anomalies, state.window);
    const markers = anomalies.map((a) => ({
      t: a.timestamp, v: a.value, cls: `m-${String(a.severity).toLowerCase()}`,
      title: `${a.severity} anomaly (${a.detector}) at ${time(a.timestamp)}: ${number(a.value, 3)}, expected ${number(a.expected_low, 3)}–${number(a.expected_high, 3)}. ${a.explanation || ''}`,
    }));
    chart.update({
      series, markers, from, to,
      band: band.lower.length ? { label: band.label, lower: band.lower, upper: band.upper } : null,
      markerLabel: markers.length ? 'anomaly (hover for the detector’s explanation)' : null,
      empty: `No ${state.window} rollups of ${state.metric} for ${state.service} in this range`,
    });

    const last = sorted[sorted.length - 1];
    replace(summary,
      tile('Windows', number(sorted.length, 0)),
      tile('Last window', last ? clock(last.window_start) : '—'),
      tile('Last avg', last ? number(last.avg, 2) : '—'),
      tile('Last p95', last ? number(last.p95, 2) : '—'),
      tile('Range max', sorted.length ? number(sorted.reduce((m, r) => Math.max(m, r.max), -Infinity), 2) : '—'),
      tile('Anomalies', number(anomalies.length, 0)));
    replace(anomalyBody, anomalies.length ? anomalies.slice().sort((a, b) => b.timestamp - a.timestamp).map((a) => h('tr', {},
      h('td', {}, time(a.timestamp)),
      h('td', {}, h('span', { class: severityClass(a.severity) }, a.severity)),
      h('td', {}, a.detector),
      h('td', { class: 'num' }, number(a.value, 3)),
      h('td', { class: 'num' }, `${number(a.expected_low, 3)} – ${number(a.expected_high, 3)}`),
      h('td', {}, a.explanation || '')))
      : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No anomalies of this metric in this range.')));
  }

  async function load() {
    replace(status, 'Loading…');
    const [rollups, found] = await Promise.all([
      get('/api/v1/metrics/aggregated', {
        service: state.service, metric: state.metric, window: state.window, limit: MAX_ROWS, ...rangeQuery(),
      }),
      loadAnomalies(),
    ]);
    for (const row of rollups?.items || []) rows.set(row.window_start, row);
    anomalies = found;
    dirty = true;
    const count = rollups?.items?.length || 0;
    replace(status, count >= MAX_ROWS ? `Showing the newest ${number(MAX_ROWS, 0)} windows; pick a larger window for the whole range.`
      : `${number(count, 0)} ${state.window} windows; line points at each window's start. Live: new windows and anomalies appear as they close.`);
  }

  async function loadAnomalies() {
    const mine = [];
    let cursor;
    for (let page = 0; page < 5; page += 1) {
      const answer = await get('/api/v1/anomalies', { service: state.service, limit: 1000, cursor, ...rangeQuery() });
      mine.push(...(answer?.items || []).filter(isMine));
      cursor = answer?.next_cursor;
      if (!cursor) break;
    }
    return mine;
  }

  const stop = subscribe(['metrics.aggregated', 'anomalies'], (record) => {
    const value = record.value || {};
    if (record.topic === 'metrics.aggregated') {
      if (value.service_name !== state.service || value.metric_type !== state.metric || value.window !== state.window) return;
      if (state.to) return; // a fixed range does not grow
      rows.set(value.window_start, value);
    } else if (isMine(value)) {
      anomalies = anomalies.filter((a) => a.id !== value.id).concat([value]);
    } else {
      return;
    }
    dirty = true;
  }, { service: state.service });
  const ticker = setInterval(draw, 250);

  try {
    await load();
  } catch (error) {
    replace(status, h('span', { class: 'error' }, `Could not load: ${error.message}`));
  }
  draw();

  return () => { stop(); clearInterval(ticker); };
}

/** `ms` as the local time of day (hours and minutes). */
function clock(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

function tile(label, value) {
  return h('div', { class: 'tile' }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
}

/**
 * The shaded range: at windows holding an anomaly of the metric, the detector's expected
 * range for it; elsewhere mean ± 3σ of the avg over the previous TYPICAL_WINDOWS windows.
 */
function expectedBand(sorted, anomalies, window) {
  const width = { '1m': 60_000, '5m': 300_000, '15m': 900_000 }[window] || 60_000;
  const lower = [];
  const upper = [];
  for (let i = 0; i < sorted.length; i += 1) {
    const row = sorted[i];
    const hit = anomalies.find((a) => a.timestamp >= row.window_start && a.timestamp < row.window_start + width);
    if (hit && Number.isFinite(hit.expected_low) && Number.isFinite(hit.expected_high)) {
      lower.push([row.window_start, hit.expected_low]);
      upper.push([row.window_start, hit.expected_high]);
      continue;
    }
    const before = sorted.slice(Math.max(0, i - TYPICAL_WINDOWS), i).map((r) => r.avg);
    if (before.length < TYPICAL_MIN) continue;
    const mean = before.reduce((a, b) => a + b, 0) / before.length;
    const sd = Math.sqrt(before.reduce((a, b) => a + (b - mean) ** 2, 0) / before.length);
    lower.push([row.window_start, mean - 3 * sd]);
    upper.push([row.window_start, mean + 3 * sd]);
  }
  return {
    lower, upper,
    label: anomalies.length
      ? `typical range: mean ± 3σ of the previous ${TYPICAL_WINDOWS} windows; at anomalies, the detector’s expected range`
      : `typical range: mean ± 3σ of the previous ${TYPICAL_WINDOWS} windows (not a detector forecast)`,
  };
}

/** Fills the service and metric suggestions from the recent 15-minute rollups. */
async function fillPickers(services, metrics, currentService) {
  const answer = await get('/api/v1/metrics/aggregated', { window: '15m', hours: 72, limit: MAX_ROWS });
  const names = new Set();
  const byService = new Map();
  for (const row of answer?.items || []) {
    names.add(row.service_name);
    if (!byService.has(row.service_name)) byService.set(row.service_name, new Set());
    byService.get(row.service_name).add(row.metric_type);
  }
  replace(services, [...names].sort().map((n) => h('option', { value: n })));
  const mine = byService.get(currentService) || new Set([...byService.values()].flatMap((s) => [...s]));
  replace(metrics, [...mine].sort().map((n) => h('option', { value: n })));
}

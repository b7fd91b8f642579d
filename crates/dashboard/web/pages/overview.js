// Overview: what is happening right now. Live counters, the event rate by severity and the
// noisiest services move with the WebSocket stream (system-events), seeded from the last
// five minutes of history; open incidents are loaded once and then kept current from
// incidents.detected / incidents.updated; ingest health is polled every 5 s.
// Every region has a fixed size and shows a placeholder first, so slow calls never delay
// the first paint and arriving data never moves the layout. The DOM is touched at most
// every 250 ms however fast events arrive.

import { h, replace } from '../lib/dom.js';
import { get } from '../lib/api.js';
import { subscribe } from '../lib/live.js';
import { SEVERITIES, number, severityClass, time } from '../lib/format.js';
import { lineChart, bar, setBar } from '../lib/chart.js';

/** Seconds of history the rate chart and the service table cover. */
const WINDOW_S = 300;
/** Rows of the noisy-services table. */
const TOP = 8;
const TICK_MS = 250;
const HEALTH_MS = 5000;
/** Most open incidents loaded at start (pages of 1000). */
const MAX_OPEN = 5000;

export default async function render(root) {
  // ── state ──
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  let total = 0;
  /** second → {severity → n} and second → Map(service → n), the last WINDOW_S seconds. */
  const bySecond = new Map();
  const servicesBySecond = new Map();
  const serviceTotals = new Map();
  const openIncidents = new Map(); // id → {severity, status}
  let incidentsLoaded = false;
  let incidentsTruncated = false;
  let resolvedText = '';
  let dirty = true;
  const openedAt = Date.now();

  // ── skeleton ──
  const cells = Object.fromEntries(SEVERITIES.map((s) => [s, h('span', { class: 'value', 'data-severity': s }, '0')]));
  const totalCell = h('span', { class: 'value', id: 'live-events-total' }, '0');
  const rateCell = h('span', { class: 'value', id: 'live-rate' }, '0');
  const chartBox = h('div', { class: 'chart-box', id: 'rate-chart' });
  const chart = lineChart(chartBox, { height: 262, label: 'events per second by severity' });
  const serviceRows = Array.from({ length: TOP }, () => {
    const name = h('td', { class: 'svc' }, '—');
    const count = h('td', { class: 'num' }, '');
    const share = h('td', { class: 'num' }, '');
    const meter = bar(0);
    return { tr: h('tr', {}, name, count, h('td', { class: 'bar-cell' }, meter), share), name, count, share, meter };
  });
  const incidentCells = Object.fromEntries(SEVERITIES.map((s) => [s, h('span', { class: 'value', 'data-open-severity': s }, '…')]));
  const incidentNote = h('p', { class: 'muted small', id: 'open-incidents-note' }, 'Loading open incidents…');
  const incidents = h('ul', { class: 'feed fixed-feed', id: 'live-incidents' });
  const ready = h('span', { class: 'health-state', id: 'ready-state' }, 'checking…');
  const readyChecks = h('span', { class: 'muted small' });
  const topicBody = h('tbody', {});
  const lagNote = h('p', { class: 'muted small', id: 'lag-note' }, '');

  replace(root,
    h('h1', {}, 'Overview'),
    h('div', { class: 'tiles' },
      h('div', { class: 'tile' }, h('span', { class: 'label' }, 'Events since opened'), totalCell),
      h('div', { class: 'tile', title: 'events per second over the last 10 s' },
        h('span', { class: 'label' }, 'Events/s (10 s)'), rateCell),
      SEVERITIES.map((s) => h('div', { class: 'tile' }, h('span', { class: severityClass(s) }, s), cells[s]))),
    h('div', { class: 'grid-2 overview-grid' },
      h('div', { class: 'card' },
        h('h2', {}, 'Event rate by severity', h('span', { class: 'muted small' }, ' events/s, last 5 min')),
        chartBox),
      h('div', { class: 'card' },
        h('h2', {}, 'Noisiest services', h('span', { class: 'muted small' }, ' events, last 5 min')),
        h('table', { class: 'top-services', id: 'top-services' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Service'), h('th', { class: 'num' }, 'Events'),
            h('th', {}, ''), h('th', { class: 'num' }, 'Share'))),
          h('tbody', {}, serviceRows.map((r) => r.tr))))),
    h('div', { class: 'grid-2 overview-grid' },
      h('div', { class: 'card' },
        h('h2', {}, 'Open incidents by severity'),
        h('div', { class: 'tiles mini-tiles', id: 'open-incidents' },
          SEVERITIES.map((s) => h('a', { class: 'tile', href: `#/incidents?severity=${s}&status=open,acknowledged` },
            h('span', { class: severityClass(s) }, s), incidentCells[s]))),
        incidentNote,
        h('h2', {}, 'New incidents'),
        incidents),
      h('div', { class: 'card' },
        h('h2', {}, 'Ingest and pipeline health'),
        h('p', {}, 'Node: ', ready, ' ', readyChecks),
        h('div', { class: 'scroll-box' },
          h('table', { id: 'topics' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Topic'), h('th', { class: 'num' }, 'Records'),
              h('th', { class: 'num' }, 'End offset'), h('th', { class: 'num', title: 'growth of the end offsets between the last two polls (5 s)' }, 'In/s'),
              h('th', { class: 'num', title: 'consumer lag of the store sink, from /metrics' }, 'Sink lag'),
              h('th', { class: 'num' }, 'Size'))),
            topicBody)),
        lagNote)));

  // ── live events ──
  function addEvent(second, severity, service, n = 1) {
    let sev = bySecond.get(second);
    if (!sev) { sev = {}; bySecond.set(second, sev); }
    sev[severity] = (sev[severity] || 0) + n;
    let svc = servicesBySecond.get(second);
    if (!svc) { svc = new Map(); servicesBySecond.set(second, svc); }
    svc.set(service, (svc.get(service) || 0) + n);
    serviceTotals.set(service, (serviceTotals.get(service) || 0) + n);
  }

  function prune(nowS) {
    for (const [second, svc] of servicesBySecond) {
      if (second > nowS - WINDOW_S) continue;
      for (const [service, n] of svc) {
        const left = (serviceTotals.get(service) || 0) - n;
        if (left > 0) serviceTotals.set(service, left); else serviceTotals.delete(service);
      }
      servicesBySecond.delete(second);
      bySecond.delete(second);
    }
  }

  // ── incidents ──
  function noteIncident(incident) {
    if (!incident?.id) return;
    const status = String(incident.status || 'open').toLowerCase();
    if (status === 'resolved') openIncidents.delete(incident.id);
    else openIncidents.set(incident.id, { severity: String(incident.severity || '').toLowerCase(), status });
    dirty = true;
  }

  const stop = subscribe(['system-events', 'incidents.detected', 'incidents.updated'], (record) => {
    if (record.topic === 'system-events') {
      total += 1;
      const severity = String(record.value?.severity || '').toLowerCase();
      if (severity in counts) counts[severity] += 1;
      addEvent(Math.floor(Date.now() / 1000), severity, String(record.value?.service_name || '?'));
      dirty = true;
    } else if (record.topic === 'incidents.detected') {
      const incident = record.value || {};
      noteIncident(incident);
      incidents.prepend(h('li', {},
        h('span', { class: severityClass(incident.severity) }, incident.severity || '?'), ' ',
        h('a', { href: `#/incidents/${encodeURIComponent(incident.id || record.key)}` }, incident.title || record.key),
        h('span', { class: 'muted small' }, ` ${incident.service_name || ''} · ${time(incident.detected_at)}`)));
      while (incidents.children.length > 8) incidents.lastChild.remove();
    } else {
      noteIncident(record.value);
    }
  });

  // ── drawing, at most every TICK_MS ──
  let drawnSecond = 0;
  function draw() {
    const now = Date.now();
    const nowS = Math.floor(now / 1000);
    prune(nowS);
    const from = (nowS - WINDOW_S + 1) * 1000;
    // A point per finished second at its end; the current second as a trailing-1 s estimate
    // (this second's count plus the part of the previous one still inside the last second),
    // so the right edge is current to within a tick instead of a second.
    const frac = (now % 1000) / 1000;
    const series = SEVERITIES.map((s) => {
      const points = [];
      for (let second = nowS - WINDOW_S + 1; second < nowS; second += 1) {
        points.push([(second + 1) * 1000, bySecond.get(second)?.[s] || 0]);
      }
      const current = (bySecond.get(nowS)?.[s] || 0) + (bySecond.get(nowS - 1)?.[s] || 0) * (1 - frac);
      points.push([now, current]);
      return { name: s, label: s, cls: `s-${s}`, points };
    });
    chart.update({ series, from, to: now, min: 0, empty: 'Waiting for events…' });

    // Counts also change as seconds leave the window, with or without new events.
    if (!dirty && nowS === drawnSecond) return;
    dirty = false;
    drawnSecond = nowS;
    totalCell.textContent = number(total, 0);
    for (const s of SEVERITIES) cells[s].textContent = number(counts[s], 0);
    let recent = 0;
    for (let second = nowS - 9; second <= nowS; second += 1) {
      for (const n of Object.values(bySecond.get(second) || {})) recent += n;
    }
    rateCell.textContent = number(recent / 10, 1);

    const top = [...serviceTotals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, TOP);
    const all = [...serviceTotals.values()].reduce((a, b) => a + b, 0);
    const most = top[0]?.[1] || 1;
    serviceRows.forEach((row, i) => {
      const [service, n] = top[i] || ['—', 0];
      row.name.textContent = service;
      row.name.title = top[i] ? `${service}: ${n} events in the last 5 min` : '';
      row.count.textContent = top[i] ? number(n, 0) : '';
      row.share.textContent = top[i] && all ? `${((n / all) * 100).toFixed(0)} %` : '';
      setBar(row.meter, top[i] ? n / most : 0);
    });

    if (incidentsLoaded) {
      const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
      for (const { severity } of openIncidents.values()) {
        if (severity in bySeverity) bySeverity[severity] += 1;
      }
      for (const s of SEVERITIES) incidentCells[s].textContent = number(bySeverity[s], 0);
      const acknowledged = [...openIncidents.values()].filter((i) => i.status === 'acknowledged').length;
      incidentNote.textContent = `${incidentsTruncated ? 'At least ' : ''}${number(openIncidents.size - acknowledged, 0)} open and `
        + `${number(acknowledged, 0)} acknowledged, kept current from the live stream.${resolvedText}`;
    }
  }
  const ticker = setInterval(draw, TICK_MS);
  draw();

  // ── history, without delaying the first paint ──
  const openedS = Math.floor(openedAt / 1000);
  get('/api/v1/events/analytics', { timerange: `${WINDOW_S}s`, groupby: 'severity', bucket: '1s' })
    .then((answer) => {
      // Only seconds before the page opened: later ones are counted from the stream.
      for (const bucket of answer?.buckets || []) {
        const second = Math.floor(bucket.start_ms / 1000);
        if (second >= openedS) continue;
        let sev = bySecond.get(second);
        if (!sev) { sev = {}; bySecond.set(second, sev); }
        for (const [s, n] of Object.entries(bucket.counts || {})) sev[s] = (sev[s] || 0) + n;
      }
      dirty = true;
    })
    .catch((error) => console.warn('event history unavailable', error));
  get('/api/v1/events/analytics', { timerange: `${WINDOW_S}s`, groupby: 'service', bucket: '1s' })
    .then((answer) => {
      for (const bucket of answer?.buckets || []) {
        const second = Math.floor(bucket.start_ms / 1000);
        if (second >= openedS) continue;
        for (const [service, n] of Object.entries(bucket.counts || {})) {
          let svc = servicesBySecond.get(second);
          if (!svc) { svc = new Map(); servicesBySecond.set(second, svc); }
          svc.set(service, (svc.get(service) || 0) + n);
          serviceTotals.set(service, (serviceTotals.get(service) || 0) + n);
        }
      }
      dirty = true;
    })
    .catch((error) => console.warn('service history unavailable', error));

  loadOpenIncidents().catch((error) => {
    replace(incidentNote, `Open incidents unavailable: ${error.message}`);
  });

  async function loadOpenIncidents() {
    const loaded = new Map();
    let cursor;
    let truncated = false;
    do {
      const page = await get('/api/v1/incidents', { status: 'open,acknowledged', limit: 1000, cursor });
      for (const incident of page?.items || []) {
        loaded.set(incident.id, { severity: String(incident.severity).toLowerCase(), status: incident.status });
      }
      cursor = page?.next_cursor;
      if (cursor && loaded.size >= MAX_OPEN) { truncated = true; break; }
    } while (cursor);
    // Changes that arrived on the stream while loading are newer than the list.
    for (const [id, value] of openIncidents) loaded.set(id, value);
    openIncidents.clear();
    for (const [id, value] of loaded) openIncidents.set(id, value);
    incidentsLoaded = true;
    incidentsTruncated = truncated;
    dirty = true;
  }

  // ── ingest health, every HEALTH_MS ──
  let previous = null;
  async function health() {
    const [readyAnswer, topics, lag, stats] = await Promise.all([
      fetch('/ready', { headers: { accept: 'application/json' } })
        .then(async (r) => ({ ok: r.ok, body: await r.json().catch(() => null) }))
        .catch((error) => ({ ok: false, body: { status: `unreachable: ${error.message}` } })),
      get('/api/v1/topics').catch(() => null),
      fetch('/metrics').then((r) => (r.ok ? r.text() : '')).then(consumerLag).catch(() => new Map()),
      get('/api/v1/incidents/stats').catch(() => null),
    ]);
    if (stats) {
      resolvedText = ` ${number(stats.resolved, 0)} resolved in all.`;
      dirty = true;
    }
    ready.textContent = readyAnswer.ok ? 'ready' : (readyAnswer.body?.status || 'not ready');
    ready.className = `health-state ${readyAnswer.ok ? 'ok' : 'bad'}`;
    const checks = readyAnswer.body?.checks || {};
    readyChecks.textContent = Object.entries(checks).map(([k, v]) => `${k}: ${v}`).join(' · ');
    if (!topics) return;
    const now = Date.now();
    const ends = new Map();
    const rows = (topics.items || []).map((topic) => {
      const end = (topic.offsets || []).reduce((sum, p) => sum + (p.end_offset || 0), 0);
      ends.set(topic.name, end);
      const before = previous?.ends.get(topic.name);
      const rate = before === undefined ? null : ((end - before) * 1000) / Math.max(1, now - previous.at);
      const sinkLag = lag.get(topic.name);
      return h('tr', {},
        h('td', {}, topic.name),
        h('td', { class: 'num' }, number(topic.records, 0)),
        h('td', { class: 'num' }, number(end, 0)),
        h('td', { class: 'num' }, rate === null ? '…' : number(rate, 1)),
        h('td', { class: 'num', title: sinkLag === undefined ? 'no consumer lag is exposed for this topic' : 'records written but not yet stored' },
          sinkLag === undefined ? '—' : number(sinkLag, 0)),
        h('td', { class: 'num' }, bytes(topic.size_bytes)));
    });
    replace(topicBody, rows);
    previous = { at: now, ends };
    lagNote.textContent = lag.size
      ? 'Sink lag: records of the topic not yet written to the store (consumer group "store", from /metrics). Other stages do not expose their lag.'
      : 'Consumer lag is not exposed by this node (/metrics has no sightline_consumer_lag_records); only end offsets are shown.';
  }
  health();
  const poller = setInterval(health, HEALTH_MS);

  return () => {
    stop();
    clearInterval(ticker);
    clearInterval(poller);
  };
}

/** `topic → lag` from the Prometheus text of /metrics (the store sink's consumer group). */
function consumerLag(text) {
  const lag = new Map();
  for (const line of String(text).split('\n')) {
    if (!line.startsWith('sightline_consumer_lag_records{')) continue;
    const topic = /topic="([^"]*)"/.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (topic && Number.isFinite(value)) lag.set(topic, (lag.get(topic) || 0) + value);
  }
  return lag;
}

function bytes(n) {
  if (!Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// The dashboard's own charts, drawn as SVG: a time-series line chart (several series, an
// optional shaded band, point markers with text tooltips) and a small horizontal bar.
// A chart keeps one <svg> and one <path> per series and only rewrites their attributes on
// each update, so a live chart redrawn four times a second does not churn the DOM.
// Colours come from CSS classes (`.chart .line.s-<name>`, `.chart .marker.m-<name>`), so
// light and dark mode follow the stylesheet's variables; there are no inline styles.

import { h, svg, replace } from './dom.js';

const MARGIN = { top: 10, right: 14, bottom: 24, left: 52 };

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Time tick steps offered, smallest first. */
const TIME_STEPS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY,
];

/** Round numbers for a value axis: `count` or so ticks covering [lo, hi]. */
export function niceTicks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { lo: 0, hi: 1, ticks: [0, 1] };
  if (hi === lo) { hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1); }
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const first = Math.floor(lo / step) * step;
  const last = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = first; v <= last + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { lo: first, hi: last, ticks };
}

/** Tick times (aligned to local wall-clock steps) for [t0, t1] at most `max` of them. */
export function timeTicks(t0, t1, max = 8) {
  const span = Math.max(1, t1 - t0);
  const step = TIME_STEPS.find((s) => span / s <= max) ?? Math.ceil(span / max / DAY) * DAY;
  // Align to the local clock (a 5 min step lands on :00, :05, …, a day on local midnight).
  const offset = new Date(t0).getTimezoneOffset() * MINUTE;
  const ticks = [];
  for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) ticks.push(t);
  return { step, ticks };
}

function timeLabel(t, step) {
  const d = new Date(t);
  const two = (n) => String(n).padStart(2, '0');
  if (step >= DAY) return `${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return step < MINUTE ? `${hm}:${two(d.getSeconds())}` : hm;
}

function compact(value) {
  const a = Math.abs(value);
  if (a >= 1e9) return `${+(value / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(value / 1e3).toFixed(1)}k`;
  return String(+value.toFixed(a < 1 && a > 0 ? 3 : 2));
}

/**
 * A time-series line chart inside `container`, `height` px tall. Returns
 * `{ element, update(data) }` where `data` is
 *   { series: [{ name, label, cls?, points: [[t, v], …], markers?: boolean }],
 *     band?: { label, cls?, lower: [[t, v]…], upper: [[t, v]…] },   // same times in both
 *     markers?: [{ t, v, cls?, title }],
 *     from?, to?,            // the time axis (defaults to the data's extent)
 *     min?,                  // lowest value on the axis (e.g. 0 for rates)
 *     empty?: 'text when there is nothing to draw' }
 * `formatValue` labels the value axis and tooltips.
 */
export function lineChart(container, { height = 220, formatValue = compact, label = 'chart' } = {}) {
  const root = svg('svg', { class: 'chart', height, role: 'img', 'aria-label': label });
  // The stylesheet's default height would otherwise win over the attribute.
  root.style.height = `${height}px`;
  const grid = svg('g', { class: 'grid-lines' });
  const axes = svg('g', {});
  const band = svg('path', { class: 'band' });
  const lines = svg('g', {});
  const points = svg('g', {});
  const marks = svg('g', {});
  const empty = svg('text', { class: 'axis empty', 'text-anchor': 'middle' });
  root.append(grid, band, lines, points, axes, marks, empty);
  const legend = h('div', { class: 'chart-legend' });
  const wrap = h('div', { class: 'chart-wrap' }, legend, root);
  replace(container, wrap);

  const paths = new Map();
  let legendKey = '';

  function update(data) {
    const width = Math.max(200, Math.round(root.clientWidth || container.clientWidth || 600));
    root.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const series = data.series || [];
    const all = series.flatMap((s) => s.points);
    const bandLower = data.band?.lower || [];
    const bandUpper = data.band?.upper || [];
    const markers = data.markers || [];
    const times = [...all, ...bandLower, ...markers.map((m) => [m.t, m.v])].map((p) => p[0]);
    const values = [...all, ...bandLower, ...bandUpper, ...markers.map((m) => [m.t, m.v])]
      .map((p) => p[1]).filter(Number.isFinite);
    // Loops, not Math.min(...xs): tens of thousands of arguments can overflow the stack.
    const least = (xs, start) => xs.reduce((a, b) => (b < a ? b : a), start);
    const most = (xs, start) => xs.reduce((a, b) => (b > a ? b : a), start);
    const t0 = data.from ?? (times.length ? least(times, Infinity) : Date.now() - HOUR);
    let t1 = data.to ?? (times.length ? most(times, -Infinity) : Date.now());
    if (t1 <= t0) t1 = t0 + MINUTE;
    const lo0 = least(values, data.min ?? Infinity);
    const hi0 = most(values, data.min ?? -Infinity);
    const y = niceTicks(Number.isFinite(lo0) ? lo0 : 0, Number.isFinite(hi0) ? hi0 : 1, 4);

    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = height - MARGIN.top - MARGIN.bottom;
    const x = (t) => MARGIN.left + ((t - t0) / (t1 - t0)) * plotW;
    const yy = (v) => MARGIN.top + plotH - ((v - y.lo) / (y.hi - y.lo || 1)) * plotH;
    const fmt = (n) => n.toFixed(1);
    const pathOf = (pts) => {
      let d = '';
      for (const [t, v] of pts) {
        if (!Number.isFinite(v)) continue;
        d += `${d ? 'L' : 'M'}${fmt(x(t))},${fmt(yy(v))}`;
      }
      return d;
    };

    // Grid and axes: a handful of nodes, rebuilt.
    const ticks = timeTicks(t0, t1, Math.max(2, Math.floor(plotW / 90)));
    grid.replaceChildren(
      ...y.ticks.map((v) => svg('line', { class: 'grid', x1: MARGIN.left, x2: width - MARGIN.right, y1: fmt(yy(v)), y2: fmt(yy(v)) })),
    );
    axes.replaceChildren(
      ...y.ticks.map((v) => svg('text', { class: 'axis', x: MARGIN.left - 6, y: fmt(yy(v) + 4), 'text-anchor': 'end' }, formatValue(v))),
      ...ticks.ticks.map((t) => svg('text', { class: 'axis', x: fmt(x(t)), y: height - 6, 'text-anchor': 'middle' }, timeLabel(t, ticks.step))),
    );

    // Band: the upper edge forwards, the lower edge backwards.
    if (bandLower.length && bandUpper.length) {
      const upper = pathOf(bandUpper);
      const lower = pathOf([...bandLower].reverse()).replace(/^M/, 'L');
      band.setAttribute('d', `${upper}${lower}Z`);
      band.setAttribute('class', `band ${data.band.cls || ''}`);
    } else {
      band.setAttribute('d', '');
    }

    // One path per series, kept across updates.
    const seen = new Set();
    for (const s of series) {
      seen.add(s.name);
      let path = paths.get(s.name);
      if (!path) {
        path = svg('path', { class: `line ${s.cls || ''}`, 'data-series': s.name });
        lines.append(path);
        paths.set(s.name, path);
      }
      path.setAttribute('d', pathOf(s.points));
    }
    for (const [name, path] of paths) {
      if (!seen.has(name)) { path.remove(); paths.delete(name); }
    }

    // Point markers with a text tooltip, for series that ask for them.
    const wanted = series.filter((s) => s.markers).flatMap((s) => s.points
      .filter((p) => Number.isFinite(p[1]))
      .map((p) => ({ s, t: p[0], v: p[1] })));
    syncCircles(points, wanted, (c, p) => {
      c.setAttribute('cx', fmt(x(p.t)));
      c.setAttribute('cy', fmt(yy(p.v)));
      c.setAttribute('r', '2.2');
      c.setAttribute('class', `point ${p.s.cls || ''}`);
      c.firstChild.textContent = `${p.s.label || p.s.name} ${formatValue(p.v)} at ${new Date(p.t).toLocaleString()}`;
    });
    syncCircles(marks, markers, (c, m) => {
      c.setAttribute('cx', fmt(x(m.t)));
      c.setAttribute('cy', fmt(yy(m.v)));
      c.setAttribute('r', '5');
      c.setAttribute('class', `marker ${m.cls || ''}`);
      c.firstChild.textContent = m.title || formatValue(m.v);
    });

    const nothing = !all.length && !markers.length;
    empty.textContent = nothing ? (data.empty || 'No data yet') : '';
    empty.setAttribute('x', fmt(MARGIN.left + plotW / 2));
    empty.setAttribute('y', fmt(MARGIN.top + plotH / 2));

    // Legend: rebuilt only when the set of entries changes.
    const entries = [
      ...series.map((s) => ({ cls: `line ${s.cls || ''}`, text: s.label || s.name })),
      ...(data.band ? [{ cls: `band ${data.band.cls || ''}`, text: data.band.label }] : []),
      ...(data.markerLabel ? [{ cls: 'marker', text: data.markerLabel }] : []),
    ];
    const key = entries.map((e) => `${e.cls}|${e.text}`).join('\n');
    if (key !== legendKey) {
      legendKey = key;
      replace(legend, entries.map((e) => h('span', { class: 'legend-item' },
        swatch(e.cls), e.text)));
    }
  }

  return { element: wrap, update };
}

function swatch(cls) {
  const el = svg('svg', { class: 'swatch', width: 18, height: 10, 'aria-hidden': 'true' });
  if (cls.startsWith('band')) el.append(svg('rect', { class: cls, x: 0, y: 0, width: 18, height: 10 }));
  else if (cls.startsWith('marker')) el.append(svg('circle', { class: cls, cx: 9, cy: 5, r: 4 }));
  else el.append(svg('line', { class: cls, x1: 0, x2: 18, y1: 5, y2: 5 }));
  return el;
}

/** Makes `group` hold exactly one `<circle><title/></circle>` per item, reusing nodes. */
function syncCircles(group, items, set) {
  while (group.childNodes.length > items.length) group.lastChild.remove();
  while (group.childNodes.length < items.length) group.append(svg('circle', {}, svg('title', {})));
  items.forEach((item, i) => set(group.childNodes[i], item));
}

/**
 * A small horizontal bar (`fraction` of its width filled, 0…1). Returns the element;
 * `setBar(el, fraction)` moves it.
 */
export function bar(fraction = 0, cls = '') {
  const fill = h('span', { class: 'hbar-fill' });
  const el = h('span', { class: `hbar ${cls}`, role: 'presentation' }, fill);
  setBar(el, fraction);
  return el;
}

/** Sets the filled fraction of a `bar`. */
export function setBar(el, fraction) {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  el.firstChild.style.width = `${(f * 100).toFixed(1)}%`;
}

// Formatting shared by every page: times, durations, numbers and severities.

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];

/** `ms` since the epoch as local date and time (seconds precision). */
export function time(ms) {
  if (ms === undefined || ms === null || ms === '') return '—';
  const date = new Date(typeof ms === 'number' ? ms : Date.parse(ms));
  if (Number.isNaN(date.getTime())) return String(ms);
  return date.toLocaleString(undefined, {
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

/** How long ago `ms` was, briefly ("12 s ago", "3 h ago"). */
export function ago(ms, now = Date.now()) {
  const t = typeof ms === 'number' ? ms : Date.parse(ms);
  if (!Number.isFinite(t)) return '—';
  return `${duration(Math.max(0, now - t))} ago`;
}

/** A duration in milliseconds, in its largest sensible unit. */
export function duration(ms) {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

/** A number with at most `digits` decimals and thousands separators. */
export function number(value, digits = 1) {
  if (value === undefined || value === null || !Number.isFinite(Number(value))) return '—';
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

/** The CSS class of a severity badge (unknown severities look neutral). */
export function severityClass(severity) {
  const s = String(severity || '').toLowerCase();
  return SEVERITIES.includes(s) ? `sev sev-${s}` : 'sev';
}

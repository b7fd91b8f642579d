// The SQL console: define streams and continuous queries (`CREATE STREAM …; CREATE TABLE …
// AS SELECT …`), see what runs and how far behind it is, watch a query's rows change live
// (push query over a WebSocket, upserted by row key), and read a table (pull query). Parse
// errors point at their line and column in the editor.

import { h, replace } from '../lib/dom.js';
import { del, get, hasRole, post } from '../lib/api.js';
import { follow } from '../lib/live.js';
import { number, time } from '../lib/format.js';

const ENGINEER_ONLY = 'Needs the engineer role';
const LIVE_ROWS = 500;
const PLACEHOLDER = `CREATE STREAM orders (order_id VARCHAR, amount DOUBLE, ts BIGINT)
  WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', TIMESTAMP='ts');

CREATE TABLE order_totals AS
  SELECT order_id, SUM(amount) AS total FROM orders GROUP BY order_id EMIT CHANGES;`;

/** The offset in `text` of 1-based `line` and `column`. */
function offsetOf(text, line, column) {
  const lines = text.split('\n');
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i += 1) offset += lines[i].length + 1;
  return Math.min(text.length, offset + Math.max(0, column - 1));
}

/** The offending line with a caret under the column, as text. */
function pointer(text, line, column) {
  const source = text.split('\n')[line - 1] ?? '';
  return `${String(line).padStart(4)} | ${source}\n${' '.repeat(4)} | ${' '.repeat(Math.max(0, column - 1))}^`;
}

/** A row key as people read it: the GROUP BY values (a JSON array) joined by commas. */
function keyText(key) {
  try {
    const parsed = JSON.parse(key);
    return Array.isArray(parsed) ? parsed.map(cellText).join(', ') : cellText(parsed);
  } catch {
    return key;
  }
}

/** A cell's text: strings as they are, everything else as JSON. */
const cellText = (value) => (value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value));

function resultTable(rows, columns) {
  const cols = columns || [...new Set(rows.flatMap((r) => Object.keys(r || {})))];
  return h('table', { class: 'rows' },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', { class: typeof r[c] === 'number' ? 'num' : '' }, cellText(r[c])))))));
}

export default async function render(root) {
  const canCreate = hasRole('engineer');
  const tip = canCreate ? undefined : ENGINEER_ONLY;

  // ── editor ──
  const editor = h('textarea', { id: 'sql-editor', class: 'code', rows: 10, spellcheck: 'false', placeholder: PLACEHOLDER,
    'aria-describedby': 'sql-error' });
  const errorBox = h('div', { id: 'sql-error', class: 'sql-error', role: 'alert', hidden: true });
  const created = h('p', { id: 'sql-created', class: 'small', role: 'status' });
  const submit = h('button', { type: 'submit', id: 'sql-submit', disabled: !canCreate, title: tip }, 'Run statements');
  editor.addEventListener('input', () => { editor.removeAttribute('aria-invalid'); });
  const form = h('form', { class: 'card', id: 'sql-form', onsubmit: async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    replace(created);
    editor.removeAttribute('aria-invalid');
    const sql = editor.value;
    if (!sql.trim()) return;
    submit.disabled = true;
    try {
      const answer = await post('/api/v1/queries', { sql });
      const names = (answer.created || []).map((c) => `${c.kind} ${c.name}`);
      replace(created, names.length ? `Created ${names.join(', ')}.` : 'Nothing created.',
        (answer.dropped || []).length ? ` Dropped ${answer.dropped.join(', ')}.` : '');
      await loadQueries();
    } catch (problem) {
      showSqlError(problem, sql);
    } finally {
      submit.disabled = !canCreate;
    }
  } },
  h('h2', {}, 'Statements'),
  h('label', { for: 'sql-editor' }, 'CREATE STREAM / CREATE TABLE … AS SELECT / DROP, separated by semicolons'),
  editor, errorBox,
  h('div', { class: 'buttons' }, submit, canCreate ? null : h('span', { class: 'muted small' }, ' Creating queries needs the engineer role.')),
  created);

  function showSqlError(problem, sql) {
    editor.setAttribute('aria-invalid', 'true');
    const { line, column } = problem;
    const where = line ? `line ${line}, column ${column ?? 1}` : null;
    replace(errorBox,
      h('p', { class: 'error' }, where ? h('strong', { id: 'sql-error-position' }, `${where}: `) : null,
        // The node's message may already start with the position.
        String(problem.detail || problem.message).replace(/^line \d+, column \d+:\s*/, '')),
      where ? h('pre', { class: 'sql-pointer', id: 'sql-error-pointer' }, pointer(sql, line, column ?? 1)) : null);
    errorBox.hidden = false;
    if (where) {
      // Put the caret on the offending token so the fix starts where the parser stopped.
      const at = offsetOf(sql, line, column ?? 1);
      editor.focus();
      editor.setSelectionRange(at, Math.min(sql.length, at + 1));
    }
  }

  // ── catalog ──
  const queriesBody = h('tbody', { id: 'queries-rows' });
  const queriesError = h('p', { class: 'error', role: 'alert', hidden: true });
  const queriesTable = h('table', { id: 'queries-table' },
    h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Reads', 'Writes', 'Lag', 'Columns', ''].map((t) => h('th', {}, t)))), queriesBody);

  // ── live rows ──
  const liveTitle = h('h2', {}, 'Live rows');
  const liveState = h('span', { class: 'muted small', id: 'live-rows-state' }, 'Pick a query to watch.');
  const liveWrap = h('div', { class: 'live-rows', id: 'live-rows' });
  let stopLive = null;

  function watch(q) {
    if (stopLive) stopLive();
    const columns = (q.columns || []).map((c) => c.name);
    const body = h('tbody', {});
    const rows = new Map();
    let changes = 0;
    replace(liveTitle, `Live rows of ${q.name}`);
    replace(liveWrap, h('table', { class: 'rows fixed', id: 'live-rows-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'key'), columns.map((c) => h('th', {}, c)), h('th', {}, 'updated'))),
      body));
    const status = (connected) => {
      replace(liveState, `${connected ? 'connected' : 'reconnecting…'} · ${number(rows.size, 0)} rows · ${number(changes, 0)} changes`);
    };
    let connected = false;
    stopLive = follow(`/api/v1/queries/${encodeURIComponent(q.name)}/changes`, {}, (change) => {
      changes += 1;
      const key = change.key ?? `#${change.partition}/${change.offset}`;
      let row = rows.get(key);
      if (change.row === null || change.row === undefined) {
        row?.remove();
        rows.delete(key);
      } else {
        if (!row) {
          row = h('tr', { dataset: { key } }, h('td', {}, h('code', {}, keyText(key))), columns.map(() => h('td', {})), h('td', { class: 'small' }));
          rows.set(key, row);
          body.prepend(row);
          if (rows.size > LIVE_ROWS) {
            const oldest = body.lastChild;
            rows.delete(oldest.dataset.key);
            oldest.remove();
          }
        }
        const tds = row.children;
        columns.forEach((c, i) => {
          const value = change.row[c];
          tds[i + 1].textContent = cellText(value);
          tds[i + 1].className = typeof value === 'number' ? 'num' : '';
        });
        tds[columns.length + 1].textContent = time(change.timestamp);
        row.classList.remove('flash');
        void row.offsetWidth;
        row.classList.add('flash');
      }
      status(connected);
    }, { onState: (on) => { connected = on; status(on); } });
    status(false);
  }

  async function loadQueries() {
    try {
      const { items = [] } = await get('/api/v1/queries');
      replace(queriesBody, items.length ? items.map((q) => {
        const state = h('span', { class: 'small' });
        const isQuery = q.kind !== 'stream';
        return h('tr', { dataset: { name: q.name } },
          h('td', {}, h('strong', {}, q.name), h('details', {}, h('summary', { class: 'small' }, 'SQL'), h('pre', {}, q.sql))),
          h('td', {}, q.kind.replace('_', ' ')),
          h('td', {}, h('code', {}, q.source_topic)),
          h('td', {}, q.output_topic ? h('code', {}, q.output_topic) : '—'),
          h('td', { class: 'num lag' }, q.lag === undefined ? '—' : number(q.lag, 0)),
          h('td', { class: 'small' }, (q.columns || []).map((c) => `${c.name} ${c.type}`).join(', ')),
          h('td', { class: 'row-actions' },
            isQuery ? h('button', { type: 'button', class: 'secondary', dataset: { watch: q.name }, onclick: () => watch(q) }, 'Watch live') : null, ' ',
            h('button', { type: 'button', class: 'danger', disabled: !canCreate, title: tip, dataset: { drop: q.name }, onclick: async (event) => {
              event.target.disabled = true;
              try {
                await del(`/api/v1/queries/${encodeURIComponent(q.name)}`);
                await loadQueries();
              } catch (problem) {
                state.className = 'small error';
                // 409: another query reads it (the node names which).
                replace(state, problem.status === 409
                  ? `Cannot drop ${q.name} while another query reads it: ${problem.message}`
                  : problem.message);
                event.target.disabled = false;
              }
            } }, 'Drop'), state));
      }) : h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No streams or queries yet.')));
      queriesError.hidden = true;
    } catch (problem) {
      replace(queriesError, `Could not list the queries: ${problem.message}`);
      queriesError.hidden = false;
    }
  }

  // ── pull query ──
  const pullEditor = h('textarea', { id: 'pull-editor', class: 'code', rows: 2, spellcheck: 'false', placeholder: 'SELECT * FROM order_totals WHERE order_id = \'o-1\'' });
  const pullResult = h('div', { id: 'pull-result', class: 'pull-result' });
  const pullRun = h('button', { type: 'submit', id: 'pull-run' }, 'Read');
  const pullForm = h('form', { class: 'card', onsubmit: async (event) => {
    event.preventDefault();
    pullEditor.removeAttribute('aria-invalid');
    pullRun.disabled = true;
    try {
      const { rows = [] } = await post('/api/v1/query', { sql: pullEditor.value });
      replace(pullResult, rows.length ? resultTable(rows) : h('p', { class: 'muted' }, 'No rows.'),
        h('p', { class: 'muted small' }, `${number(rows.length, 0)} rows at ${time(Date.now())}`));
    } catch (problem) {
      pullEditor.setAttribute('aria-invalid', 'true');
      replace(pullResult, h('p', { class: 'error', role: 'alert' },
        problem.line ? h('strong', {}, `line ${problem.line}, column ${problem.column}: `) : '',
        String(problem.detail || problem.message).replace(/^line \d+, column \d+:\s*/, '')),
      problem.line ? h('pre', { class: 'sql-pointer' }, pointer(pullEditor.value, problem.line, problem.column ?? 1)) : null);
    } finally {
      pullRun.disabled = false;
    }
  } }, h('h2', {}, 'Pull query'), h('label', { for: 'pull-editor' }, 'A SELECT over a table’s current rows'), pullEditor,
  h('div', { class: 'buttons' }, pullRun), pullResult);

  replace(root, h('h1', {}, 'SQL'),
    h('div', { class: 'sql-layout' },
      form,
      h('section', {}, h('h2', {}, 'Streams and queries'), queriesError, queriesTable),
      h('section', { class: 'card' }, h('div', { class: 'page-head' }, liveTitle, liveState), liveWrap),
      pullForm));
  await loadQueries();
  // Lag moves as records arrive: refresh those cells in place (a changed catalog is
  // re-listed whole).
  async function refreshLag() {
    if (document.hidden) return;
    try {
      const { items = [] } = await get('/api/v1/queries');
      const shown = [...queriesBody.querySelectorAll('tr[data-name]')].map((tr) => tr.dataset.name);
      if (shown.join('\n') !== items.map((q) => q.name).join('\n')) { await loadQueries(); return; }
      for (const q of items) {
        const cell = queriesBody.querySelector(`tr[data-name="${CSS.escape(q.name)}"] td.lag`);
        if (cell) cell.textContent = q.lag === undefined ? '—' : number(q.lag, 0);
      }
    } catch { /* the next round tries again */ }
  }
  const timer = setInterval(refreshLag, 5_000);
  return () => { clearInterval(timer); if (stopLive) stopLive(); };
}

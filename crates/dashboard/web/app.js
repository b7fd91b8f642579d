// The dashboard shell: a hash router that loads one page module per section, keeps the
// header in step with the session, and sends anonymous users to the login page.
//
// A page is a module under pages/ whose default export is
//   async function render(root, ctx) -> (optional) cleanup function
// with ctx = { params, query, navigate, user }: `params` from the route pattern,
// `query` the URLSearchParams after `?` in the hash. The cleanup runs when the user
// leaves the page (close live subscriptions and timers there).

import { h, replace } from './lib/dom.js';
import { session, logout, onSessionChange } from './lib/api.js';

/** `[pattern, module, section]`: the first pattern matching the hash path wins. */
const ROUTES = [
  ['/login', './pages/login.js', null],
  ['/', './pages/overview.js', 'overview'],
  ['/metrics', './pages/metrics.js', 'metrics'],
  ['/incidents', './pages/incidents.js', 'incidents'],
  ['/incidents/:id', './pages/incident.js', 'incidents'],
  ['/events', './pages/events.js', 'events'],
  ['/rules', './pages/rules.js', 'rules'],
  ['/executions', './pages/executions.js', 'executions'],
  ['/executions/:id', './pages/execution.js', 'executions'],
  ['/sql', './pages/sql.js', 'sql'],
];

const view = document.getElementById('view');
let cleanup = null;
let generation = 0;

/** Goes to `hash` (e.g. '#/incidents/abc'). */
export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function match(path) {
  for (const [pattern, module, section] of ROUTES) {
    const want = pattern.split('/');
    const have = path.split('/');
    if (want.length !== have.length) continue;
    const params = {};
    const ok = want.every((part, i) => {
      if (part.startsWith(':')) {
        params[part.slice(1)] = decodeURIComponent(have[i]);
        return have[i] !== '';
      }
      return part === have[i];
    });
    if (ok) return { module, section, params };
  }
  return null;
}

async function route() {
  const mine = ++generation;
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, search = ''] = raw.split('?');
  const current = session();
  if (!current && path !== '/login') {
    const next = encodeURIComponent(raw);
    location.replace(`#/login?next=${next}`);
    return;
  }
  if (typeof cleanup === 'function') {
    try { cleanup(); } catch (error) { console.error(error); }
  }
  cleanup = null;
  const found = match(path);
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('active', found?.section === link.dataset.section);
  }
  if (!found) {
    replace(view, h('section', { class: 'page' }, h('h1', {}, 'Not found'),
      h('p', {}, `Nothing lives at ${path}.`)));
    return;
  }
  replace(view, h('p', { class: 'loading' }, 'Loading…'));
  try {
    const page = await import(found.module);
    if (mine !== generation) return;
    const root = h('section', { class: 'page' });
    replace(view, root);
    const ctx = { params: found.params, query: new URLSearchParams(search), navigate, user: current?.user };
    const done = await page.default(root, ctx);
    // On the Performance timeline, so load time can be read in any browser (the browser
    // tests report it): milliseconds from navigation to this page's first render.
    performance.mark(`sightline:rendered:${found.section || 'login'}`);
    if (mine !== generation) {
      if (typeof done === 'function') done();
      return;
    }
    cleanup = done;
  } catch (error) {
    if (mine !== generation) return;
    console.error(error);
    replace(view, h('section', { class: 'page' }, h('h1', {}, 'Something went wrong'),
      h('p', { class: 'error' }, String(error?.message || error))));
  }
}

function showSession(current) {
  document.getElementById('nav').hidden = !current;
  document.getElementById('session').hidden = !current;
  replace(document.getElementById('whoami'),
    current ? `${current.user.username} (${current.user.role})` : '');
}

document.getElementById('logout').addEventListener('click', async () => {
  await logout();
  navigate('#/login');
});
onSessionChange((current) => {
  showSession(current);
  if (!current && !location.hash.startsWith('#/login')) navigate('#/login');
});
window.addEventListener('hashchange', route);
showSession(session());
route();

// The dashboard's only way to talk to the node: the public REST API with the logged-in
// user's session. Access tokens are refreshed once on a 401; a failed refresh ends the
// session and sends the user to the login page. Errors arrive as RFC 9457 problem
// documents and are thrown as `ApiProblem`, whose `errors` list says which field is wrong.

const STORAGE_KEY = 'sightline.session';
const listeners = new Set();

/** An error answer of the API. */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem?.title || `HTTP ${status}`;
    this.detail = problem?.detail || '';
    /** `[{index?, field, reason}]` for validation errors. */
    this.errors = Array.isArray(problem?.errors) ? problem.errors : [];
    /** For SQL errors: where the parser stopped. */
    this.line = problem?.line;
    this.column = problem?.column;
  }
}

/** The current session (`{access_token, refresh_token, expires_at, user}`) or null. */
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
  } catch {
    return null;
  }
}

function store(value) {
  if (value) {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({
      access_token: value.access_token,
      refresh_token: value.refresh_token,
      expires_at: Date.now() + (value.expires_in || 0) * 1000,
      user: value.user,
    }));
  } else {
    sessionStorage.removeItem(STORAGE_KEY);
  }
  for (const listener of listeners) listener(value ? session() : null);
}

/** Calls `listener(session | null)` whenever the user logs in or out. */
export function onSessionChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Logs in; throws `ApiProblem` on bad credentials. */
export async function login(username, password) {
  const answer = await send('POST', '/api/v1/auth/login', { body: { username, password }, auth: false });
  store(answer);
  return session();
}

/** Ends the session here and on the node. */
export async function logout() {
  const current = session();
  store(null);
  if (current) {
    try {
      await send('POST', '/api/v1/auth/logout', {
        body: { refresh_token: current.refresh_token }, auth: false,
        headers: { authorization: `Bearer ${current.access_token}` },
      });
    } catch { /* the local session is gone either way */ }
  }
}

let refreshing = null;

/** Trades the refresh token for a new session once, however many requests ask at once. */
async function refresh() {
  const current = session();
  if (!current?.refresh_token) throw new ApiProblem(401, { title: 'Not logged in' });
  refreshing ??= send('POST', '/api/v1/auth/refresh', {
    body: { refresh_token: current.refresh_token }, auth: false,
  }).then(store, (error) => { store(null); throw error; }).finally(() => { refreshing = null; });
  return refreshing;
}

/** A valid access token, refreshed first when it is about to expire. */
export async function accessToken() {
  const current = session();
  if (!current) return null;
  if (current.expires_at - Date.now() < 15_000) {
    try { await refresh(); } catch { return null; }
  }
  return session()?.access_token ?? null;
}

/** `path` with `query` (an object; empty values left out) as a query string. */
export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Sends one request. `body` is sent as JSON; the answer is parsed JSON (or text, or null
 * for 204). Options: `query`, `body`, `auth` (default true), `headers`, `signal`.
 */
export async function send(method, path, options = {}) {
  const { query, body, auth = true, headers = {}, signal, retried = false } = options;
  const init = { method, headers: { accept: 'application/json', ...headers }, signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  if (auth) {
    const token = await accessToken();
    if (token) init.headers.authorization = `Bearer ${token}`;
  }
  const response = await fetch(withQuery(path, query), init);
  if (response.status === 401 && auth && !retried && session()) {
    try {
      await refresh();
    } catch {
      throw new ApiProblem(401, { title: 'Session expired' });
    }
    return send(method, path, { ...options, retried: true });
  }
  const type = response.headers.get('content-type') || '';
  const parsed = response.status === 204 ? null
    : type.includes('json') ? await response.json().catch(() => null)
    : await response.text();
  if (!response.ok) {
    if (response.status === 401 && auth) store(null);
    throw new ApiProblem(response.status, typeof parsed === 'object' ? parsed : { detail: parsed });
  }
  return parsed;
}

export const get = (path, query, options = {}) => send('GET', path, { ...options, query });
export const post = (path, body, options = {}) => send('POST', path, { ...options, body });
export const put = (path, body, options = {}) => send('PUT', path, { ...options, body });
export const patch = (path, body, options = {}) => send('PATCH', path, { ...options, body });
export const del = (path, options = {}) => send('DELETE', path, options);

/** Whether the logged-in user's role is `role` or higher. */
export function hasRole(role) {
  const order = ['viewer', 'engineer', 'approver', 'admin'];
  const mine = order.indexOf(String(session()?.user?.role || '').toLowerCase());
  return mine >= 0 && mine >= order.indexOf(role);
}

// The live feeds: one WebSocket per subscription (the pipeline stream, or the changes of a
// push query), reconnecting with backoff. Browsers cannot set headers on a WebSocket, so
// the access token travels as a second subprotocol (`sightline.bearer.<token>`); the node
// answers with `sightline`. The header dot (#live-state) shows whether a feed is connected.

import { accessToken, withQuery } from './api.js';

const open = new Set();

function showState() {
  const el = document.getElementById('live-state');
  if (!el) return;
  const connected = [...open].some((s) => s.connected);
  el.classList.toggle('on', connected);
  el.title = connected ? 'live: connected' : (open.size ? 'live: reconnecting' : 'live: idle');
}

/**
 * Follows `topics` (array of pipeline topics, e.g. ['system-events', 'incidents.detected']),
 * optionally only about `service`, calling `onMessage({topic, key, partition, offset,
 * timestamp, value})` per record. Returns a function that closes the subscription.
 */
export function subscribe(topics, onMessage, { service } = {}) {
  const params = { topics: topics.join(',') };
  if (service) params.service = service;
  return follow('/api/v1/stream', params, onMessage);
}

/**
 * Follows any live route of the node (`/api/v1/stream`, `/api/v1/queries/{name}/changes`)
 * over a WebSocket with the same token trick and reconnection, calling `onMessage(json)`
 * per message and `onState(connected)` when the connection comes or goes. Returns a
 * function that closes it.
 */
export function follow(path, params, onMessage, { onState } = {}) {
  const state = { connected: false, closed: false, socket: null, delay: 250 };
  open.add(state);

  function changed(connected) {
    state.connected = connected;
    showState();
    if (onState) onState(connected);
  }

  async function connect() {
    if (state.closed) return;
    const token = await accessToken();
    if (state.closed) return;
    if (!token) { retry(); return; }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}${withQuery(path, params)}`,
      ['sightline', `sightline.bearer.${token}`]);
    state.socket = socket;
    socket.onopen = () => { state.delay = 250; changed(true); };
    socket.onmessage = (message) => {
      let record;
      try { record = JSON.parse(message.data); } catch { return; }
      onMessage(record);
    };
    socket.onclose = () => {
      changed(false);
      retry();
    };
  }

  function retry() {
    if (state.closed) return;
    setTimeout(connect, state.delay);
    state.delay = Math.min(state.delay * 2, 10_000);
  }

  connect();
  showState();
  return () => {
    state.closed = true;
    open.delete(state);
    state.socket?.close();
    showState();
  };
}

// The live feed: one WebSocket to `/api/v1/stream` per subscription, reconnecting with
// backoff. Browsers cannot set headers on a WebSocket, so the access token travels as a
// second subprotocol (`sightline.bearer.<token>`); the node answers with `sightline`.
// The header dot (#live-state) shows whether the feed is connected.

import { accessToken } from './api.js';

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
  const state = { connected: false, closed: false, socket: null, delay: 250 };
  open.add(state);

  async function connect() {
    if (state.closed) return;
    const token = await accessToken();
    if (state.closed) return;
    if (!token) { retry(); return; }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const params = new URLSearchParams({ topics: topics.join(',') });
    if (service) params.set('service', service);
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream?${params}`,
      ['sightline', `sightline.bearer.${token}`]);
    state.socket = socket;
    socket.onopen = () => { state.connected = true; state.delay = 250; showState(); };
    socket.onmessage = (message) => {
      let record;
      try { record = JSON.parse(message.data); } catch { return; }
      onMessage(record);
    };
    socket.onclose = () => {
      state.connected = false;
      showState();
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

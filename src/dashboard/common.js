/* global document, window, WebSocket, fetch, sessionStorage, location, Node, URLSearchParams */
// Shared by the dashboard pages: token handling, API calls, the live feed, and the reference's wording.

/** The token from ?token= (kept for the session so links work without it), or null when none is needed. */
export function token() {
  const fromUrl = new URLSearchParams(location.search).get('token');
  if (fromUrl) sessionStorage.setItem('vigil-token', fromUrl);
  return fromUrl || sessionStorage.getItem('vigil-token');
}

/** Calls the API; throws an Error with the server's code on failure. */
export async function api(path, init = {}) {
  const t = token();
  const headers = { ...(init.headers || {}), ...(t ? { authorization: `Bearer ${t}` } : {}) };
  const res = await fetch(path, { ...init, headers });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`), { status: res.status });
  return body;
}

/** Opens the feed and reconnects with backoff; onMessage gets every parsed message (a snapshot after each connect). */
export function openFeed(onMessage, query = '') {
  const live = document.getElementById('live');
  let delay = 500;
  const connect = () => {
    const t = token();
    const params = new URLSearchParams(query);
    if (t) params.set('access_token', t);
    const qs = params.toString();
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/feed${qs ? `?${qs}` : ''}`);
    ws.onopen = () => { delay = 500; live.dataset.state = 'live'; live.textContent = 'live'; };
    ws.onmessage = (e) => onMessage(JSON.parse(e.data));
    ws.onclose = () => {
      live.dataset.state = 'down';
      live.textContent = 'reconnecting…';
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  connect();
}

/** A ratio as "22.4%". */
export function pct(ratio) {
  return `${(Math.round(ratio * 1000) / 10).toFixed(1)}%`;
}

/** A duration in the reference's words: "6 minutes", "an hour", "2 hours". */
export function humanDuration(ms) {
  const s = Math.max(0, ms / 1000);
  if (s < 45) return 'a few seconds';
  if (s < 90) return 'a minute';
  const m = Math.round(s / 60);
  if (m < 45) return `${m} minutes`;
  if (m < 90) return 'an hour';
  const h = Math.round(m / 60);
  if (h < 22) return `${h} hours`;
  if (h < 36) return 'a day';
  return `${Math.round(h / 24)} days`;
}

/** Creates an element with text children or nodes. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** The details cell in the reference's wording, with the title and error type in bold (built as nodes, never as HTML). */
export function details(i) {
  const p = pct(i.trigger.error_ratio);
  if (i.scope === 'title') {
    return [document.createTextNode('Video Title '), el('b', {}, i.video_title || ''), document.createTextNode(` is failing at a significant rate (${p}) due to an error of `), el('b', {}, i.error_type)];
  }
  return [document.createTextNode(`Overall error-rate is significantly high (${p}) due to an error of `), el('b', {}, i.error_type)];
}

/** The incident page's link for an id. */
export function incidentHref(i) {
  return `/properties/${encodeURIComponent(i.property_id)}/incidents/${i.id}`;
}

/** Lower case of ASCII letters only, as SQLite's lower() (the API's search) folds them. */
export function asciiLower(s) {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/* global document, location */
// The incident page: trigger, current status, notifications with the Silence button, a timeline chart
// of the error rate against the threshold (inline SVG), and other occurrences; kept live by the feed.
import { api, openFeed, pct, humanDuration, el, details, incidentHref } from './common.js';

const id = Number(location.pathname.split('/').filter(Boolean).pop());
const $ = (x) => document.getElementById(x);
let incident = null;
let timeline = [];

function fmtTime(ms) {
  return new Date(ms).toLocaleString('en-US', { month: '2-digit', day: '2-digit', year: 'numeric', hour: 'numeric', minute: '2-digit' }).replace(',', '');
}

function renderIncident() {
  const i = incident;
  document.title = `Vigil · Incident #${i.id}`;
  $('title').textContent = `${i.status === 'open' ? 'Open' : i.status === 'resolved' ? 'Resolved' : 'Expired'}: Incident #${i.id}`;
  $('status').textContent = i.status;
  $('status').className = `badge ${i.status}`;
  $('summary').replaceChildren(...details(i), document.createTextNode(i.scope === 'title' ? '' : ` on property ${i.property_id}`));
  $('error-type').textContent = i.error_type;
  $('initial-pct').textContent = pct(i.trigger.error_ratio);
  $('initial-rate').textContent = `${Math.round(i.trigger.views_per_hour)} / hour`;
  $('opened-at').textContent = fmtTime(i.trigger.opened_at_ms);
  $('trigger-pct').textContent = pct(i.trigger.error_ratio);
  $('threshold').textContent = pct(i.trigger.threshold_ratio);
  $('min-window').textContent = `${i.trigger.min_window_views} views`;
  $('open-for').textContent = humanDuration(i.current.open_for_ms);
  $('current-pct').textContent = pct(i.current.error_ratio);
  $('impacted').textContent = `${i.current.impacted_views} views`;
  $('impact-hr').textContent = `${i.current.impacted_views_per_hour} views`;
  $('notifications').textContent = i.notifications === 'on' ? 'ON' : 'OFF';
  const b = $('silence');
  b.textContent = i.notifications === 'on' ? 'Silence alert notifications' : 'Turn notifications back on';
  b.disabled = false;
  $('incident').hidden = false;
}

// The error rate (red) against the alert threshold (dashed), one point per timeline sample.
function renderTimeline() {
  const box = $('timeline');
  const pts = timeline.length ? timeline : [];
  if (pts.length === 0) { box.replaceChildren(el('p', { class: 'empty' }, 'No samples yet.')); return; }
  const W = 1000, H = 220, L = 48, R = 10, T = 10, B = 28;
  const t0 = pts[0].at_ms, t1 = Math.max(pts[pts.length - 1].at_ms, t0 + 60_000);
  const maxY = Math.min(1, Math.max(0.05, ...pts.map((p) => Math.max(p.error_ratio, p.threshold_ratio))) * 1.15);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / maxY) * (H - T - B);
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'error rate against alert threshold');
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  for (let k = 0; k <= 4; k++) {
    const v = (maxY * k) / 4;
    add('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' });
    add('text', { x: 4, y: y(v) + 4 }, pct(v));
  }
  add('text', { x: L, y: H - 8 }, fmtTime(t0));
  add('text', { x: W - R, y: H - 8, 'text-anchor': 'end' }, fmtTime(t1));
  const path = (key) => pts.map((p, k) => `${k ? 'L' : 'M'}${x(p.at_ms).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
  add('path', { d: path('threshold_ratio'), class: 'threshold' });
  add('path', { d: path('error_ratio'), class: 'rate' });
  box.replaceChildren(svg);
}

function renderOccurrences(list) {
  $('occurrences').replaceChildren(...list.map((o) => el('tr', {},
    el('td', {}, `${humanDuration(Math.max(0, (incident.current.updated_at_ms) - o.opened_at_ms))} ago`),
    el('td', {}, 'Duration: ', el('b', {}, o.duration_ms === null ? 'still open' : humanDuration(o.duration_ms))),
    el('td', {}, el('a', { href: incidentHref({ id: o.id, property_id: incident.property_id }) }, '›')))));
  $('no-occurrences').hidden = list.length > 0;
}

async function load() {
  try {
    const d = await api(`/api/incidents/${id}`);
    incident = d.incident;
    timeline = d.timeline;
    renderIncident();
    renderTimeline();
    renderOccurrences(d.other_occurrences);
  } catch (e) {
    $('error').textContent = e.message;
    $('error').hidden = false;
  }
}

$('silence').addEventListener('click', async () => {
  const b = $('silence');
  b.disabled = true;
  try {
    const r = await api(`/api/incidents/${id}/${incident.notifications === 'on' ? 'silence' : 'unsilence'}`, { method: 'POST' });
    incident = { ...incident, notifications: r.result.notifications };
    renderIncident();
  } catch (e) {
    $('error').textContent = e.message;
    $('error').hidden = false;
    b.disabled = false;
  }
});

await load();
openFeed((msg) => {
  if (msg.type === 'snapshot' || !msg.incident || msg.incident.id !== id || !incident) return;
  incident = msg.incident;
  const last = timeline[timeline.length - 1];
  // Extend the chart with live figures; the stored timeline is the authority on reload.
  if (!last || msg.incident.current.updated_at_ms > last.at_ms) {
    timeline.push({ at_ms: msg.incident.current.updated_at_ms, error_ratio: msg.incident.current.error_ratio, threshold_ratio: msg.incident.trigger.threshold_ratio, window_views: msg.incident.current.window_views });
  }
  renderIncident();
  renderTimeline();
}, incident ? `property=${encodeURIComponent(incident.property_id)}` : '');

/* global document, location, window */
// The incident page: trigger, current status, notifications with the Silence button, a timeline chart
// of the error rate against the threshold (inline SVG), and other occurrences; kept live by the feed.
import { api, openFeed, pct, humanDuration, el, details, incidentHref } from './common.js';

// /incidents/ID, or /properties/P/incidents/ID: then the incident must be one of P's.
const parts = location.pathname.split('/').filter(Boolean);
const id = Number(parts[parts.length - 1]);
const pathProperty = parts[0] === 'properties' ? decodeURIComponent(parts[1]) : null;
const $ = (x) => document.getElementById(x);
let incident = null;
let timeline = [];
// The receivers whose routes take this incident, and how many are configured at all.
let receivers = [];
let receiversConfigured = 0;

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
  $('legend-threshold').textContent = `(${pct(i.trigger.threshold_ratio)})`;
  $('min-window').textContent = `${i.trigger.min_window_views} views`;
  $('open-for').textContent = humanDuration(i.current.open_for_ms);
  $('current-pct').textContent = pct(i.current.error_ratio);
  $('impacted').textContent = `${i.current.impacted_views} views`;
  $('impact-hr').textContent = `${i.current.impacted_views_per_hour} views`;
  const b = $('silence');
  if (receivers.length === 0) {
    // Nobody would be told: ON would be a promise nobody keeps, and a Silence button would do nothing.
    $('notifications').textContent = 'none';
    $('notified').replaceChildren(receiversConfigured === 0 ? 'no receiver is configured (' : 'no receiver\'s route takes this incident (',
      el('a', { href: '/settings/notifications' }, 'notification settings'), ')');
    b.hidden = true;
  } else {
    $('notifications').textContent = i.notifications === 'on' ? 'ON' : 'OFF';
    $('notified').textContent = `${i.notifications === 'on' ? 'sent' : 'held'} for ${receivers.map((r) => `${r.name} (${r.type})`).join(', ')}`;
    b.hidden = false;
    b.textContent = i.notifications === 'on' ? 'Silence alert notifications' : 'Turn notifications back on';
    b.disabled = false;
  }
  $('incident').hidden = false;
}

const MINUTE = 60_000;
// Spacing of the time axis's labels: the smallest of these that keeps the labels apart (90 px, or 48 px
// for the short labels of a narrow chart).
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * MINUTE);

function fmtClock(ms, withDate, short = false) {
  const d = new Date(ms);
  const clock = short ? `${d.getHours() % 12 || 12}:${String(d.getMinutes()).padStart(2, '0')}` : d.toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit' });
  return withDate ? `${d.toLocaleDateString('en-US', { month: 'numeric', day: 'numeric' })} ${clock}` : clock;
}

// The error rate (red) against the alert threshold (dashed), one point per timeline sample, drawn at the
// box's own width in pixels (text is never stretched), with a readout of the nearest sample on hover.
function renderTimeline() {
  const box = $('timeline');
  const pts = timeline;
  if (pts.length === 0) { box.replaceChildren(el('p', { class: 'empty' }, 'No samples yet.')); return; }
  const W = Math.max(240, Math.floor(box.clientWidth));
  const H = W < 560 ? 200 : 240, L = 46, R = 12, T = 10, B = 28;
  const t0 = pts[0].at_ms, t1 = Math.max(pts[pts.length - 1].at_ms, t0 + MINUTE);
  const maxY = Math.min(1, Math.max(0.05, ...pts.map((p) => Math.max(p.error_ratio, p.threshold_ratio))) * 1.15);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / maxY) * (H - T - B);
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', String(W));
  svg.setAttribute('height', String(H));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `error rate against the alert threshold from ${fmtClock(t0, true)} to ${fmtClock(t1, true)}`);
  const add = (tag, attrs, text, parent = svg) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    parent.append(e);
    return e;
  };
  const yAxis = add('g', { class: 'y-axis' });
  for (let k = 0; k <= 4; k++) {
    const v = (maxY * k) / 4;
    add('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }, undefined, yAxis);
    add('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, pct(v), yAxis);
  }
  const xAxis = add('g', { class: 'x-axis' });
  const short = W < 560;
  const maxLabels = Math.max(2, Math.floor((W - L - R) / (short ? 48 : 90)));
  const step = TIME_STEPS.find((s) => (t1 - t0) / s <= maxLabels) ?? TIME_STEPS[TIME_STEPS.length - 1];
  const withDate = t1 - t0 >= 86_400_000 || new Date(t0).toDateString() !== new Date(t1).toDateString();
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    add('line', { x1: x(t), x2: x(t), y1: H - B, y2: H - B + 4, class: 'tick' }, undefined, xAxis);
    const anchor = x(t) - L < 30 ? 'start' : W - R - x(t) < 30 ? 'end' : 'middle';
    add('text', { x: x(t), y: H - 8, 'text-anchor': anchor }, fmtClock(t, withDate, short && !withDate), xAxis);
  }
  const path = (key) => pts.map((p, k) => `${k ? 'L' : 'M'}${x(p.at_ms).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
  add('path', { d: path('threshold_ratio'), class: 'threshold' });
  add('path', { d: path('error_ratio'), class: 'rate' });

  // Hover: a guide at the nearest sample and its figures.
  const guide = add('g', { class: 'guide', visibility: 'hidden' });
  const guideLine = add('line', { y1: T, y2: H - B }, undefined, guide);
  const rateDot = add('circle', { r: 4, class: 'rate-dot' }, undefined, guide);
  const thresholdDot = add('circle', { r: 3, class: 'threshold-dot' }, undefined, guide);
  const readout = el('div', { class: 'readout', hidden: '' });
  const area = add('rect', { x: L, y: T, width: W - L - R, height: H - T - B, class: 'hover-area' });
  const show = (clientX) => {
    const t = t0 + ((clientX - svg.getBoundingClientRect().left - L) / (W - L - R)) * (t1 - t0);
    let p = pts[0];
    for (const q of pts) if (Math.abs(q.at_ms - t) < Math.abs(p.at_ms - t)) p = q;
    const px = x(p.at_ms);
    for (const [e, a] of [[guideLine, { x1: px, x2: px }], [rateDot, { cx: px, cy: y(p.error_ratio) }], [thresholdDot, { cx: px, cy: y(p.threshold_ratio) }]]) {
      for (const [k, v] of Object.entries(a)) e.setAttribute(k, String(v));
    }
    guide.setAttribute('visibility', 'visible');
    readout.replaceChildren(el('b', {}, fmtClock(p.at_ms, true)),
      el('span', { class: 'rate' }, `Error rate ${pct(p.error_ratio)}`),
      el('span', { class: 'threshold' }, `Threshold ${pct(p.threshold_ratio)}`),
      el('span', {}, `${p.window_views.toLocaleString('en-US')} views in the window`));
    readout.hidden = false;
    // Beside the guide, on the side with more room, so it never hides the point it describes.
    const left = px > W / 2 ? px - readout.offsetWidth - 10 : px + 10;
    readout.style.left = `${Math.min(Math.max(left, 0), W - readout.offsetWidth)}px`;
  };
  area.addEventListener('pointermove', (e) => show(e.clientX));
  area.addEventListener('pointerdown', (e) => show(e.clientX));
  area.addEventListener('pointerleave', () => { guide.setAttribute('visibility', 'hidden'); readout.hidden = true; });
  box.replaceChildren(svg, readout);
}

let resizeFrame = 0;
window.addEventListener('resize', () => {
  window.cancelAnimationFrame(resizeFrame);
  resizeFrame = window.requestAnimationFrame(() => { if (incident) renderTimeline(); });
});

function renderOccurrences(list) {
  const now = incident.current.updated_at_ms;
  $('occurrences').replaceChildren(...list.map((o) => el('tr', {},
    el('td', {}, el('a', { href: incidentHref({ id: o.id, property_id: incident.property_id }) }, `Incident #${o.id}`)),
    el('td', {}, `opened ${humanDuration(Math.max(0, now - o.opened_at_ms))} ago`),
    el('td', {}, o.status === 'open' ? 'still open' : `${o.status} after `, o.duration_ms === null ? '' : el('b', {}, humanDuration(o.duration_ms))))));
  $('no-occurrences').hidden = list.length > 0;
}

async function load() {
  try {
    const d = await api(`/api/incidents/${id}`);
    if (pathProperty !== null && d.incident.property_id !== pathProperty) {
      // Never show another property's incident under this property's address.
      $('error').replaceChildren(`Property ${pathProperty} has no incident #${id}. `,
        el('a', { href: incidentHref(d.incident) }, `Incident #${id} is one of property ${d.incident.property_id}'s`), '.');
      $('error').hidden = false;
      document.title = `Vigil · No incident #${id} on property ${pathProperty}`;
      return;
    }
    incident = d.incident;
    timeline = d.timeline;
    receivers = d.receivers ?? [];
    receiversConfigured = d.receivers_configured ?? 0;
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

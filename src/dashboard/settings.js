/* global document */
// The read-only notification settings: receivers with their routes, and the matcher silences in force.
import { api, el, humanDuration, incidentHref } from './common.js';

const $ = (x) => document.getElementById(x);

function when(ms) {
  return new Date(ms).toLocaleString('en-US', { month: '2-digit', day: '2-digit', year: 'numeric', hour: 'numeric', minute: '2-digit' }).replace(',', '');
}

// "property 177 or pbs · error type networkError" from match lists (null: any); "every incident" when none is set.
function describeMatch(m) {
  const names = { property_id: 'property', video_title: 'video title', error_type: 'error type', scope: 'scope' };
  const parts = Object.entries(names).filter(([k]) => m[k] !== null && m[k] !== undefined)
    .map(([k, label]) => `${label} ${[].concat(m[k]).join(' or ')}`);
  return parts.length ? parts.join(' · ') : 'every incident';
}

// "every hour", "every 30 minutes", "every 2 days".
function every(ms) {
  const [n, unit] = ms % 86_400_000 === 0 ? [ms / 86_400_000, 'day'] : ms % 3_600_000 === 0 ? [ms / 3_600_000, 'hour'] : [Math.round(ms / 60_000), 'minute'];
  return n === 1 ? `every ${unit}` : `every ${n} ${unit}s`;
}

function receiverRow(r) {
  const details = [];
  if (r.severity) details.push(`severity ${r.severity.property} (property), ${r.severity.title} (title)`);
  if (r.signed !== null) details.push(r.signed ? 'signed (HMAC-SHA256)' : 'not signed');
  details.push(`timeout ${r.timeout_ms / 1000} s`);
  return el('tr', { 'data-name': r.name },
    el('td', { 'data-label': 'Name' }, el('b', {}, r.name)),
    el('td', { 'data-label': 'Type' }, r.type),
    el('td', { 'data-label': 'Sends to' }, r.endpoint),
    el('td', { class: 'route', 'data-label': 'Gets incidents of' }, describeMatch(r.match)),
    el('td', { 'data-label': 'Repeats' }, r.repeat_interval_ms === null ? 'no' : every(r.repeat_interval_ms)),
    el('td', { 'data-label': 'Details' }, details.join(', ')));
}

function silenceRow(s, now) {
  const links = s.silenced_incidents.length
    ? s.silenced_incidents.flatMap((id, k) => [k ? ', ' : '', el('a', { href: s.property_id ? incidentHref({ id, property_id: s.property_id }) : `/incidents/${id}` }, `#${id}`)])
    : ['none'];
  return el('tr', { 'data-id': String(s.id) },
    el('td', { 'data-label': 'Silence' }, `#${s.id}`),
    el('td', { class: 'route', 'data-label': 'Silences' }, describeMatch({ property_id: s.property_id, video_title: s.video_title, error_type: s.error_type, scope: s.scope })),
    el('td', { 'data-label': 'Comment' }, s.comment || '—'),
    el('td', { 'data-label': 'Created' }, when(s.created_at_ms)),
    el('td', { 'data-label': 'Expires' }, `${when(s.expires_at_ms)}${s.expires_at_ms > now ? ` (in ${humanDuration(s.expires_at_ms - now)})` : ''}`),
    el('td', { 'data-label': 'Incidents silenced' }, ...links));
}

try {
  const settings = await api('/api/notification-settings');
  const now = Date.now();
  $('receivers').querySelector('tbody').replaceChildren(...settings.receivers.map(receiverRow));
  $('receivers').hidden = settings.receivers.length === 0;
  $('no-receivers').hidden = settings.receivers.length > 0;
  $('silences').querySelector('tbody').replaceChildren(...settings.silences.map((s) => silenceRow(s, now)));
  $('silences').hidden = settings.silences.length === 0;
  $('no-silences').hidden = settings.silences.length > 0;
} catch (e) {
  $('error').textContent = e.status === 403 ? 'Only the admin token may see the notification settings.' : e.message;
  $('error').hidden = false;
  for (const id of ['receivers-card', 'silences-card']) $(id).hidden = true;
}

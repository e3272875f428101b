/* global document, location, history, URLSearchParams, window */
// The incidents page: "Open incidents" is the feed's snapshot kept up to date by its deltas, filtered
// here; "All incidents" pages through the API with the same filters and applies the deltas to its rows.
// The filters live in the page's query string, so a filtered view can be shared as a link.
import { api, openFeed, details, humanDuration, el, incidentHref, asciiLower } from './common.js';

const open = new Map();
let all = [];
let allCursor = null;
let allLoaded = false;
const initial = new URLSearchParams(location.search);
let view = initial.get('view') === 'all' ? 'all' : 'open';

const tbody = document.querySelector('#incidents tbody');
const errorBox = document.getElementById('error');
const form = document.getElementById('filters');
const RANGES = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 };
const FIELDS = ['q', 'property', 'scope', 'error_type', 'status', 'range', 'from', 'to'];

for (const name of FIELDS) if (initial.has(name)) form.elements[name].value = initial.get(name);
// On a phone the filters fold under one button, unfolded when a filter other than the search is set.
const toggle = document.getElementById('filters-toggle');
const unfold = (on) => { form.classList.toggle('unfolded', on); toggle.setAttribute('aria-expanded', String(on)); };
unfold(FIELDS.some((name) => name !== 'q' && initial.has(name)));
toggle.addEventListener('click', () => unfold(!form.classList.contains('unfolded')));

/** The filters as the form holds them; times in epoch ms. */
function filters() {
  const v = (name) => form.elements[name].value.trim();
  const f = { q: v('q'), property: v('property'), scope: v('scope'), errorType: v('error_type'), status: v('status'), fromMs: null, toMs: null };
  const range = v('range');
  if (RANGES[range]) f.fromMs = Date.now() - RANGES[range];
  if (range === 'custom') {
    const from = Date.parse(v('from'));
    const to = Date.parse(v('to'));
    if (Number.isFinite(from)) f.fromMs = from;
    if (Number.isFinite(to)) f.toMs = to;
  }
  return f;
}

// The same test the API runs (GET /api/incidents), for the open incidents held here.
function matches(i, f) {
  if (f.property && i.property_id !== f.property) return false;
  if (f.scope && i.scope !== f.scope) return false;
  if (f.errorType && i.error_type !== f.errorType) return false;
  if (f.status && i.status !== f.status) return false;
  if (f.fromMs !== null && i.opened_at_ms < f.fromMs) return false;
  if (f.toMs !== null && i.opened_at_ms >= f.toMs) return false;
  if (f.q) {
    const q = asciiLower(f.q);
    if (![i.property_id, i.video_title ?? '', i.error_type].some((s) => asciiLower(s).includes(q))) return false;
  }
  return true;
}

function query(f) {
  const p = new URLSearchParams({ limit: '50' });
  if (f.q) p.set('q', f.q);
  if (f.property) p.set('property_id', f.property);
  if (f.scope) p.set('scope', f.scope);
  if (f.errorType) p.set('error_type', f.errorType);
  if (f.status) p.set('status', f.status);
  if (f.fromMs !== null) p.set('from', String(Math.floor(f.fromMs)));
  if (f.toMs !== null) p.set('to', String(Math.floor(f.toMs)));
  return p;
}

function row(i, flash) {
  const openFor = i.status === 'open' ? humanDuration(i.current.open_for_ms) : `${humanDuration(i.current.open_for_ms)} (${i.status})`;
  const tr = el('tr', { 'data-id': String(i.id), class: `${i.status === 'open' ? '' : 'closed'}${flash ? ' flash' : ''}`.trim() },
    el('td', { class: 'id', 'data-label': 'Incident' }, el('a', { href: incidentHref(i) }, `#${i.id}`)),
    el('td', { class: 'property', 'data-label': 'Property' }, i.property_id),
    el('td', { class: 'details' }, ...details(i)),
    el('td', { class: 'open-for', 'data-label': 'Open for' }, openFor),
    el('td', { class: 'num impacted', 'data-label': 'Views impacted' }, String(i.current.impacted_views)),
    el('td', { class: 'num per-hour', 'data-label': 'Per hour' }, String(i.current.impacted_views_per_hour)));
  tr.addEventListener('click', (e) => { if (e.target.tagName !== 'A') document.location.href = incidentHref(i); });
  return tr;
}

function fillChoices(list) {
  const fill = (id, values) => document.getElementById(id).replaceChildren(...[...values].sort().map((v) => el('option', { value: v })));
  const seen = (key) => new Set([...open.values(), ...list].map((i) => i[key]));
  fill('known-properties', seen('property_id'));
  fill('known-error-types', seen('error_type'));
}

let flashIds = new Set();
function render() {
  const f = filters();
  const shown = [...open.values()].filter((i) => matches(i, f)).sort((a, b) => b.id - a.id);
  const list = view === 'open' ? shown : all;
  tbody.replaceChildren(...list.map((i) => row(i, flashIds.has(i.id))));
  flashIds = new Set();
  const filtered = FIELDS.some((name) => form.elements[name].value !== '');
  document.getElementById('open-count').textContent = `(${shown.length}${filtered && shown.length !== open.size ? ` of ${open.size}` : ''})`;
  document.getElementById('empty').hidden = list.length > 0;
  document.getElementById('empty').textContent = filtered ? 'No incidents match these filters.' : 'No incidents.';
  document.getElementById('more').hidden = view !== 'all' || allCursor === null;
  document.getElementById('status-filter').hidden = view === 'open';
  for (const label of form.querySelectorAll('.custom-range')) label.hidden = form.elements.range.value !== 'custom';
  for (const b of document.querySelectorAll('.tabs button')) b.setAttribute('aria-selected', String(b.dataset.view === view));
  fillChoices(list);
}

let loadSeq = 0;
async function loadAll(more) {
  const seq = ++loadSeq;
  try {
    const p = query(filters());
    if (more && allCursor) p.set('cursor', String(allCursor));
    const page = await api(`/api/incidents?${p}`);
    if (seq !== loadSeq) return; // filters changed meanwhile: a newer answer is on its way
    all = more ? all.concat(page.incidents) : page.incidents;
    allCursor = page.next_cursor;
    allLoaded = true;
    errorBox.hidden = true;
    render();
  } catch (e) {
    errorBox.textContent = e.message;
    errorBox.hidden = false;
  }
}

function apply(msg) {
  if (msg.type === 'snapshot') {
    open.clear();
    for (const i of msg.incidents) open.set(i.id, i);
    render();
    return;
  }
  const i = msg.incident;
  if (!i) return;
  if (i.status === 'open') open.set(i.id, i);
  else open.delete(i.id);
  const at = all.findIndex((x) => x.id === i.id);
  if (at >= 0) all[at] = i;
  else if (msg.type === 'opened' && allLoaded && matches(i, filters())) all.unshift(i);
  if (msg.type === 'opened') flashIds.add(i.id);
  render();
}

function saveToUrl() {
  const p = new URLSearchParams();
  if (view === 'all') p.set('view', 'all');
  for (const name of FIELDS) if (form.elements[name].value !== '') p.set(name, form.elements[name].value);
  const qs = p.toString();
  history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}`);
}

let timer = null;
function filtersChanged() {
  saveToUrl();
  render();
  window.clearTimeout(timer);
  // Typing is debounced; the list of all incidents is asked again once it pauses.
  if (view === 'all') timer = window.setTimeout(() => loadAll(false), 250);
}
form.addEventListener('input', filtersChanged);
form.addEventListener('reset', () => window.setTimeout(filtersChanged, 0));
form.addEventListener('submit', (e) => e.preventDefault());

for (const b of document.querySelectorAll('.tabs button')) {
  b.addEventListener('click', () => {
    view = b.dataset.view;
    if (view === 'open') form.elements.status.value = '';
    saveToUrl();
    if (view === 'all') loadAll(false);
    render();
  });
}
document.getElementById('more').addEventListener('click', () => loadAll(true));
render();
if (view === 'all') loadAll(false);
openFeed(apply);

/* global document */
// The incidents page: "Open incidents" is the feed's snapshot kept up to date by its deltas;
// "All incidents" pages through the API and applies the same deltas to the rows it shows.
import { api, openFeed, details, humanDuration, el, incidentHref } from './common.js';

const open = new Map();
let all = [];
let allCursor = null;
let allLoaded = false;
let view = 'open';

const tbody = document.querySelector('#incidents tbody');
const errorBox = document.getElementById('error');

function row(i, flash) {
  const tr = el('tr', { 'data-id': String(i.id), class: `${i.status === 'open' ? '' : 'closed'}${flash ? ' flash' : ''}`.trim() },
    el('td', {}, el('a', { href: incidentHref(i) }, String(i.id))),
    el('td', { class: 'details' }, ...details(i)),
    el('td', { class: 'open-for' }, i.status === 'open' ? humanDuration(i.current.open_for_ms) : `${humanDuration(i.current.open_for_ms)} (${i.status})`),
    el('td', { class: 'num impacted' }, String(i.current.impacted_views)),
    el('td', { class: 'num per-hour' }, String(i.current.impacted_views_per_hour)));
  tr.addEventListener('click', (e) => { if (e.target.tagName !== 'A') document.location.href = incidentHref(i); });
  return tr;
}

let flashIds = new Set();
function render() {
  const list = view === 'open' ? [...open.values()].sort((a, b) => b.id - a.id) : all;
  tbody.replaceChildren(...list.map((i) => row(i, flashIds.has(i.id))));
  flashIds = new Set();
  document.getElementById('empty').hidden = list.length > 0;
  document.getElementById('more').hidden = view !== 'all' || allCursor === null;
  for (const b of document.querySelectorAll('.tabs button')) b.setAttribute('aria-selected', String(b.dataset.view === view));
}

async function loadAll(more) {
  try {
    const page = await api(`/api/incidents?limit=50${more && allCursor ? `&cursor=${allCursor}` : ''}`);
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
  else if (msg.type === 'opened' && allLoaded) all.unshift(i);
  if (msg.type === 'opened') flashIds.add(i.id);
  render();
}

for (const b of document.querySelectorAll('.tabs button')) {
  b.addEventListener('click', () => {
    view = b.dataset.view;
    if (view === 'all' && !allLoaded) loadAll(false);
    render();
  });
}
document.getElementById('more').addEventListener('click', () => loadAll(true));
openFeed(apply);

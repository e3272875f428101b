// Feed benchmark: (1) p99 latency from a chunk of events entering the engine to the incident
// update it causes arriving on a WebSocket client, at half the engine's maximum throughput;
// (2) idle feed clients one node holds, with the server's memory per client.
// Run after `npm run build`: node --expose-gc bench/feed.js  (BENCH_IDLE_CLIENTS=5000 by default)
import { Worker } from 'node:worker_threads';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Engine } from '../dist/engine/engine.js';
import { IncidentManager } from '../dist/incidents/incident-manager.js';
import { openIncidentStore } from '../dist/incidents/incident-store.js';
import { CommandHandler } from '../dist/control/command-handler.js';
import { MetricsRegistry } from '../dist/metrics/metrics-registry.js';
import { HttpServer } from '../dist/http/http-server.js';
import { parseHttpConfig } from '../dist/config/http-config.js';
import { DEFAULT_DETECTION_PARAMS } from '../dist/kernel/detection-params.js';
import { silentLogger } from '../dist/log/logger.js';

const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const IDLE = Number(process.env.BENCH_IDLE_CLIENTS ?? 5000);
const now = () => performance.timeOrigin + performance.now();
const params = DEFAULT_DETECTION_PARAMS;

// 40 properties, 90 minutes of event time; 20 of them fail at 30% from minute 40: every tick then
// brings an update per open incident.
function buildChunks() {
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296; };
  const start = Date.UTC(2026, 10, 27, 6);
  const perSecond = 300;
  const minutes = 90;
  const total = minutes * 60 * perSecond;
  const chunks = [];
  let lines = [];
  let maxTs = -Infinity;
  for (let i = 0; i < total; i++) {
    const ts = Math.round(start + (i * 1000) / perSecond + (rnd() - 0.5) * 2000);
    maxTs = Math.max(maxTs, ts);
    const p = i % 40;
    const failing = p < 20 && i / perSecond / 60 >= 40;
    const err = rnd() < (failing ? 0.3 : 0.01) ? '"networkError"' : 'null';
    lines.push(`{"view_id":"v${i}","property_id":"p${p}","video_title":"T${Math.floor(rnd() * 50)}","error_type":${err},"ts":${ts}}`);
    if (lines.length === 2000) {
      chunks.push({ bytes: Buffer.from(lines.join('\n') + '\n'), events: lines.length, watermark: maxTs - params.outOfOrdernessMs });
      lines = [];
    }
  }
  if (lines.length) chunks.push({ bytes: Buffer.from(lines.join('\n') + '\n'), events: lines.length, watermark: maxTs - params.outOfOrdernessMs });
  return chunks;
}

function pipeline(onVerdicts) {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-feed-'));
  const store = openIncidentStore(join(dir, 'incidents.db'));
  const manager = new IncidentManager({ store, logger: silentLogger() });
  const engine = new Engine({
    workers: WORKERS, groups: 128, chunkBytes: 1 << 20, params, maxKeysPerWorker: 250_000, maxCellsPerWorker: 500_000,
    logger: silentLogger(), onVerdicts: (v) => { manager.applyBatch(v); onVerdicts?.(v); },
  });
  return { store, manager, engine };
}


// 0. Idle clients first, on a fresh server (later phases leave freed heap that would hide the cost):
// connect them from a child process, measure this process's memory per client.
const idleStore = pipeline().store;
const idleServer = new HttpServer({ config: parseHttpConfig({ VIGIL_HTTP_PORT: '0' }, []), logger: silentLogger(), manager: new IncidentManager({ store: idleStore, logger: silentLogger() }), commands: new CommandHandler(silentLogger()), metrics: new MetricsRegistry(), version: 'bench', ready: () => ({ ok: true, checks: {} }) });
await idleServer.start();
globalThis.gc?.();
const rssBefore = process.memoryUsage().rss;
const holder = spawn(process.execPath, ['-e', `
  const WebSocket = require(${JSON.stringify(new URL('../node_modules/ws/index.js', import.meta.url).pathname)});
  let open = 0; const n = ${IDLE}; const all = [];
  const next = (i) => { if (i >= n) return; const ws = new WebSocket('ws://127.0.0.1:${idleServer.port}/feed'); all.push(ws);
    ws.on('open', () => { open++; if (open === n) console.log('all open'); next(i + 100); }); ws.on('error', (e) => { console.error(e.message); process.exit(1); }); };
  for (let i = 0; i < 100; i++) next(i);
  process.stdin.on('data', () => process.exit(0));
`], { stdio: ['pipe', 'pipe', 'inherit'] });
await new Promise((resolve, reject) => { holder.stdout.on('data', (d) => { if (String(d).includes('all open')) resolve(); }); holder.once('exit', (code) => reject(new Error(`client holder exited ${code}`))); });
const deadline = Date.now() + 30_000;
while (idleServer.feed.clientCount < IDLE && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
globalThis.gc?.();
const rssAfter = process.memoryUsage().rss;
const idleClients = idleServer.feed.clientCount;
holder.stdin.write('x');
await new Promise((r) => holder.once('exit', r));

idleServer.stop();
idleStore.close();

const chunks = buildChunks();
const events = chunks.reduce((a, c) => a + c.events, 0);

// 1. Maximum throughput of engine + incident manager.
let maxRate;
{
  const { engine, store } = pipeline();
  await engine.start();
  // The engine transfers each chunk's buffer to a worker: push copies, keep the originals for phase 2.
  const copies = chunks.map((c) => new Uint8Array(c.bytes));
  const t0 = now();
  for (const c of copies) await engine.push(c);
  await engine.drain();
  maxRate = events / ((now() - t0) / 1000);
  await engine.stop();
  store.close();
}

// 2. Latency at half that rate, through the HTTP server's feed to a client in another thread.
const rate = maxRate / 2;
const { engine, store, manager } = pipeline();
await engine.start();
const problems = [];
const config = parseHttpConfig({ VIGIL_HTTP_PORT: '0', VIGIL_FEED_UPDATE_MS: '0' }, problems);
const server = new HttpServer({ config, logger: silentLogger(), manager, commands: new CommandHandler(silentLogger()), metrics: new MetricsRegistry(), version: 'bench', ready: () => ({ ok: true, checks: {} }) });
await server.start();
const client = new Worker(`
  const { parentPort, workerData } = require('node:worker_threads');
  const { performance } = require('node:perf_hooks');
  const WebSocket = require(workerData.ws);
  const ws = new WebSocket(workerData.url);
  const got = [];
  ws.on('message', (d) => { const m = JSON.parse(String(d)); if (m.incident) got.push([performance.timeOrigin + performance.now(), m.at_ms, m.type]); });
  ws.on('open', () => parentPort.postMessage('open'));
  parentPort.on('message', () => { parentPort.postMessage(got); ws.close(); });
`, { eval: true, workerData: { url: `ws://127.0.0.1:${server.port}/feed`, ws: new URL('../node_modules/ws/index.js', import.meta.url).pathname } });
await new Promise((r) => client.once('message', r));

const pushedAt = new Array(chunks.length);
const t0 = now();
let sent = 0;
for (let c = 0; c < chunks.length; c++) {
  const due = t0 + (sent / rate) * 1000;
  const wait = due - now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  pushedAt[c] = now();
  await engine.push(chunks[c].bytes);
  sent += chunks[c].events;
}
await engine.drain();
await new Promise((r) => setTimeout(r, 500));
client.postMessage('done');
const got = await new Promise((r) => client.once('message', r));
await client.terminate();

// Tick T is evaluated in the first chunk whose watermark reaches T: that chunk's push is where the update's cause entered.
const latencies = [];
let ci = 0;
for (const [recvAt, atMs] of got.sort((a, b) => a[1] - b[1])) {
  while (ci < chunks.length && chunks[ci].watermark < atMs) ci++;
  if (ci < chunks.length) latencies.push(recvAt - pushedAt[ci]);
}
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];

server.stop();
await engine.stop();
store.close();

const result = {
  date: new Date().toISOString(), cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, workers: WORKERS,
  events, max_events_per_s: Math.round(maxRate), paced_events_per_s: Math.round(rate),
  feed_messages: got.length, latency_ms: { p50: +q(0.5).toFixed(1), p90: +q(0.9).toFixed(1), p99: +q(0.99).toFixed(1), max: +latencies.at(-1).toFixed(1) },
  idle_clients: idleClients, server_rss_mb_before: +(rssBefore / 2 ** 20).toFixed(1), server_rss_mb_after: +(rssAfter / 2 ** 20).toFixed(1),
  server_bytes_per_idle_client: Math.round((rssAfter - rssBefore) / Math.max(1, idleClients)),
};
console.log(JSON.stringify(result, null, 2));

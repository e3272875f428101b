// Detection quality on a generated 24 h field run (`vigil generate --profile field`: 300 properties of
// heavy-tailed sizes in several time zones, tiny properties, nightly shifts, ramps, brand-new error
// types, long outages, bursts, duplicated lines): recall, precision, false incidents per 10k
// key-hours, median and worst detection delay, for three detectors in the same run:
//   previous   the detector before issue 13 (PREVIOUS_DETECTION_PARAMS: every new mechanism off)
//   current    the default detector
//   fixed      a fixed-threshold rule (below), the usual first alerting rule of a video team
// Not a timed benchmark: it measures what is found and how late, in event time.
//
//   node bench/detection.js            (after npm run build)
//   BENCH_DET_SEEDS=1,2 BENCH_DET_PROPERTIES=300 BENCH_DET_SCALE=0.05 BENCH_DET_DUPLICATES=0.03 BENCH_DET_BAD_CLOCKS=0
import { existsSync, mkdirSync, createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { writeGeneratedFiles, scoreRun, alertFromMs } from '../dist/generate/index.js';
import { replay } from '../dist/replay/replay.js';
import { DEFAULT_DETECTION_PARAMS, PREVIOUS_DETECTION_PARAMS } from '../dist/kernel/detection-params.js';
import { silentLogger } from '../dist/log/logger.js';

const seeds = (process.env.BENCH_DET_SEEDS ?? '1').split(',').map(Number);
const properties = Number(process.env.BENCH_DET_PROPERTIES ?? 300);
const scale = Number(process.env.BENCH_DET_SCALE ?? 0.05);
const duplicates = Number(process.env.BENCH_DET_DUPLICATES ?? 0.03);
const badClocks = process.env.BENCH_DET_BAD_CLOCKS === '1';
const only = process.env.BENCH_DET_ONLY?.split(',');
const outDir = join(import.meta.dirname, 'out');
mkdirSync(outDir, { recursive: true });

const MIN = 60_000;
const HOUR = 60 * MIN;

async function dataset(seed) {
  const base = join(outDir, `field-s${seed}-p${properties}-x${scale}-d${duplicates}${badClocks ? '-clocks' : ''}`);
  const file = `${base}.ndjson`;
  const labelsFile = `${base}.labels.ndjson`;
  if (!existsSync(file) || !existsSync(labelsFile)) {
    process.stderr.write(`generating ${file} ...\n`);
    await writeGeneratedFiles({ seed, hours: 24, profile: 'field', properties, scale, duplicates, badClocks, out: file, labelsOut: labelsFile });
  }
  const labels = [];
  for await (const line of createInterface({ input: createReadStream(labelsFile) })) if (line) labels.push(JSON.parse(line));
  return { file, labels };
}

async function vigil(file, params) {
  const records = [];
  let buf = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      buf += chunk;
      const lines = buf.split('\n');
      buf = lines.pop();
      for (const l of lines) if (l) records.push(JSON.parse(l));
      cb();
    },
  });
  const summary = await replay({
    input: file, output: sink, workers: 2, groups: 128, chunkBytes: 1 << 20, params,
    maxKeysPerWorker: 250_000, maxCellsPerWorker: 500_000, logger: silentLogger(),
  });
  return { records, summary };
}

// The fixed-threshold rule, per property and per title and error type, on 1-minute buckets of event
// time, evaluated at each minute once every event of it can have arrived (5 s of disorder allowed):
//   property: over the last 5 minutes, >= 100 views, >= 10 failures and a ratio above 5%; resolves below 5%
//   title:    over the last 30 minutes, >= 20 views, >= 8 failures and a ratio above 30%; resolves below 30%
// It also counts key-hours (hours in which a property or title had a view) for the false-incident rate.
const RULES = {
  property: { minutes: 5, minViews: 100, minFailures: 10, ratio: 0.05 },
  title: { minutes: 30, minViews: 20, minFailures: 8, ratio: 0.3 },
};

async function fixedRule(file, observe) {
  const keys = new Map(); // key -> { scope, property, title, views: Map<minute, n>, fails: Map<error, Map<minute, n>>, open: Map<error, id> }
  const keyHours = new Set();
  const records = [];
  let nextId = 1;
  let maxTs = -Infinity;
  let evaluated = null; // last evaluated minute
  const keyOf = (scope, property, title) => {
    const id = scope === 'property' ? `p|${property}` : `t|${property}|${title}`;
    let k = keys.get(id);
    if (!k) keys.set(id, (k = { scope, property, title, views: new Map(), fails: new Map(), open: new Map() }));
    return k;
  };
  const add = (m, minute, by = 1) => m.set(minute, (m.get(minute) ?? 0) + by);
  const sum = (m, from, to) => {
    let s = 0;
    for (let i = from; i <= to; i++) s += m.get(i) ?? 0;
    return s;
  };
  const evaluate = (minute) => {
    const at = new Date((minute + 1) * MIN).toISOString();
    for (const k of keys.values()) {
      const rule = RULES[k.scope];
      const from = minute - rule.minutes + 1;
      const n = sum(k.views, from, minute);
      for (const [error, fm] of k.fails) {
        const x = sum(fm, from, minute);
        const openId = k.open.get(error);
        if (openId === undefined) {
          if (n >= rule.minViews && x >= rule.minFailures && x / n > rule.ratio) {
            const id = nextId++;
            k.open.set(error, id);
            records.push({ type: 'opened', incident_id: id, scope: k.scope, property_id: k.property, ...(k.scope === 'title' ? { video_title: k.title } : {}), error_type: error, at });
          }
        } else if (n === 0 || x / n <= rule.ratio) {
          k.open.delete(error);
          records.push({ type: 'resolved', incident_id: openId, scope: k.scope, property_id: k.property, error_type: error, at });
        }
      }
      // Forget buckets that no window reaches any more.
      const old = minute - 60;
      for (const m of k.views.keys()) if (m < old) k.views.delete(m);
      for (const fm of k.fails.values()) for (const m of fm.keys()) if (m < old) fm.delete(m);
    }
  };
  const seen = new Set();
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    let o;
    try { o = JSON.parse(line); } catch { continue; }
    if (o === null || typeof o !== 'object' || o.property_id == null || o.ts == null) continue;
    const ts = typeof o.ts === 'number' ? o.ts : Date.parse(o.ts);
    if (!Number.isFinite(ts)) continue;
    // The rule sees duplicates as they come (a fixed rule has no memory of view ids).
    const property = String(o.property_id);
    const title = o.video_title || null;
    const error = o.error_type || null;
    if (ts > maxTs) maxTs = ts;
    const wmMinute = Math.floor((maxTs - 5000) / MIN) - 1;
    if (evaluated === null) evaluated = wmMinute - 1;
    // A record from a device clock far ahead would stop the rule too; bound the catch-up to a day.
    while (evaluated < wmMinute && wmMinute - evaluated < 24 * 60) evaluate(++evaluated);
    if (wmMinute - evaluated >= 24 * 60) evaluated = wmMinute;
    observe?.(o, ts, property, title, error);
    const minute = Math.floor(ts / MIN);
    const hour = Math.floor(ts / HOUR);
    const scopes = title === null ? [['property', null]] : [['property', null], ['title', title]];
    for (const [scope, t] of scopes) {
      const k = keyOf(scope, property, t);
      add(k.views, minute);
      if (error !== null) {
        let fm = k.fails.get(error);
        if (!fm) k.fails.set(error, (fm = new Map()));
        add(fm, minute);
      }
      const kh = `${scope}|${property}|${t}|${hour}`;
      if (!seen.has(kh)) { seen.add(kh); keyHours.add(kh); }
    }
  }
  if (evaluated !== null) for (let m = evaluated + 1; m <= Math.floor(maxTs / MIN) + 1; m++) evaluate(m);
  return { records, keyHours: keyHours.size };
}


// The floor of a label's detection delay: the first minute end, from the moment the label is worth a
// page, at which the data itself proves the key above its bar at the detector's own standard of
// evidence: some span of whole minutes ending then (within the property ring's 32 minutes, or a title
// ring's 320) holds at least 8 failures (property: or failures in 5 distinct minutes) and its failures
// exceed the bar at z >= 3 (one-sided score test). The bar is the key's own rate of the error type
// over the 2 hours before the label, plus the default minimum effect (property: +3 points or x1.5;
// title: +10 points or x2). Hindsight: the span is picked after the fact, with no price for looking
// at many, and the bar is known exactly, so no detector held to that standard is sure sooner. Copies
// of a view (same view id and ts) count once.
//
// A second, far weaker standard shows what the data holds at all (`weak`): the bar is the baseline
// itself (no minimum effect), 3 failures are enough and z >= 2. A detector held to it would page on
// noise all day (one-sided z >= 2 is passed by chance in ~2% of spans, and the span is still picked
// in hindsight), so no detector with no false incident gets below this floor either.
const FLOOR = { property: { ring: 32, abs: DEFAULT_DETECTION_PARAMS.property.minEffectAbs, ratio: DEFAULT_DETECTION_PARAMS.property.minEffectRatio, failSlots: 5 },
  title: { ring: 320, abs: DEFAULT_DETECTION_PARAMS.title.minEffectAbs, ratio: DEFAULT_DETECTION_PARAMS.title.minEffectRatio, failSlots: 0 } };

function floorObserver(labels, weak = false) {
  const watched = new Map(); // key -> [{ label, from, to, buckets: Map<minute, [views, fails]>, seen: Set }]
  for (const label of labels.filter((l) => l.expect === 'alert')) {
    const key = `${label.scope}|${label.property_id}|${label.video_title ?? ''}`;
    const w = { label, from: Date.parse(label.start) - 2 * HOUR, to: Date.parse(label.end), buckets: new Map(), seen: new Set() };
    if (!watched.has(key)) watched.set(key, []);
    watched.get(key).push(w);
  }
  const observe = (o, ts, property, title, error) => {
    const keys = [`property|${property}|`];
    if (title !== null) keys.push(`title|${property}|${title}`);
    for (const key of keys) {
      const ws = watched.get(key);
      if (!ws) continue;
      for (const w of ws) {
        if (ts < w.from || ts >= w.to) continue;
        if (typeof o.view_id === 'string') {
          const id = `${o.view_id}|${o.ts}`;
          if (w.seen.has(id)) continue;
          w.seen.add(id);
        }
        const m = Math.floor(ts / MIN);
        let b = w.buckets.get(m);
        if (!b) w.buckets.set(m, (b = [0, 0]));
        b[0]++;
        if (error === w.label.error_type) b[1]++;
      }
    }
  };
  const floors = () => {
    const out = new Map(); // label -> floor (ms) or null
    for (const ws of watched.values()) {
      for (const w of ws) {
        const f = FLOOR[w.label.scope];
        const start = Date.parse(w.label.start);
        let bn = 0;
        let bx = 0;
        for (const [m, [n, x]] of w.buckets) if (m * MIN < start) { bn += n; bx += x; }
        const base = bn > 0 ? bx / bn : 0;
        const bar = weak ? Math.max(base, 1e-4) : Math.min(1, Math.max(base + f.abs, base * f.ratio));
        let floor = null;
        const first = Math.floor(alertFromMs(w.label) / MIN) + 1; // minute ends from the alert moment on
        for (let end = first; end * MIN <= w.to && floor === null; end++) {
          let n = 0;
          let x = 0;
          let failing = 0;
          for (let m = end - 1; m >= end - f.ring; m--) {
            const b = w.buckets.get(m);
            if (b) { n += b[0]; x += b[1]; if (b[1] > 0) failing++; }
            if (weak ? x < 3 : x < 8 && !(f.failSlots > 0 && failing >= f.failSlots)) continue;
            const e = x - n * bar;
            if (bar < 1 && e > 0 && e * e >= (weak ? 4 : 9) * n * bar * (1 - bar)) { floor = end * MIN; break; }
          }
        }
        out.set(w.label, floor);
      }
    }
    return out;
  };
  return { observe, floors };
}

const fmtMs = (ms) => (ms === null ? '-' : ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${(ms / MIN).toFixed(1)} min`);

const median = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] : null);

/** Delays past the floor (opening minus floor, 0 when sooner) of the found labels that have a floor. */
function overFloor(outcomes, floors) {
  return outcomes.filter((o) => o.openedAt !== null && floors.get(o.label) != null).map((o) => Math.max(0, o.openedAt - floors.get(o.label)));
}

function report(name, score, keyHours, floors, extra = '') {
  const per10k = (score.falseOpenings.length / keyHours) * 10_000;
  const over = overFloor(score.outcomes, floors);
  console.log(`${name.padEnd(9)} recall ${score.recall.toFixed(3)}  precision ${score.precision.toFixed(3)}  openings ${String(score.openings).padStart(4)}  false ${String(score.falseOpenings.length).padStart(4)} (${per10k.toFixed(2)} per 10k key-hours)  delay median ${fmtMs(score.medianDelayMs)}, worst ${fmtMs(score.worstDelayMs)}; past the floor median ${fmtMs(median(over))}${extra}`);
  const kinds = [...new Set(score.outcomes.map((o) => o.label.kind))].sort();
  for (const kind of kinds) {
    const os = score.outcomes.filter((o) => o.label.kind === kind);
    const found = os.filter((o) => o.openedAt !== null);
    const delays = found.map((o) => Math.max(0, o.delayMs)).sort((a, b) => a - b);
    const floorDelays = os.filter((o) => floors.get(o.label) != null).map((o) => Math.max(0, floors.get(o.label) - alertFromMs(o.label)));
    console.log(`            ${kind.padEnd(22)} ${found.length}/${os.length}  delay median ${fmtMs(median(delays))}, worst ${fmtMs(delays.length ? delays[delays.length - 1] : null)}  (floor median ${fmtMs(median(floorDelays))}; past the floor median ${fmtMs(median(overFloor(os, floors)))})`);
  }
  const byKind = new Map();
  for (const r of score.falseOpenings) {
    const k = `${r.scope}`;
    byKind.set(k, (byKind.get(k) ?? 0) + 1);
  }
  if (score.falseOpenings.length > 0) console.log(`            false openings by scope: ${JSON.stringify(Object.fromEntries(byKind))}`);
}

console.log(`detection quality: field profile, 24 h, ${properties} properties, scale ${scale}, duplicates ${duplicates}, bad clocks ${badClocks ? 'on' : 'off'}`);
console.log(`machine: ${cpus().length} x ${cpus()[0].model}, node ${process.version}, ${new Date().toISOString()}`);
const results = [];
for (const seed of seeds) {
  const { file, labels } = await dataset(seed);
  console.log(`\nseed ${seed}: ${file}, ${labels.filter((l) => l.expect === 'alert').length} labelled incidents, ${labels.filter((l) => l.expect === 'none').length} must-not-alert situations`);
  const floorOf = floorObserver(labels);
  const weakFloorOf = floorObserver(labels, true);
  const fixed = await fixedRule(file, (...a) => { floorOf.observe(...a); weakFloorOf.observe(...a); });
  const floors = floorOf.floors();
  const weakFloors = weakFloorOf.floors();
  const keyHours = fixed.keyHours;
  const allFloors = labels.filter((l) => l.expect === 'alert').map((l) => floors.get(l));
  const floorDelays = labels.filter((l) => l.expect === 'alert' && floors.get(l) != null).map((l) => Math.max(0, floors.get(l) - alertFromMs(l)));
  console.log(`delay floor (the data proves the bar crossed at z = 3 with 8 failures, in hindsight): ${allFloors.filter((f) => f != null).length}/${allFloors.length} labels have one, median ${fmtMs(median(floorDelays))}, worst ${fmtMs(floorDelays.length ? Math.max(...floorDelays) : null)}`);
  const weakDelays = labels.filter((l) => l.expect === 'alert' && weakFloors.get(l) != null).map((l) => Math.max(0, weakFloors.get(l) - alertFromMs(l)));
  console.log(`weak floor (the baseline itself crossed at z = 2 with 3 failures, in hindsight: what the data holds at all): median ${fmtMs(median(weakDelays))}, worst ${fmtMs(weakDelays.length ? Math.max(...weakDelays) : null)}`);
  console.log(`key-hours (hours in which a property or title had views): ${keyHours.toLocaleString('en')}`);
  const detectors = [
    ['previous', () => vigil(file, PREVIOUS_DETECTION_PARAMS)],
    ['current', () => vigil(file, DEFAULT_DETECTION_PARAMS)],
  ];
  for (const [name, run] of detectors) {
    if (only && !only.includes(name)) continue;
    const { records, summary } = await run();
    const score = scoreRun(labels, records);
    report(name, score, keyHours, floors, `  (late ${summary.late.toLocaleString('en')}, ${(summary.eventsPerSecond / 1e6).toFixed(2)}M events/s)`);
    if (process.env.BENCH_DET_VERBOSE) {
      for (const o of score.outcomes.filter((x) => x.openedAt === null)) console.log(`            missed ${o.label.kind} ${o.label.property_id} ${o.label.video_title ?? ''} ${o.label.start}`);
      for (const r of score.falseOpenings.slice(0, 30)) console.log(`            false ${r.scope} ${r.property_id} ${r.video_title ?? ''} ${r.error_type} ${r.at}`);
    }
    results.push({ seed, detector: name, recall: score.recall, precision: score.precision, false: score.falseOpenings.length, keyHours, median: score.medianDelayMs, worst: score.worstDelayMs, medianPastFloor: median(overFloor(score.outcomes, floors)) });
  }
  if (!only || only.includes('fixed')) {
    const score = scoreRun(labels, fixed.records);
    report('fixed', score, keyHours, floors);
    results.push({ seed, detector: 'fixed', recall: score.recall, precision: score.precision, false: score.falseOpenings.length, keyHours, median: score.medianDelayMs, worst: score.worstDelayMs, medianPastFloor: median(overFloor(score.outcomes, floors)) });
  }
}
console.log(JSON.stringify({ bench: 'detection', properties, scale, duplicates, badClocks, results }));

/** A small deterministic traffic builder for CLI and daemon tests (the realistic generator lives in src/generate). */
export interface TrafficSpec {
  startMs: number;
  minutes: number;
  viewsPerSecond: number;
  properties: string[];
  /** Windows (minutes from start) where a property's networkError rate jumps. */
  outages: Array<{ property: string; fromMin: number; toMin: number; ratio: number }>;
  seed?: number;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** NDJSON lines of views: 1% baseline networkError, the given outages, ±1 s of disorder, titles T0..T9. */
export function buildTraffic(spec: TrafficSpec): string[] {
  const rnd = mulberry32(spec.seed ?? 7);
  const lines: string[] = [];
  const stepMs = 1000 / spec.viewsPerSecond;
  const total = spec.minutes * 60 * spec.viewsPerSecond;
  for (let i = 0; i < total; i++) {
    const ts = Math.round(spec.startMs + i * stepMs + (rnd() - 0.5) * 2000);
    const property = spec.properties[i % spec.properties.length];
    const minute = (i * stepMs) / 60000;
    let ratio = 0.01;
    for (const o of spec.outages) if (o.property === property && minute >= o.fromMin && minute < o.toMin) ratio = o.ratio;
    const err = rnd() < ratio ? 'networkError' : null;
    lines.push(JSON.stringify({ view_id: `v${i}`, property_id: property, video_title: `T${Math.floor(rnd() * 10)}`, error_type: err, ts }));
  }
  return lines;
}

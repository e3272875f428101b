import type { Scope } from './verdict.ts';

/** Parameters of one scope's detector; times in event-time milliseconds. See ARCHITECTURE.md "Detection model". */
export interface ScopeParams {
  /** Width of one counting slot; the ring holds 32 slots. */
  slotMs: number;
  /** Minimum window: an incident opens on at least this many views unless the evidence is overwhelming. */
  minViews: number;
  /** No incident opens on fewer failures than this in the window. */
  minFailures: number;
  /** z of the Wilson lower bound that must clear the threshold to open. */
  zOpen: number;
  /** z for opening below the minimum window: overwhelming evidence only. */
  zStrong: number;
  /** Minimum effect: the threshold is at least baseline + this (absolute ratio). */
  minEffectAbs: number;
  /** Minimum effect: the threshold is at least baseline x this. */
  minEffectRatio: number;
  /** The rate must stay clearly below the threshold (Wilson upper bound at zResolve) for this long to resolve. */
  resolveMs: number;
  /** The recent window (resolve, and fast opening) reaches back further when needed to hold this many views. */
  resolveMinViews: number;
  zResolve: number;
  /** An open incident expires when its key has had no views for this long. */
  expireMs: number;
  /** A key with no views for this long and no open incident is evicted. */
  idleEvictMs: number;
  /** Half-life of the moving baseline. */
  baselineHalfLifeMs: number;
  /** Property scope: views the baseline needs before the key may alert. */
  warmupViews: number;
  /** Title scope: strength (in views) of the pull of a title's baseline toward its property's. */
  priorViews: number;
}

/** All detection parameters. */
export interface DetectionParams {
  /** Evaluation tick: every key with new views is evaluated at each multiple of this. */
  tickMs: number;
  /** Bounded out-of-orderness: the watermark trails the highest event time by this. */
  outOfOrdernessMs: number;
  /** What happens to an event older than the last evaluated tick: counted at the current tick, or dropped. Both are counted as late. */
  latePolicy: 'count' | 'drop';
  /** Idle keys are swept at multiples of this. */
  sweepMs: number;
  property: ScopeParams;
  title: ScopeParams;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The defaults, with the reasons in ARCHITECTURE.md. */
export const DEFAULT_DETECTION_PARAMS: DetectionParams = {
  tickMs: 10_000,
  outOfOrdernessMs: 5_000,
  latePolicy: 'count',
  sweepMs: 5 * MINUTE,
  property: {
    slotMs: MINUTE,
    minViews: 1000,
    minFailures: 20,
    zOpen: 3,
    zStrong: 5,
    minEffectAbs: 0.03,
    minEffectRatio: 1.5,
    resolveMs: 3 * MINUTE,
    resolveMinViews: 100,
    zResolve: 1,
    expireMs: 30 * MINUTE,
    idleEvictMs: 24 * HOUR,
    baselineHalfLifeMs: 6 * HOUR,
    warmupViews: 500,
    priorViews: 0,
  },
  title: {
    slotMs: 10 * MINUTE,
    minViews: 30,
    minFailures: 8,
    zOpen: 3,
    zStrong: 5,
    minEffectAbs: 0.1,
    minEffectRatio: 2,
    resolveMs: 10 * MINUTE,
    resolveMinViews: 10,
    zResolve: 1,
    expireMs: 2 * HOUR,
    idleEvictMs: 12 * HOUR,
    baselineHalfLifeMs: 24 * HOUR,
    warmupViews: 0,
    priorViews: 200,
  },
};

const SCOPE_FIELDS: (keyof ScopeParams)[] = [
  'slotMs', 'minViews', 'minFailures', 'zOpen', 'zStrong', 'minEffectAbs', 'minEffectRatio',
  'resolveMs', 'resolveMinViews', 'zResolve', 'expireMs', 'idleEvictMs', 'baselineHalfLifeMs', 'warmupViews', 'priorViews',
];

/** Returns every problem with a parameter set (empty when valid), each naming the parameter. */
export function validateDetectionParams(p: DetectionParams): string[] {
  const problems: string[] = [];
  const positiveInt = (name: string, v: number) => {
    if (!Number.isSafeInteger(v) || v <= 0) problems.push(`${name} must be a positive integer, got ${v}`);
  };
  positiveInt('tickMs', p.tickMs);
  if (!Number.isSafeInteger(p.outOfOrdernessMs) || p.outOfOrdernessMs < 0) problems.push(`outOfOrdernessMs must be an integer >= 0, got ${p.outOfOrdernessMs}`);
  if (p.latePolicy !== 'count' && p.latePolicy !== 'drop') problems.push(`latePolicy must be 'count' or 'drop', got ${String(p.latePolicy)}`);
  positiveInt('sweepMs', p.sweepMs);
  if (problems.length === 0 && p.sweepMs % p.tickMs !== 0) problems.push(`sweepMs (${p.sweepMs}) must be a multiple of tickMs (${p.tickMs})`);
  for (const scope of ['property', 'title'] as Scope[]) {
    const s = p[scope];
    for (const f of SCOPE_FIELDS) {
      if (typeof s[f] !== 'number' || !Number.isFinite(s[f])) problems.push(`${scope}.${f} must be a finite number, got ${String(s[f])}`);
    }
    for (const f of ['slotMs', 'resolveMs', 'expireMs', 'idleEvictMs', 'baselineHalfLifeMs'] as const) positiveInt(`${scope}.${f}`, s[f]);
    if (Number.isSafeInteger(s.slotMs) && s.slotMs % p.tickMs !== 0) problems.push(`${scope}.slotMs (${s.slotMs}) must be a multiple of tickMs (${p.tickMs})`);
    for (const f of ['minViews', 'minFailures', 'warmupViews', 'priorViews', 'minEffectAbs', 'resolveMinViews'] as const) {
      if (s[f] < 0) problems.push(`${scope}.${f} must be >= 0, got ${s[f]}`);
    }
    for (const f of ['zOpen', 'zStrong', 'zResolve'] as const) if (!(s[f] > 0)) problems.push(`${scope}.${f} must be > 0, got ${s[f]}`);
    if (s.minEffectRatio < 1) problems.push(`${scope}.minEffectRatio must be >= 1, got ${s.minEffectRatio}`);
    if (s.minEffectAbs >= 1) problems.push(`${scope}.minEffectAbs must be < 1, got ${s.minEffectAbs}`);
  }
  if (p.title.idleEvictMs > p.property.idleEvictMs) problems.push('title.idleEvictMs must not exceed property.idleEvictMs');
  return problems;
}

/** Per-slot multiplier of the baseline: 2^(-slotMs / halfLife). Computed once in JS and passed to both models. */
export function baselineDecay(s: ScopeParams): number {
  return Math.pow(2, -s.slotMs / s.baselineHalfLifeMs);
}

/** The flat parameter slots of the kernel (assembly/params.ts), in slot order. */
export function paramSlots(p: DetectionParams): Array<[number, number]> {
  const slots: Array<[number, number]> = [
    [0, p.tickMs], [1, p.outOfOrdernessMs], [2, p.latePolicy === 'drop' ? 1 : 0], [3, p.sweepMs],
  ];
  (['property', 'title'] as Scope[]).forEach((scope, i) => {
    const s = p[scope];
    const base = 16 + i * 24;
    const values = [
      s.slotMs, s.minViews, s.minFailures, s.zOpen, s.zStrong, s.minEffectAbs, s.minEffectRatio,
      s.resolveMs, s.zResolve, s.expireMs, s.idleEvictMs, baselineDecay(s), s.warmupViews, s.priorViews,
      s.resolveMinViews,
    ];
    values.forEach((v, f) => slots.push([base + f, v]));
  });
  return slots;
}

/** Deep-merges a partial override into a parameter set. */
export function mergeDetectionParams(base: DetectionParams, over: DeepPartial<DetectionParams>): DetectionParams {
  return {
    ...base,
    ...(over as object),
    property: { ...base.property, ...(over.property ?? {}) },
    title: { ...base.title, ...(over.title ?? {}) },
  } as DetectionParams;
}

/** A recursive Partial for parameter overrides. */
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

import type { Scope } from './verdict.ts';

/** Parameters of one scope's detector; times in event-time milliseconds. See ARCHITECTURE.md "Detection model". */
export interface ScopeParams {
  /** Width of one counting slot; the ring holds 32 slots. */
  slotMs: number;
  /** Minimum window: an incident opens on at least this many views unless the evidence is overwhelming. */
  minViews: number;
  /** No incident opens on fewer failures than this in the window... */
  minFailures: number;
  /** ...unless its failures fall in at least this many distinct slots (a tiny property failing steadily; 0: off). */
  minFailingSlots: number;
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
  /**
   * Property scope: the reference rate is the Wilson upper bound of the baseline at this z, so a short
   * history raises the bar instead of needing a warm-up (0: the point estimate).
   */
  baselineZ: number;
  /**
   * Property scope: half-life of the fast baseline, which folds every slot (also during an incident)
   * with failures clipped at the reference plus minEffectAbs, and may lift the reference up to the slow
   * baseline's threshold: sustained moderate shifts (a rate that doubles every night) are learned, and
   * an incident opened by one resolves when the bar has caught up (0: off).
   */
  fastHalfLifeMs: number;
  /** Property scope: how far (absolute ratio per hour) the fast baseline may lift the reference; it falls freely. */
  fastRisePerHour: number;
  /** Property scope: the gentle evidence test weighs "failures at this x the threshold" against "at the threshold". */
  cusumRatioLow: number;
  /** Property scope: the steep evidence test's ratio (a jump well past the threshold). */
  cusumRatioHigh: number;
  /** Property scope: log-likelihood ratio (nats) that opens an incident on accumulated evidence (0: off). */
  cusumThreshold: number;
  /** Title scope, 1 or 0: title windows stay out of stretches where the property was hot and that its ring no longer holds. */
  spanGuard: number;
  /**
   * Property scope: trend evidence opens on a span whose failures exceed the threshold at this z while
   * its failure ratio rises significantly (rampSlopeZ): a ramp, sooner than the CUSUM proves it (0: off).
   */
  rampZ: number;
  /** Property scope: z of the rising slope (weighted least squares of the failure ratio over the span's slots) that trend evidence needs. */
  rampSlopeZ: number;
  /**
   * z of the Wilson lower bound (window or recent window) above the threshold that makes a cell hot, so
   * that its slots stay out of its slow baseline; below zOpen, a baseline is kept from an incident before
   * it can be proven (a tiny property's thin history); at or above zOpen, hot = suspect at zOpen.
   */
  zHot: number;
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
  /**
   * A view whose property and view id were seen within this much event time is dropped as a
   * duplicate (at-least-once delivery); 0 turns duplicate suppression off. Views without a string
   * view id are never dropped.
   */
  dedupHorizonMs: number;
  /** Views the duplicate filter remembers per horizon and worker (its tables grow to this; beyond it, copies go through and are counted as dedupFull). */
  dedupMaxViews: number;
  property: ScopeParams;
  title: ScopeParams;
  /**
   * Parameters for one property and its titles, over the global ones: property id -> the fields it
   * changes (run-time fields only, see RUNTIME_SCOPE_FIELDS). At most MAX_PROPERTY_PROFILES properties.
   */
  perProperty?: Record<string, PropertyOverride>;
}

/** What one property changes of the global parameters (for itself and for its titles). */
export interface PropertyOverride {
  property?: Partial<ScopeParams>;
  title?: Partial<ScopeParams>;
}

/** Parameters that may differ per property and change while the kernel holds state (not the slot or tick geometry). */
export const RUNTIME_SCOPE_FIELDS = [
  'minViews', 'minFailures', 'minFailingSlots', 'zOpen', 'zStrong', 'minEffectAbs', 'minEffectRatio', 'resolveMs', 'resolveMinViews',
  'zResolve', 'expireMs', 'idleEvictMs', 'baselineHalfLifeMs', 'warmupViews', 'priorViews',
  'baselineZ', 'fastHalfLifeMs', 'fastRisePerHour', 'cusumRatioLow', 'cusumRatioHigh', 'cusumThreshold', 'spanGuard',
  'rampZ', 'rampSlopeZ', 'zHot',
] as const;

/** How many properties can have parameters of their own (kernel profiles 1..255; profile 0 is the global one). */
export const MAX_PROPERTY_PROFILES = 255;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The defaults, with the reasons in ARCHITECTURE.md. */
export const DEFAULT_DETECTION_PARAMS: DetectionParams = {
  tickMs: 10_000,
  outOfOrdernessMs: 5_000,
  latePolicy: 'count',
  sweepMs: 5 * MINUTE,
  dedupHorizonMs: 2 * MINUTE,
  dedupMaxViews: 65_536,
  property: {
    slotMs: MINUTE,
    minViews: 1000,
    minFailures: 8,
    minFailingSlots: 5,
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
    warmupViews: 0,
    priorViews: 0,
    baselineZ: 1,
    fastHalfLifeMs: 30 * MINUTE,
    fastRisePerHour: 0.02,
    cusumRatioLow: 1.5,
    cusumRatioHigh: 3,
    cusumThreshold: 7,
    spanGuard: 0,
    rampZ: 2.5,
    rampSlopeZ: 1.5,
    zHot: 0.5,
  },
  title: {
    slotMs: 10 * MINUTE,
    minViews: 30,
    minFailures: 8,
    minFailingSlots: 0,
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
    baselineZ: 0,
    fastHalfLifeMs: 0,
    fastRisePerHour: 0,
    cusumRatioLow: 1.5,
    cusumRatioHigh: 3,
    cusumThreshold: 0,
    spanGuard: 1,
    rampZ: 0,
    rampSlopeZ: 0,
    zHot: 3,
  },
};

const SCOPE_FIELDS: (keyof ScopeParams)[] = [
  'slotMs', 'minViews', 'minFailures', 'minFailingSlots', 'zOpen', 'zStrong', 'minEffectAbs', 'minEffectRatio',
  'resolveMs', 'resolveMinViews', 'zResolve', 'expireMs', 'idleEvictMs', 'baselineHalfLifeMs', 'warmupViews', 'priorViews',
  'baselineZ', 'fastHalfLifeMs', 'fastRisePerHour', 'cusumRatioLow', 'cusumRatioHigh', 'cusumThreshold', 'spanGuard',
  'rampZ', 'rampSlopeZ', 'zHot',
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
  if (!Number.isSafeInteger(p.dedupHorizonMs) || p.dedupHorizonMs < 0) problems.push(`dedupHorizonMs must be an integer >= 0 (0: off), got ${p.dedupHorizonMs}`);
  if (!Number.isSafeInteger(p.dedupMaxViews) || p.dedupMaxViews < 1 || p.dedupMaxViews > 50_000_000) problems.push(`dedupMaxViews must be an integer from 1 to 50000000, got ${p.dedupMaxViews}`);
  if (problems.length === 0 && p.sweepMs % p.tickMs !== 0) problems.push(`sweepMs (${p.sweepMs}) must be a multiple of tickMs (${p.tickMs})`);
  scopeProblems(p, p, '', problems);
  const per = p.perProperty ?? {};
  if (per === null || typeof per !== 'object' || Array.isArray(per)) {
    problems.push('perProperty must be an object of property id -> {property, title}');
    return problems;
  }
  const ids = Object.keys(per);
  if (ids.length > MAX_PROPERTY_PROFILES) problems.push(`perProperty: at most ${MAX_PROPERTY_PROFILES} properties can have parameters of their own, got ${ids.length}`);
  for (const id of ids) {
    const over = per[id];
    if (id === '') problems.push('perProperty: the property id must not be empty');
    if (over === null || typeof over !== 'object' || Array.isArray(over)) { problems.push(`perProperty.${id} must be an object`); continue; }
    for (const [scope, fields] of Object.entries(over)) {
      if (scope !== 'property' && scope !== 'title') { problems.push(`perProperty.${id}.${scope}: only property and title`); continue; }
      if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) { problems.push(`perProperty.${id}.${scope} must be an object`); continue; }
      for (const f of Object.keys(fields)) {
        if (!(RUNTIME_SCOPE_FIELDS as readonly string[]).includes(f)) problems.push(`perProperty.${id}.${scope}.${f} cannot differ per property (allowed: ${RUNTIME_SCOPE_FIELDS.join(', ')})`);
      }
    }
    scopeProblems(p, effectiveScopes(p, id), `perProperty.${id}.`, problems);
  }
  return problems;
}

/** The checks of both scopes' parameters (the global ones, or one property's effective ones). */
function scopeProblems(p: DetectionParams, eff: Pick<DetectionParams, 'property' | 'title'>, prefix: string, problems: string[]): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isSafeInteger(v) || v <= 0) problems.push(`${prefix}${name} must be a positive integer, got ${v}`);
  };
  for (const scope of ['property', 'title'] as Scope[]) {
    const s = eff[scope];
    for (const f of SCOPE_FIELDS) {
      if (typeof s[f] !== 'number' || !Number.isFinite(s[f])) problems.push(`${prefix}${scope}.${f} must be a finite number, got ${String(s[f])}`);
    }
    for (const f of ['slotMs', 'resolveMs', 'expireMs', 'idleEvictMs', 'baselineHalfLifeMs'] as const) positiveInt(`${scope}.${f}`, s[f]);
    if (Number.isSafeInteger(s.slotMs) && s.slotMs % p.tickMs !== 0) problems.push(`${prefix}${scope}.slotMs (${s.slotMs}) must be a multiple of tickMs (${p.tickMs})`);
    for (const f of ['minViews', 'minFailures', 'warmupViews', 'priorViews', 'minEffectAbs', 'resolveMinViews', 'baselineZ', 'cusumThreshold', 'fastRisePerHour', 'minFailingSlots', 'rampZ', 'rampSlopeZ'] as const) {
      if (s[f] < 0) problems.push(`${prefix}${scope}.${f} must be >= 0, got ${s[f]}`);
    }
    if (!Number.isSafeInteger(s.fastHalfLifeMs) || s.fastHalfLifeMs < 0) problems.push(`${prefix}${scope}.fastHalfLifeMs must be an integer >= 0 (0: off), got ${s.fastHalfLifeMs}`);
    for (const f of ['cusumRatioLow', 'cusumRatioHigh'] as const) if (!(s[f] > 1)) problems.push(`${prefix}${scope}.${f} must be > 1, got ${s[f]}`);
    if (s.spanGuard !== 0 && s.spanGuard !== 1) problems.push(`${prefix}${scope}.spanGuard must be 0 or 1, got ${s.spanGuard}`);
    for (const f of ['zOpen', 'zStrong', 'zResolve', 'zHot'] as const) if (!(s[f] > 0)) problems.push(`${prefix}${scope}.${f} must be > 0, got ${s[f]}`);
    if (s.minEffectRatio < 1) problems.push(`${prefix}${scope}.minEffectRatio must be >= 1, got ${s.minEffectRatio}`);
    if (s.minEffectAbs >= 1) problems.push(`${prefix}${scope}.minEffectAbs must be < 1, got ${s.minEffectAbs}`);
  }
  if (eff.title.idleEvictMs > eff.property.idleEvictMs) problems.push(`${prefix}title.idleEvictMs must not exceed ${prefix}property.idleEvictMs`);
}

/** One property's parameters of both scopes: the global ones with its override applied. */
export function effectiveScopes(p: DetectionParams, propertyId: string): Pick<DetectionParams, 'property' | 'title'> {
  const over = p.perProperty?.[propertyId];
  if (!over) return { property: p.property, title: p.title };
  return { property: { ...p.property, ...over.property }, title: { ...p.title, ...over.title } };
}


/** Per-slot multiplier of the baseline: 2^(-slotMs / halfLife). Computed once in JS and passed to both models. */
export function baselineDecay(s: ScopeParams): number {
  return Math.pow(2, -s.slotMs / s.baselineHalfLifeMs);
}

/** Per-slot multiplier of the fast baseline, 0 when it is off. */
export function fastDecay(s: ScopeParams): number {
  return s.fastHalfLifeMs > 0 ? Math.pow(2, -s.slotMs / s.fastHalfLifeMs) : 0;
}

/** How far the fast level may rise per slot. */
export function fastRisePerSlot(s: ScopeParams): number {
  return (s.fastRisePerHour * s.slotMs) / 3_600_000;
}

/** A new cell's fast views per slow view of its key (steady traffic fills the two sums in this ratio), 0 when off. */
export function fastShare(s: ScopeParams): number {
  return s.fastHalfLifeMs > 0 ? (1 - baselineDecay(s)) / (1 - fastDecay(s)) : 0;
}

/** The flat parameter slots of the kernel (assembly/params.ts), in slot order. */
export function paramSlots(p: DetectionParams): Array<[number, number]> {
  const slots: Array<[number, number]> = [
    [0, p.tickMs], [1, p.outOfOrdernessMs], [2, p.latePolicy === 'drop' ? 1 : 0], [3, p.sweepMs],
    [4, p.dedupHorizonMs], [5, p.dedupMaxViews],
  ];
  for (const [i, v] of profileSlots(p)) slots.push([16 + i, v]);
  return slots;
}

/** Fields per scope in a kernel parameter block (assembly/params.ts SCOPE_FIELDS; WasmKernel checks they agree). */
export const SCOPE_PARAM_FIELDS = 32;

/**
 * The values of one scope's parameter block, each under the name of the kernel's slot constant
 * (assembly/params.ts `S_*`), in slot order: test/kernel-layout.test.ts checks every name against the
 * constant's slot, so a field moved on one side only fails there.
 */
export function scopeSlotValues(s: ScopeParams): Array<[string, number]> {
  return [
    ['S_SLOT_MS', s.slotMs], ['S_MIN_VIEWS', s.minViews], ['S_MIN_FAILURES', s.minFailures], ['S_Z_OPEN', s.zOpen],
    ['S_Z_STRONG', s.zStrong], ['S_MIN_EFFECT_ABS', s.minEffectAbs], ['S_MIN_EFFECT_RATIO', s.minEffectRatio],
    ['S_RESOLVE_MS', s.resolveMs], ['S_Z_RESOLVE', s.zResolve], ['S_EXPIRE_MS', s.expireMs], ['S_IDLE_EVICT_MS', s.idleEvictMs],
    ['S_BASELINE_DECAY', baselineDecay(s)], ['S_WARMUP_VIEWS', s.warmupViews], ['S_PRIOR_VIEWS', s.priorViews],
    ['S_RESOLVE_VIEWS', s.resolveMinViews], ['S_BASELINE_Z', s.baselineZ], ['S_FAST_DECAY', fastDecay(s)], ['S_FAST_SHARE', fastShare(s)],
    ['S_CUSUM_LOG_LO', Math.log(s.cusumRatioLow)], ['S_CUSUM_STEP_LO', s.cusumRatioLow - 1],
    ['S_CUSUM_LOG_HI', Math.log(s.cusumRatioHigh)], ['S_CUSUM_STEP_HI', s.cusumRatioHigh - 1], ['S_CUSUM_H', s.cusumThreshold],
    ['S_SPAN_GUARD', s.spanGuard], ['S_FAST_RISE', fastRisePerSlot(s)], ['S_MIN_FAIL_SLOTS', s.minFailingSlots],
    ['S_RAMP_Z', s.rampZ], ['S_RAMP_SLOPE_Z', s.rampSlopeZ], ['S_Z_HOT', s.zHot],
  ];
}

/** The slots of one parameter profile (both scopes; slot = scope x SCOPE_PARAM_FIELDS + field of assembly/params.ts). */
export function profileSlots(eff: Pick<DetectionParams, 'property' | 'title'>): Array<[number, number]> {
  const slots: Array<[number, number]> = [];
  (['property', 'title'] as Scope[]).forEach((scope, i) => {
    scopeSlotValues(eff[scope]).forEach(([, v], f) => slots.push([i * SCOPE_PARAM_FIELDS + f, v]));
  });
  return slots;
}

/** The properties with parameters of their own, in kernel profile order (profile = index + 1). */
export function profiledProperties(p: DetectionParams): string[] {
  return Object.keys(p.perProperty ?? {}).sort();
}

/** Deep-merges a partial override into a parameter set. */
export function mergeDetectionParams(base: DetectionParams, over: DeepPartial<DetectionParams>): DetectionParams {
  return {
    ...base,
    ...(over as object),
    property: { ...base.property, ...(over.property ?? {}) },
    title: { ...base.title, ...(over.title ?? {}) },
    ...(base.perProperty || over.perProperty ? { perProperty: mergePerProperty(base.perProperty ?? {}, (over.perProperty ?? {}) as Record<string, PropertyOverride>) } : {}),
  } as DetectionParams;
}

/** Merges per-property overrides field by field; a property mapped to null loses its override. */
export function mergePerProperty(base: Record<string, PropertyOverride>, over: Record<string, PropertyOverride | null>): Record<string, PropertyOverride> {
  const out: Record<string, PropertyOverride> = { ...base };
  for (const [id, o] of Object.entries(over)) {
    if (o === null) { delete out[id]; continue; }
    const b = out[id] ?? {};
    const merged: PropertyOverride = {};
    const prop = { ...b.property, ...o.property };
    const title = { ...b.title, ...o.title };
    if (Object.keys(prop).length) merged.property = prop;
    if (Object.keys(title).length) merged.title = title;
    out[id] = merged;
  }
  return out;
}

/** A recursive Partial for parameter overrides. */
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/**
 * The detector before issue 13 (no duplicate suppression, a 500-view warm-up, 20 failures for
 * overwhelming evidence, point baselines, no fast baseline, no evidence test, no span guard for
 * titles), for comparisons
 * (bench/detection.js) and for anyone who wants it back.
 */
export const PREVIOUS_DETECTION_PARAMS: DetectionParams = mergeDetectionParams(DEFAULT_DETECTION_PARAMS, {
  dedupHorizonMs: 0,
  property: { warmupViews: 500, minFailures: 20, minFailingSlots: 0, baselineZ: 0, fastHalfLifeMs: 0, cusumThreshold: 0, rampZ: 0, zHot: 3 },
  title: { spanGuard: 0 },
});

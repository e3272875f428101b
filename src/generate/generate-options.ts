/** Options of a synthetic run; the same options always give byte-identical output. */
export interface GenerateOptions {
  seed: number;
  /** Run length; the demo profile runs forever when this is not a positive finite number. */
  hours: number;
  /** Event time of the run's start (default 2026-11-27T00:00:00Z). */
  startMs?: number;
  profile?: 'realistic' | 'demo' | 'field';
  /**
   * Multiplies background traffic of properties at or above 10k views/h (default 1); in the field
   * profile it multiplies the largest property's size (300k views/h), the others following the curve.
   */
  scale?: number;
  /**
   * Demo profile: when its incident schedule started (default startMs, at most startMs). A demo
   * restarted later passes its first start, so the schedule goes on where it was instead of over.
   */
  scheduleStartMs?: number;
  /** Field profile: how many properties (default 300). */
  properties?: number;
  /** Share of view lines delivered a second time 1-60 s later, as at-least-once pipelines do (default 0). */
  duplicates?: number;
  /** Field profile: devices with wrong clocks (a view 24 h ahead, a producer 3 min ahead on one property). */
  badClocks?: boolean;
}

/** GenerateOptions with defaults applied and `endMs` (Infinity for an endless demo). */
export interface ResolvedGenerateOptions {
  seed: number;
  startMs: number;
  endMs: number;
  hours: number;
  profile: 'realistic' | 'demo' | 'field';
  scale: number;
  scheduleStartMs: number;
  properties: number;
  duplicates: number;
  badClocks: boolean;
}

/** Default start of a run: 2026-11-27T00:00:00Z. */
export const DEFAULT_START_MS = Date.UTC(2026, 10, 27);

/** Validates options and applies defaults, reporting every problem at once in one RangeError. */
export function resolveGenerateOptions(options: GenerateOptions): ResolvedGenerateOptions {
  const problems: string[] = [];
  const profile = options.profile ?? 'realistic';
  if (profile !== 'realistic' && profile !== 'demo' && profile !== 'field') problems.push(`profile must be 'realistic', 'demo' or 'field', got ${JSON.stringify(options.profile)}`);
  if (typeof options.seed !== 'number' || !Number.isSafeInteger(options.seed)) problems.push(`seed must be a safe integer, got ${String(options.seed)}`);
  const startMs = options.startMs ?? DEFAULT_START_MS;
  if (typeof startMs !== 'number' || !Number.isSafeInteger(startMs) || startMs < 0) {
    problems.push(`startMs must be a non-negative integer epoch in ms, got ${String(options.startMs)}`);
  }
  const scale = options.scale ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) problems.push(`scale must be a finite number > 0, got ${String(options.scale)}`);
  const properties = options.properties ?? 300;
  if (!Number.isSafeInteger(properties) || properties < 20 || properties > 5000) problems.push(`properties must be an integer from 20 to 5000, got ${String(options.properties)}`);
  if (options.properties !== undefined && profile !== 'field') problems.push('properties applies to the field profile only');
  const duplicates = options.duplicates ?? 0;
  if (typeof duplicates !== 'number' || !(duplicates >= 0 && duplicates <= 0.5)) problems.push(`duplicates must be a share from 0 to 0.5, got ${String(options.duplicates)}`);
  const badClocks = options.badClocks ?? false;
  if (badClocks && profile !== 'field') problems.push('badClocks applies to the field profile only');
  const hours = options.hours;
  const endless = profile === 'demo' && !(typeof hours === 'number' && Number.isFinite(hours) && hours > 0);
  if (!endless && (typeof hours !== 'number' || !Number.isFinite(hours) || hours <= 0)) {
    problems.push(`hours must be a finite number > 0 for the realistic profile, got ${String(hours)}`);
  }
  const scheduleStartMs = options.scheduleStartMs ?? startMs;
  if (typeof scheduleStartMs !== 'number' || !Number.isSafeInteger(scheduleStartMs) || scheduleStartMs < 0 || scheduleStartMs > startMs) {
    problems.push(`scheduleStartMs must be an integer epoch in ms, at most startMs, got ${String(options.scheduleStartMs)}`);
  }
  if (problems.length > 0) throw new RangeError(`invalid generate options: ${problems.join('; ')}`);
  return {
    seed: options.seed,
    startMs,
    hours: endless ? Infinity : hours,
    endMs: endless ? Infinity : startMs + Math.round(hours * 3_600_000),
    profile,
    scale,
    scheduleStartMs,
    properties,
    duplicates,
    badClocks,
  };
}

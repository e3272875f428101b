import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  mergeDetectionParams, validateDetectionParams, type DeepPartial, type DetectionParams,
} from '../kernel/detection-params.ts';

/** Detection parameters that may change while the kernel holds state (not the slot or tick geometry). */
export const RUNTIME_SCOPE_FIELDS = [
  'minViews', 'minFailures', 'zOpen', 'zStrong', 'minEffectAbs', 'minEffectRatio', 'resolveMs', 'resolveMinViews',
  'zResolve', 'expireMs', 'idleEvictMs', 'baselineHalfLifeMs', 'warmupViews', 'priorViews',
] as const;

const FILE = 'detection-overrides.json';

/**
 * The run-time overrides of the detection parameters (set-thresholds), kept in the data directory so
 * that they survive a restart: the daemon applies them over the configured parameters at start.
 */
export class ParamOverrides {
  private overrides: DeepPartial<DetectionParams> = {};

  constructor(private readonly dataDir: string) {}

  /** Loads the stored overrides and returns the configured parameters with them applied; a bad file is reported, not applied. */
  load(configured: DetectionParams): { params: DetectionParams; problem: string | null } {
    const path = join(this.dataDir, FILE);
    if (!existsSync(path)) return { params: configured, problem: null };
    try {
      const stored = JSON.parse(readFileSync(path, 'utf8')) as { overrides?: DeepPartial<DetectionParams> };
      const over = stored.overrides ?? {};
      const problems = overrideProblems(over as Record<string, unknown>);
      const params = mergeDetectionParams(configured, over);
      problems.push(...validateDetectionParams(params));
      if (problems.length) return { params: configured, problem: `${path}: ${problems.join('; ')}` };
      this.overrides = over;
      return { params, problem: null };
    } catch (err) {
      return { params: configured, problem: `${path}: ${(err as Error).message}` };
    }
  }

  /** Every problem with a set-thresholds override (unknown scope or field, a non-number, a geometry field). */
  static problems(over: Record<string, unknown>): string[] {
    return overrideProblems(over);
  }

  /** Adds an override on top of the earlier ones, validates the result, and persists it (write, fsync-free rename). */
  apply(current: DetectionParams, over: DeepPartial<DetectionParams>): { params: DetectionParams; problems: string[] } {
    const params = mergeDetectionParams(current, over);
    const problems = validateDetectionParams(params);
    if (problems.length) return { params: current, problems };
    const merged: DeepPartial<DetectionParams> = {
      ...this.overrides,
      property: { ...this.overrides.property, ...over.property },
      title: { ...this.overrides.title, ...over.title },
    };
    const path = join(this.dataDir, FILE);
    writeFileSync(`${path}.tmp`, JSON.stringify({ version: 1, overrides: merged }, null, 1) + '\n');
    renameSync(`${path}.tmp`, path);
    this.overrides = merged;
    return { params, problems: [] };
  }

  /** The overrides in force (what set-thresholds has changed so far). */
  current(): DeepPartial<DetectionParams> {
    return this.overrides;
  }
}

function overrideProblems(over: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [scope, fields] of Object.entries(over)) {
    if (scope !== 'property' && scope !== 'title') { problems.push(`${scope}: only property.* and title.* parameters can change at run time`); continue; }
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) { problems.push(`${scope} must be an object`); continue; }
    for (const [f, v] of Object.entries(fields)) {
      if (!(RUNTIME_SCOPE_FIELDS as readonly string[]).includes(f)) problems.push(`${scope}.${f} cannot change at run time (allowed: ${RUNTIME_SCOPE_FIELDS.join(', ')})`);
      else if (typeof v !== 'number' || !Number.isFinite(v)) problems.push(`${scope}.${f} must be a finite number`);
    }
  }
  return problems;
}

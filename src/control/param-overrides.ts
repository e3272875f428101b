import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  RUNTIME_SCOPE_FIELDS, mergeDetectionParams, mergePerProperty, validateDetectionParams,
  type DetectionParams, type PropertyOverride, type ScopeParams,
} from '../kernel/detection-params.ts';

const FILE = 'detection-overrides.json';

/** What set-thresholds has changed: global fields of either scope, and parameters of single properties. */
export interface StoredOverrides {
  property?: Partial<ScopeParams>;
  title?: Partial<ScopeParams>;
  perProperty?: Record<string, PropertyOverride>;
}

/** One set-thresholds change: fields of either scope, globally or for one property; or a reset of either. */
export interface OverrideChange {
  propertyId?: string;
  property?: Partial<ScopeParams>;
  title?: Partial<ScopeParams>;
  /** Drops the overrides (of the property, or the global ones) before applying the fields given. */
  reset?: boolean;
}

/**
 * The run-time overrides of the detection parameters (set-thresholds), kept in the data directory so
 * that they survive a restart. The parameters in force are always the configured ones with the
 * overrides applied, so a reset goes back to exactly what the configuration says.
 */
export class ParamOverrides {
  private overrides: StoredOverrides = {};
  private configured: DetectionParams | null = null;

  constructor(private readonly dataDir: string) {}

  /** Loads the stored overrides and returns the configured parameters with them applied; a bad file is reported, not applied. */
  load(configured: DetectionParams): { params: DetectionParams; problem: string | null } {
    this.configured = configured;
    this.overrides = {};
    const path = join(this.dataDir, FILE);
    if (!existsSync(path)) return { params: configured, problem: null };
    try {
      const stored = JSON.parse(readFileSync(path, 'utf8')) as { overrides?: StoredOverrides };
      const over = stored.overrides ?? {};
      const problems = storedProblems(over);
      const params = problems.length ? configured : mergeDetectionParams(configured, over);
      problems.push(...validateDetectionParams(params));
      if (problems.length) return { params: configured, problem: `${path}: ${problems.join('; ')}` };
      this.overrides = over;
      return { params, problem: null };
    } catch (err) {
      return { params: configured, problem: `${path}: ${(err as Error).message}` };
    }
  }

  /** Every problem with the scope fields of a set-thresholds change (unknown scope or field, a non-number, a geometry field). */
  static problems(fields: Record<string, unknown>): string[] {
    return scopeFieldProblems(fields, '');
  }

  /** Applies a change over the earlier ones, validates the result, and persists it (write, then rename). */
  apply(change: OverrideChange): { params: DetectionParams; problems: string[] } {
    if (!this.configured) throw new Error('ParamOverrides.apply before load');
    const next = structuredClone(this.overrides);
    const fields: PropertyOverride = {};
    if (change.property) fields.property = change.property;
    if (change.title) fields.title = change.title;
    if (change.propertyId !== undefined) {
      let per = { ...next.perProperty };
      if (change.reset) delete per[change.propertyId];
      if (fields.property || fields.title) per = mergePerProperty(per, { [change.propertyId]: fields });
      if (Object.keys(per).length) next.perProperty = per; else delete next.perProperty;
    } else {
      if (change.reset) { delete next.property; delete next.title; }
      if (fields.property) next.property = { ...next.property, ...fields.property };
      if (fields.title) next.title = { ...next.title, ...fields.title };
    }
    const params = mergeDetectionParams(this.configured, next);
    const problems = validateDetectionParams(params);
    if (problems.length) return { params: mergeDetectionParams(this.configured, this.overrides), problems };
    const path = join(this.dataDir, FILE);
    writeFileSync(`${path}.tmp`, JSON.stringify({ version: 2, overrides: next }, null, 1) + '\n');
    renameSync(`${path}.tmp`, path);
    this.overrides = next;
    return { params, problems: [] };
  }

  /** The overrides in force (what set-thresholds has changed so far). */
  current(): StoredOverrides {
    return this.overrides;
  }
}

function scopeFieldProblems(over: Record<string, unknown>, prefix: string): string[] {
  const problems: string[] = [];
  for (const [scope, fields] of Object.entries(over)) {
    if (scope !== 'property' && scope !== 'title') { problems.push(`${prefix}${scope}: only property.* and title.* parameters can change at run time`); continue; }
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) { problems.push(`${prefix}${scope} must be an object`); continue; }
    for (const [f, v] of Object.entries(fields)) {
      if (!(RUNTIME_SCOPE_FIELDS as readonly string[]).includes(f)) problems.push(`${prefix}${scope}.${f} cannot change at run time (allowed: ${RUNTIME_SCOPE_FIELDS.join(', ')})`);
      else if (typeof v !== 'number' || !Number.isFinite(v)) problems.push(`${prefix}${scope}.${f} must be a finite number`);
    }
  }
  return problems;
}

/** Problems with a stored overrides file (version 1 files hold only property/title: still valid). */
function storedProblems(over: StoredOverrides): string[] {
  if (over === null || typeof over !== 'object' || Array.isArray(over)) return ['overrides must be an object'];
  const { perProperty, ...global } = over;
  const problems = scopeFieldProblems(global, '');
  if (perProperty !== undefined) {
    if (perProperty === null || typeof perProperty !== 'object' || Array.isArray(perProperty)) problems.push('perProperty must be an object');
    else for (const [id, o] of Object.entries(perProperty)) problems.push(...scopeFieldProblems((o ?? {}) as Record<string, unknown>, `perProperty.${id}.`));
  }
  return problems;
}

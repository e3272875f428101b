/**
 * Typed reads of one environment object that record every problem instead of throwing, so that
 * loadConfig() can report all of them at once. It reads only the object it is given, and remembers
 * every name it was asked for: those are the variables Vigil knows (see unknownVariables()).
 */
export class EnvReader {
  /** Every variable read so far, set or not. Readers share it through scratch(). */
  readonly names: Set<string>;

  constructor(private readonly env: NodeJS.ProcessEnv, readonly problems: string[], names?: Set<string>) {
    this.names = names ?? new Set();
  }

  /**
   * A reader of the same environment that records names here but whose problems are thrown away:
   * for a section that is off (Kafka when the source is a file), read the same way as when it is on,
   * so that its variables are known without a second list of them.
   */
  scratch(): EnvReader {
    return new EnvReader(this.env, [], this.names);
  }

  /** The variable's value, or null when unset or empty. */
  str(name: string): string | null {
    this.names.add(name);
    const v = this.env[name];
    return v === undefined || v === '' ? null : v;
  }

  /** An integer in [min, max], or `def` when unset (a bad value is a problem). */
  int(name: string, def: number, min: number, max: number): number {
    const raw = this.str(name);
    if (raw === null) return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
      return def;
    }
    return n;
  }

  /** A boolean (1/true/yes/on, 0/false/no/off), or `def` when unset. */
  bool(name: string, def: boolean): boolean {
    const v = this.str(name);
    if (v === null) return def;
    if (['1', 'true', 'yes', 'on'].includes(v.toLowerCase())) return true;
    if (['0', 'false', 'no', 'off'].includes(v.toLowerCase())) return false;
    this.problems.push(`${name}: expected true or false, got ${JSON.stringify(v)}`);
    return def;
  }

  /** One of `choices` (case-insensitive), or `def` when unset. */
  oneOf<T extends string>(name: string, choices: readonly T[], def: T): T {
    const v = this.str(name);
    if (v === null) return def;
    const hit = choices.find((c) => c.toLowerCase() === v.toLowerCase());
    if (!hit) this.problems.push(`${name}: expected one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
    return hit ?? def;
  }

  /** A required value: a problem when unset. */
  required(name: string, why: string): string {
    const v = this.str(name);
    if (v === null) this.problems.push(`${name}: required ${why}`);
    return v ?? '';
  }
}

/** A VIGIL_* variable no reader asked for: a typo, or one this version does not know. */
export interface UnknownVariable {
  name: string;
  /** The known variable it most likely meant, or null when none is close. */
  suggestion: string | null;
}

/** The VIGIL_* variables of env that are not among `known`, each with the closest known name (edit distance). */
export function unknownVariables(env: NodeJS.ProcessEnv, known: ReadonlySet<string>): UnknownVariable[] {
  const out: UnknownVariable[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('VIGIL_') || known.has(name)) continue;
    let best: string | null = null;
    let bestDistance = Infinity;
    for (const k of known) {
      const d = editDistance(name, k);
      if (d < bestDistance || (d === bestDistance && best !== null && k < best)) { best = k; bestDistance = d; }
    }
    // Close enough to be a slip: a few edits, and not most of the name.
    out.push({ name, suggestion: best !== null && bestDistance <= Math.max(2, Math.floor(name.length / 5)) ? best : null });
  }
  return out;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours (FIEL/FILE) cost 1. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

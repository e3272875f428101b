/**
 * Typed reads of one environment object that record every problem instead of throwing, so that
 * loadConfig() can report all of them at once. It reads only the object it is given.
 */
export class EnvReader {
  constructor(private readonly env: NodeJS.ProcessEnv, readonly problems: string[]) {}

  /** The variable's value, or null when unset or empty. */
  str(name: string): string | null {
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

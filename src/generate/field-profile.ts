import { errorIndex } from './error-types.ts';
import { Prng } from './prng.ts';
import type { TitleFlavor } from './title-catalog.ts';
import type { PropertyProfile, TrafficProfile } from './traffic-profile.ts';

// The field profile: many customers of heavy-tailed sizes in several time zones, as a video platform
// has them (most are small), each with its own mix of error types. Roles that change a property's
// normal behaviour (a rate that doubles every night, a steady high rate) are part of the profile;
// field-schedule.ts injects the incidents.

const PROFILE_STREAM = 3;
const MIN_VIEWS_PER_HOUR = 20;
/** The largest property at scale 1. */
export const FIELD_MAX_VIEWS_PER_HOUR = 300_000;
// size(q) = min * (max/min)^(q^SKEW) over quantiles q: with 300 properties about 180 have under
// 100 views/h and 15-40 have over 10k.
const SKEW = 3;
const FLAVORS: TitleFlavor[] = ['network', 'documentary', 'marketing', 'games', 'vlog'];
const PREFIX: Record<TitleFlavor, string> = { network: 'tv', documentary: 'docs', marketing: 'brand', games: 'play', vlog: 'creator' };
const UTC_OFFSETS = [-8, -5, -3, 0, 1, 2, 5.5, 8, 9, 10];

/** Night-shift properties: networkError by day, doubled during the local night. */
export const NIGHT_SHIFT_FACTOR = 2;
/** Steady-high properties fail with networkError at this ratio all the time. */
export const STEADY_HIGH_RATIO = 0.12;

/** Which properties of a field profile carry a special role, by index. */
export interface FieldRoles {
  nightShift: number[];
  steadyHigh: number[];
}

/** A field profile and the indices of its special properties. */
export interface FieldProfile {
  profile: TrafficProfile;
  roles: FieldRoles;
}

/** Log-uniform draw in [lo, hi]. */
function logUniform(prng: Prng, lo: number, hi: number): number {
  return lo * Math.pow(hi / lo, prng.next());
}

/**
 * Builds `count` properties from 20 views/h up to 300k x scale views/h, deterministic per seed.
 * Baselines per error type: networkError 0.3-3%, decodeError 0.05-0.4%, manifestError 0.1-0.5%,
 * drmError 0 for ~40% of properties (a brand-new error type there is really new) else 0.02-0.2%,
 * timeoutError 0.1-0.8%.
 */
export function buildFieldProfile(seed: number, count: number, scale: number): FieldProfile {
  const prng = new Prng(seed, PROFILE_STREAM);
  const maxViews = Math.max(MIN_VIEWS_PER_HOUR * 10, FIELD_MAX_VIEWS_PER_HOUR * scale);
  const properties: PropertyProfile[] = [];
  const sizes: number[] = [];
  for (let i = 0; i < count; i++) {
    const q = (i + 0.5) / count;
    sizes.push(Math.round(MIN_VIEWS_PER_HOUR * Math.pow(maxViews / MIN_VIEWS_PER_HOUR, Math.pow(q, SKEW))));
  }
  // Roles by size band, spread over the band: night shifts on mid-size properties (enough views for
  // the shift to be unmistakable), steady-high rates on any size from 500 views/h.
  const nightCandidates = sizes.map((s, i) => (s >= 5_000 && s <= 40_000 ? i : -1)).filter((i) => i >= 0);
  const highCandidates = sizes.map((s, i) => (s >= 500 ? i : -1)).filter((i) => i >= 0);
  const nightShift = spread(nightCandidates, Math.max(1, Math.round(count / 30)));
  const steadyHigh = spread(highCandidates.filter((i) => !nightShift.includes(i)), Math.max(1, Math.round(count / 50)));

  for (let i = 0; i < count; i++) {
    const flavor = FLAVORS[i % FLAVORS.length];
    const viewsPerHour = sizes[i];
    const idIsInteger = i % 10 === 3;
    const ratios = [
      logUniform(prng, 0.003, 0.03),
      logUniform(prng, 0.0005, 0.004),
      logUniform(prng, 0.001, 0.005),
      prng.next() < 0.4 ? 0 : logUniform(prng, 0.0002, 0.002),
      logUniform(prng, 0.001, 0.008),
    ];
    let nightShiftSpec: PropertyProfile['nightShift'];
    if (nightShift.includes(i)) {
      // 4-5% by day: doubled, the night's rate clears the previous detector's bar of 1.5x its baseline.
      ratios[errorIndex('networkError')] = 0.04 + 0.01 * prng.next();
      nightShiftSpec = { errorIndex: errorIndex('networkError'), factor: NIGHT_SHIFT_FACTOR };
    }
    if (steadyHigh.includes(i)) ratios[errorIndex('networkError')] = STEADY_HIGH_RATIO;
    properties.push({
      id: idIsInteger ? String(1000 + i) : `${PREFIX[flavor]}-${i}`,
      idIsInteger,
      viewsPerHour,
      catalogSize: Math.max(5, Math.min(2000, Math.round(viewsPerHour / 20))),
      flavor,
      baselineRatios: ratios,
      utcOffsetHours: UTC_OFFSETS[prng.int(UTC_OFFSETS.length)],
      ...(nightShiftSpec ? { nightShift: nightShiftSpec } : {}),
    });
  }
  return { profile: { cycleAmplitude: 0.5, zipfExponent: 1, properties }, roles: { nightShift, steadyHigh } };
}

/** `n` elements spread evenly over `xs` (all of them when there are fewer). */
function spread(xs: number[], n: number): number[] {
  if (xs.length <= n) return xs.slice();
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push(xs[Math.floor(((k + 0.5) * xs.length) / n)]);
  return out;
}

const HOUR_MS = 3_600_000;

/**
 * How far the night has come at local hour `h` (0 by day, 1 from 23:00 to 06:00): mobile viewing
 * rises over 21:00-23:00 and falls over 06:00-08:00, smoothly (half a cosine each way).
 */
export function nightLevel(atMs: number, utcOffsetHours: number): number {
  const day = 24 * HOUR_MS;
  const h = ((((atMs + utcOffsetHours * HOUR_MS) % day) + day) % day) / HOUR_MS;
  if (h >= 23 || h < 6) return 1;
  if (h >= 21) return (1 - Math.cos((Math.PI * (h - 21)) / 2)) / 2;
  if (h >= 6 && h < 8) return (1 + Math.cos((Math.PI * (h - 6)) / 2)) / 2;
  return 0;
}

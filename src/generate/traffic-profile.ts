import type { TitleFlavor } from './title-catalog.ts';

/** One customer property's background traffic: id, volume, catalog and steady per-type error ratios. */
export interface PropertyProfile {
  /** Property id as labels carry it (always a string). */
  readonly id: string;
  /** Emit the id as a JSON number, as one real exporter does for property 177. */
  readonly idIsInteger: boolean;
  /** Mean views per hour before the daily cycle and scale. */
  readonly viewsPerHour: number;
  /** Number of distinct titles drawn by Zipf popularity. */
  readonly catalogSize: number;
  readonly flavor: TitleFlavor;
  /** Steady failure ratio per error type, indexed like ERROR_TYPES. */
  readonly baselineRatios: readonly number[];
  /** Hours the property's viewers are ahead of UTC: its daily cycle peaks at 20:00 their time (default 0). */
  readonly utcOffsetHours?: number;
  /** Mobile viewers at night: this error type's ratio is multiplied by `factor` during the local night. */
  readonly nightShift?: { readonly errorIndex: number; readonly factor: number };
}

/** A whole synthetic world: its properties and how strongly traffic follows the time of day. */
export interface TrafficProfile {
  readonly properties: readonly PropertyProfile[];
  /** Daily-cycle amplitude: rates swing between (1 - a) and (1 + a) of their mean. */
  readonly cycleAmplitude: number;
  /** Zipf exponent of title popularity. */
  readonly zipfExponent: number;
}

/** Background traffic at or above this rate is multiplied by `scale`; smaller streams never are. */
export const SCALED_RATE_FLOOR_PER_HOUR = 10_000;

// Baselines total 1-3% per property, except wistia's steady 12% networkError, which is the
// "always high but normal" case a detector must learn instead of paging on.
/** The default profile: five properties from 1k to 1M views/hour. */
export const REALISTIC_PROFILE: TrafficProfile = {
  cycleAmplitude: 0.5,
  zipfExponent: 1,
  properties: [
    { id: '177', idIsInteger: true, viewsPerHour: 1_000_000, catalogSize: 3000, flavor: 'network', baselineRatios: [0.008, 0.002, 0.001, 0.0005, 0.0035] },
    { id: 'pbs', idIsInteger: false, viewsPerHour: 100_000, catalogSize: 1500, flavor: 'documentary', baselineRatios: [0.012, 0.003, 0.002, 0.001, 0.004] },
    { id: 'wistia', idIsInteger: false, viewsPerHour: 50_000, catalogSize: 800, flavor: 'marketing', baselineRatios: [0.12, 0.002, 0.001, 0.0005, 0.003] },
    { id: 'ign', idIsInteger: false, viewsPerHour: 10_000, catalogSize: 400, flavor: 'games', baselineRatios: [0.01, 0.004, 0.003, 0.002, 0.006] },
    { id: 'tiny-blog', idIsInteger: false, viewsPerHour: 1_000, catalogSize: 50, flavor: 'vlog', baselineRatios: [0.015, 0.002, 0.003, 0, 0.005] },
  ],
};

// About 32 views/s in total (26-39 over the day), small catalogs so the top titles are busy enough
// for a title incident to be obvious within a minute or two.
/** The live demo profile used by `vigil run` without configuration. */
export const DEMO_PROFILE: TrafficProfile = {
  cycleAmplitude: 0.2,
  zipfExponent: 1,
  properties: [
    { id: '177', idIsInteger: true, viewsPerHour: 60_000, catalogSize: 200, flavor: 'network', baselineRatios: [0.008, 0.002, 0.001, 0.0005, 0.0035] },
    { id: 'pbs', idIsInteger: false, viewsPerHour: 30_000, catalogSize: 150, flavor: 'documentary', baselineRatios: [0.012, 0.003, 0.002, 0.001, 0.004] },
    { id: 'wistia', idIsInteger: false, viewsPerHour: 18_000, catalogSize: 100, flavor: 'marketing', baselineRatios: [0.12, 0.002, 0.001, 0.0005, 0.003] },
    { id: 'ign', idIsInteger: false, viewsPerHour: 8_000, catalogSize: 80, flavor: 'games', baselineRatios: [0.01, 0.004, 0.003, 0.002, 0.006] },
    { id: 'tiny-blog', idIsInteger: false, viewsPerHour: 1_000, catalogSize: 30, flavor: 'vlog', baselineRatios: [0.015, 0.002, 0.003, 0, 0.005] },
  ],
};

import type { PropertyProfile } from './traffic-profile.ts';
import { buildTitleCatalog } from './title-catalog.ts';
import { Prng } from './prng.ts';
import { ZipfSampler } from './zipf-sampler.ts';

/** A property as one generator run sees it: its profile, its titles and how popular each is. */
export interface PropertyState {
  readonly index: number;
  readonly profile: PropertyProfile;
  /** Catalog titles (most popular first), then special titles that only scheduled incidents use. */
  readonly titles: string[];
  /** Draws ranks over the catalog part of `titles`. */
  readonly sampler: ZipfSampler;
}

// Catalog streams start at 100 so they never collide with the traffic (1) and schedule (2) streams.
const CATALOG_STREAM_BASE = 100;

/** Builds each property's seeded title catalog and popularity sampler. */
export function buildPropertyStates(profiles: readonly PropertyProfile[], seed: number, zipfExponent: number): PropertyState[] {
  return profiles.map((profile, index) => ({
    index,
    profile,
    titles: buildTitleCatalog(profile.flavor, profile.catalogSize, new Prng(seed, CATALOG_STREAM_BASE + index)),
    sampler: new ZipfSampler(profile.catalogSize, zipfExponent),
  }));
}

/** Appends a title that no catalog draw produces (kept distinct from the catalog) and returns its index. */
export function addSpecialTitle(property: PropertyState, title: string): number {
  let unique = title;
  while (property.titles.includes(unique)) unique = `${unique} [archive]`;
  property.titles.push(unique);
  return property.titles.length - 1;
}

/** Finds a property by id, failing loudly when a profile lacks one the schedule relies on. */
export function propertyById(properties: readonly PropertyState[], id: string): PropertyState {
  const found = properties.find((p) => p.profile.id === id);
  if (found === undefined) throw new Error(`profile has no property "${id}"`);
  return found;
}

// Detection parameters live in the state header so a snapshot carries them.
// JS writes them with setParam (src/kernel/detection-params.ts holds names, defaults and validation).
import { HDR, H_PARAMS, H_PROFILE_HWM, hdrI32, setHdrI32 } from './state';

// Global parameters (f64 slots 0..15).
export const P_TICK_MS: i32 = 0;
export const P_OOO_MS: i32 = 1;
export const P_LATE_DROP: i32 = 2;      // 0: count a late event at the current tick, 1: drop it (both counted)
export const P_SWEEP_MS: i32 = 3;
export const P_DEDUP_MS: i32 = 4;       // duplicate views (same property and view id) are dropped within this horizon (0: off)
export const P_DEDUP_VIEWS: i32 = 5;    // views the duplicate filter remembers per horizon (fixed at its first use)
// Per-scope parameters: slot = 16 + scope * SCOPE_FIELDS + field.
export const SCOPE_FIELDS: i32 = 32;
export const S_SLOT_MS: i32 = 0;
export const S_MIN_VIEWS: i32 = 1;
export const S_MIN_FAILURES: i32 = 2;
export const S_Z_OPEN: i32 = 3;
export const S_Z_STRONG: i32 = 4;
export const S_MIN_EFFECT_ABS: i32 = 5;
export const S_MIN_EFFECT_RATIO: i32 = 6;
export const S_RESOLVE_MS: i32 = 7;
export const S_Z_RESOLVE: i32 = 8;
export const S_EXPIRE_MS: i32 = 9;
export const S_IDLE_EVICT_MS: i32 = 10;
export const S_BASELINE_DECAY: i32 = 11;  // multiplier per slot, 2^(-slotMs/halfLife), computed in JS
export const S_WARMUP_VIEWS: i32 = 12;
export const S_PRIOR_VIEWS: i32 = 13;     // title: strength of the pull toward the property baseline
export const S_RESOLVE_VIEWS: i32 = 14;   // the recent window holds at least this many views
// Issue 13 (property scope unless noted; each is off at 0, which is the detector before it):
export const S_BASELINE_Z: i32 = 15;      // z of the Wilson upper bound of the baseline used as the reference
export const S_FAST_DECAY: i32 = 16;      // multiplier per slot of the fast (clipped, never frozen) baseline, computed in JS
export const S_FAST_SHARE: i32 = 17;      // (1 - slow decay) / (1 - fast decay): a new cell's fast views from its key's slow ones
export const S_CUSUM_LOG_LO: i32 = 18;    // ln(c) of the gentle evidence test (c = cusumRatioLow), computed in JS
export const S_CUSUM_STEP_LO: i32 = 19;   // c - 1 of the gentle test
export const S_CUSUM_LOG_HI: i32 = 20;    // ln(c) of the steep evidence test (c = cusumRatioHigh)
export const S_CUSUM_STEP_HI: i32 = 21;   // c - 1 of the steep test
export const S_CUSUM_H: i32 = 22;         // evidence (nats) that opens
export const S_SPAN_GUARD: i32 = 23;      // title: windows stay where the property's figures reach after it was hot
export const S_FAST_RISE: i32 = 24;       // how far the fast level may rise per slot (fastRisePerHour x slot / hour)
export const S_MIN_FAIL_SLOTS: i32 = 25;  // failures in this many distinct slots count as minFailures (0: off)
export const S_RAMP_Z: i32 = 26;          // trend evidence: z of the span's excess over the threshold (0: off)
export const S_RAMP_SLOPE_Z: i32 = 27;    // trend evidence: z of the span's rising slope
export const S_Z_HOT: i32 = 28;           // z of the lower bound that makes a cell hot (its slots stay out of its baseline)

export const SCOPE_PROPERTY: i32 = 0;
export const SCOPE_TITLE: i32 = 1;

@inline export function param(i: i32): f64 { return load<f64>(HDR + H_PARAMS + (<usize>i << 3)); }
@inline export function scopeParam(scope: i32, f: i32): f64 { return param(16 + scope * SCOPE_FIELDS + f); }
/** Event-time ms per count slot of a scope (global geometry, never a profile's). */
@inline export function slotMsOf(scope: i32): i64 { return <i64>scopeParam(scope, S_SLOT_MS); }
/** Sets parameter slot i (global 0..15, scope 16 + scope * SCOPE_FIELDS + field). */
export function setParam(i: i32, v: f64): void { store<f64>(HDR + H_PARAMS + (<usize>i << 3), v); }
/** Fields per scope in a parameter block: JS checks its layout against this at start. */
export function paramScopeFields(): i32 { return SCOPE_FIELDS; }

// Parameter profiles: profile 0 is the global scope parameters above (slots 16..63); profiles
// 1..MAX_PROFILE are one property's (and its titles') parameters, bound to the property's hash.
// Both live in linear memory, so a snapshot carries them. The slot and tick geometry is global.
export const MAX_PROFILE: i32 = 255;
const PROFILE_BYTES: usize = <usize>(2 * SCOPE_FIELDS) << 3;
const PROFILES: usize = memory.data(<i32>(<usize>MAX_PROFILE * PROFILE_BYTES), 16);
const PROFILE_HASH: usize = memory.data((MAX_PROFILE + 1) << 3, 16); // u64 property hash of profile p (0: unbound)

/** Address of profile p's parameter block (scope x SCOPE_FIELDS + field, f64). */
@inline export function profileBase(p: i32): usize {
  return p == 0 ? HDR + H_PARAMS + (16 << 3) : PROFILES + <usize>(p - 1) * PROFILE_BYTES;
}
@inline export function profParam(base: usize, scope: i32, f: i32): f64 {
  return load<f64>(base + (<usize>(scope * SCOPE_FIELDS + f) << 3));
}
/** Sets slot (scope x SCOPE_FIELDS + field) of profile p >= 1. */
export function setProfileParam(p: i32, slot: i32, v: f64): void {
  store<f64>(profileBase(p) + (<usize>slot << 3), v);
}
/** Unbinds every profile (the caller resets the keys' profiles). */
export function clearProfileHashes(): void {
  memory.fill(PROFILE_HASH, 0, <usize>(MAX_PROFILE + 1) << 3);
  setHdrI32(H_PROFILE_HWM, 0);
}
/** Binds profile p to a property hash. */
export function setProfileHash(p: i32, hash: u64): void {
  store<u64>(PROFILE_HASH + (<usize>p << 3), hash);
  if (p > hdrI32(H_PROFILE_HWM)) setHdrI32(H_PROFILE_HWM, p);
}
/** The profile bound to a property hash, 0 (global) when none. */
export function profileOfHash(hash: u64): i32 {
  const hwm = hdrI32(H_PROFILE_HWM);
  for (let p = 1; p <= hwm; p++) if (load<u64>(PROFILE_HASH + (<usize>p << 3)) == hash) return p;
  return 0;
}

// Detection parameters live in the state header so a snapshot carries them.
// JS writes them with setParam (src/kernel/detection-params.ts holds names, defaults and validation).
import { HDR, H_PARAMS } from './state';

// Global parameters (f64 slots 0..15).
export const P_TICK_MS: i32 = 0;
export const P_OOO_MS: i32 = 1;
export const P_LATE_DROP: i32 = 2;      // 0: count a late event at the current tick, 1: drop it (both counted)
export const P_SWEEP_MS: i32 = 3;
// Per-scope parameters: slot = 16 + scope * 24 + field.
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

export const SCOPE_PROPERTY: i32 = 0;
export const SCOPE_TITLE: i32 = 1;

@inline export function param(i: i32): f64 { return load<f64>(HDR + H_PARAMS + (<usize>i << 3)); }
@inline export function scopeParam(scope: i32, f: i32): f64 { return param(16 + scope * 24 + f); }
/** Sets parameter slot i (global 0..15, scope 16 + scope*24 + field). */
export function setParam(i: i32, v: f64): void { store<f64>(HDR + H_PARAMS + (<usize>i << 3), v); }

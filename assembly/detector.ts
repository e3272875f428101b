// Counting per slot, baseline folding, and the per-tick evaluation of cells.
// The statistics are documented in ARCHITECTURE.md ("Detection model"); the
// TypeScript reference model (src/kernel/reference-model.ts) mirrors this file
// step for step, and the differential tests hold them to identical verdicts.
import {
  SLOTS, hdrI32, setHdrI32, hdrPtr, hdrI64, bumpF64,
  H_DIRTY_PTR, H_DIRTY_LEN, H_OPEN_PTR, H_OPEN_LEN, H_KEY_HWM, H_EVICTED, H_CELLS_DROPPED,
} from './state';
import {
  keyPtr, cellPtr, extPtr, findCell, deleteKey, keyParams, markChanged,
  K_HASH, K_PARENT, K_SCOPE, K_DIRTY, headSlot, setHeadSlot, foldedSlot, setFoldedSlot, lastTs, K_BASE_VIEWS,
  K_FIRST_CELL, childCount, addChildren, cellExt, K_RING,
  cellKey, C_NEXT, C_STATUS, C_HOT, C_OWN_VIEWS, O_BASE_VIEWS, cellBaseViews, ownBaseViews, C_BASE_FAILS,
  C_PENDING, C_RING, C_OPEN, O_EVIDENCE, cellEvidence, cellErrHash,
  O_OPEN_POS, O_OPENED_AT, O_CALM_SINCE, O_OPEN_THR, O_IMPACTED, O_OPEN_BASE, openRecordNew,
  X_FAST_VIEWS, X_FAST_FAILS, X_FAST_LEVEL, X_HOT_LAST,
} from './store';
import {
  slotMsOf, profParam, param, P_SWEEP_MS, SCOPE_PROPERTY, SCOPE_TITLE,
  S_MIN_VIEWS, S_MIN_FAILURES, S_Z_OPEN, S_Z_STRONG, S_MIN_EFFECT_ABS,
  S_MIN_EFFECT_RATIO, S_RESOLVE_MS, S_Z_RESOLVE, S_EXPIRE_MS, S_IDLE_EVICT_MS,
  S_BASELINE_DECAY, S_WARMUP_VIEWS, S_PRIOR_VIEWS, S_RESOLVE_VIEWS,
  S_BASELINE_Z, S_FAST_DECAY, S_CUSUM_LOG_LO, S_CUSUM_STEP_LO, S_CUSUM_LOG_HI, S_CUSUM_STEP_HI,
  S_CUSUM_H, S_SPAN_GUARD, S_FAST_RISE, S_MIN_FAIL_SLOTS, S_RAMP_Z, S_RAMP_SLOPE_Z, S_Z_HOT,
} from './params';
import { wilsonUpper, lowerAbove, ZERO_BOUND_ABOVE, powi, floorDiv } from './stats';
import { rget, ringGet, ringZero, ringSettle, ringBase, ringCode, RING_U2 } from './rings';

export const V_OPEN: i32 = 0;
export const V_UPDATE: i32 = 1;
export const V_RESOLVE: i32 = 2;
export const V_EXPIRE: i32 = 3;

// JS receives each verdict as a call: verdicts are rare next to events, and a call
// avoids a bounded output buffer that could overflow in a long gap.
@external("env", "verdict")
declare function emitVerdict(
  kind: i32, scope: i32, key: i32, cell: i32, atMs: f64, errorRatio: f64, threshold: f64,
  baseline: f64, windowViews: f64, windowFailures: f64, spanMs: f64, viewsPerHour: f64,
  impacted: f64, openedAt: f64,
): void;


/**
 * The reference rate a property cell's threshold is built on: the slow baseline, as the Wilson upper
 * bound of its decayed counts at baselineZ (so a short history raises the bar instead of needing a
 * warm-up; the point estimate at 0), raised to the fast level when that is higher, but never past
 * the slow baseline's own threshold (a slow creep can lift the bar by one minimum effect, no more).
 */
export function propertyReference(prm: usize, cp: usize): f64 {
  const nb = load<f64>(<usize>load<u32>(cp + C_OPEN) + O_BASE_VIEWS); // a property cell's are its own (store.ts)
  const xb = load<f64>(cp + C_BASE_FAILS);
  const z = profParam(prm, SCOPE_PROPERTY, S_BASELINE_Z);
  const slow = z > 0 ? wilsonUpper(xb, nb, z) : (nb > 0 ? xb / nb : 0);
  if (profParam(prm, SCOPE_PROPERTY, S_FAST_DECAY) <= 0) return slow;
  let fast = load<f64>(extPtr(cellExt(cp)) + X_FAST_LEVEL);
  const cap = thresholdOf(prm, SCOPE_PROPERTY, slow);
  if (fast > cap) fast = cap;
  return fast > slow ? fast : slow;
}

/** Multiplies every unfrozen baseline of a key by m, and the fast baselines of a property's cells by fm (an empty stretch of slots). */
function decayKey(k: usize, m: f64, fm: f64): void {
  store<f64>(k + K_BASE_VIEWS, load<f64>(k + K_BASE_VIEWS) * m);
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    if (load<u8>(cp + C_HOT) == 0) {
      // Views that are the key's took the key's decay above.
      if (load<u8>(cp + C_OWN_VIEWS) != 0) {
        const op = <usize>load<u32>(cp + C_OPEN);
        store<f64>(op + O_BASE_VIEWS, load<f64>(op + O_BASE_VIEWS) * m);
      }
      store<f64>(cp + C_BASE_FAILS, load<f64>(cp + C_BASE_FAILS) * m);
    }
    if (fm > 0) {
      const xp = extPtr(cellExt(cp));
      store<f64>(xp + X_FAST_VIEWS, load<f64>(xp + X_FAST_VIEWS) * fm);
      store<f64>(xp + X_FAST_FAILS, load<f64>(xp + X_FAST_FAILS) * fm);
    }
    c = load<i32>(cp + C_NEXT);
  }
}

/**
 * Folds one complete slot into the key's and its unfrozen cells' baselines, and (property keys, with
 * fd > 0) into every cell's fast baseline, frozen or not, with the slot's failures clipped at the
 * reference plus the minimum effect; the fast level follows that baseline's rate down at once and up
 * by at most fastRisePerHour. So a sustained moderate shift that builds up over hours (a rate that
 * doubles every night) is learned as it comes, while a ramp or an incident lifts the bar by no more
 * than the rise allows while it is being detected.
 */
function foldSlot(k: usize, slot: i64, d: f64, fd: f64, prm: usize): void {
  const views = <f64>ringGet(k + K_RING, slot);
  store<f64>(k + K_BASE_VIEWS, load<f64>(k + K_BASE_VIEWS) * d + views);
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    const fails = <f64>ringGet(cp + C_RING, slot);
    let clipped: f64 = 0;
    if (fd > 0) {
      let clip = propertyReference(prm, cp) + profParam(prm, SCOPE_PROPERTY, S_MIN_EFFECT_ABS);
      if (clip > 1) clip = 1;
      const ceiling = views * clip;
      clipped = fails < ceiling ? fails : ceiling;
    }
    if (load<u8>(cp + C_HOT) == 0) {
      // Views that are the key's took the key's fold above.
      if (load<u8>(cp + C_OWN_VIEWS) != 0) {
        const op = <usize>load<u32>(cp + C_OPEN);
        store<f64>(op + O_BASE_VIEWS, load<f64>(op + O_BASE_VIEWS) * d + views);
      }
      store<f64>(cp + C_BASE_FAILS, load<f64>(cp + C_BASE_FAILS) * d + fails);
    }
    if (fd > 0) {
      const xp = extPtr(cellExt(cp));
      const fv = load<f64>(xp + X_FAST_VIEWS) * fd + views;
      const ff = load<f64>(xp + X_FAST_FAILS) * fd + clipped;
      store<f64>(xp + X_FAST_VIEWS, fv);
      store<f64>(xp + X_FAST_FAILS, ff);
      const target = fv > 0 ? ff / fv : 0;
      const most = load<f64>(xp + X_FAST_LEVEL) + profParam(prm, SCOPE_PROPERTY, S_FAST_RISE);
      store<f64>(xp + X_FAST_LEVEL, target < most ? target : most);
    }
    c = load<i32>(cp + C_NEXT);
  }
}

/** Folds every slot up to and including `upto` that is not folded yet. */
export function foldTo(key: i32, upto: i64): void {
  const k = keyPtr(key);
  const folded = foldedSlot(k);
  if (upto <= folded) return;
  const scope = <i32>load<u8>(k + K_SCOPE);
  const prm = keyParams(k);
  const d = profParam(prm, scope, S_BASELINE_DECAY);
  const fd = scope == SCOPE_PROPERTY ? profParam(prm, SCOPE_PROPERTY, S_FAST_DECAY) : 0;
  const head = headSlot(k);
  const lo = head - <i64>SLOTS + 1;
  let s = folded + 1;
  while (s <= upto) {
    if (s < lo || s > head) {
      const e = s < lo ? (upto < lo - 1 ? upto : lo - 1) : upto;
      decayKey(k, powi(d, e - s + 1), fd > 0 ? powi(fd, e - s + 1) : 0);
      s = e + 1;
    } else {
      foldSlot(k, s, d, fd, prm);
      s++;
    }
  }
  setFoldedSlot(k, upto);
}

/** Moves a key's ring, whose head slot is `head`, so that `slot` is in it, folding slots before they are overwritten. */
export function rotateTo(key: i32, slot: i64, head: i64): i64 {
  const k = keyPtr(key);
  if (head < 0) {
    setHeadSlot(k, slot);
    setFoldedSlot(k, slot - 1);
    return slot;
  }
  if (slot > head) {
    foldTo(key, slot - <i64>SLOTS);
    const from = slot - head > <i64>SLOTS ? slot - <i64>SLOTS + 1 : head + 1;
    for (let s = from; s <= slot; s++) {
      ringZero(k + K_RING, s);
      let c = load<i32>(k + K_FIRST_CELL);
      while (c >= 0) {
        const cp = cellPtr(c);
        ringZero(cp + C_RING, s);
        c = load<i32>(cp + C_NEXT);
      }
    }
    setHeadSlot(k, slot);
    // Rings widened by a busy stretch narrow to what their counts need once it has left them. A
    // wide ring (u8 and up) belongs to a key that counted 4 or more in a slot of its ring: 32 reads
    // when it moves to a new slot are little next to that; a u2 ring costs a test.
    settleRings(k);
    return slot;
  }
  const oldest = head - <i64>SLOTS + 1;
  return slot < oldest ? oldest : slot;
}

/** Narrows the rings of a key and its cells to the width their counts need (rings.ts). */
function settleRings(k: usize): void {
  ringSettle(k + K_RING);
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    ringSettle(cp + C_RING);
    c = load<i32>(cp + C_NEXT);
  }
}

/** Appends a key to the dirty list once per tick. */
@inline export function markDirty(key: i32, k: usize): void {
  // Changed since the last export even when already dirty (an export may have come in between).
  markChanged(key);
  if (load<u8>(k + K_DIRTY) != 0) return;
  store<u8>(k + K_DIRTY, 1);
  const len = hdrI32(H_DIRTY_LEN);
  store<i32>(hdrPtr(H_DIRTY_PTR) + (<usize>len << 2), key);
  setHdrI32(H_DIRTY_LEN, len + 1);
}

// Transient outputs of windowsOf (globals: never part of the state): the window, then the recent window.
export let wViews: f64 = 0;
export let wFails: f64 = 0;
export let wOldest: i64 = 0;
export let wFailSlots: i32 = 0;
export let rViews: f64 = 0;
export let rFails: f64 = 0;
export let rOldest: i64 = 0;
export let rFailSlots: i32 = 0;

/**
 * A cell's two windows in one pass: slots summed from the head back, after the evidence mark and from
 * `notBefore` on. The window ends at the first slot where it holds `minViews` views; the recent window
 * at the first slot from `recentFrom` back where it holds `recentViews`; either ends at the oldest slot
 * otherwise. Each is what a scan of its own would give (the same additions in the same order).
 */
export function windowsOf(k: usize, cp: usize, minViews: f64, recentViews: f64, notBefore: i64, recentFrom: i64): void {
  const head = headSlot(k);
  const evidence = cellEvidence(cp);
  let lo = head - <i64>SLOTS + 1;
  if (lo <= evidence) lo = evidence + 1;
  if (lo < notBefore) lo = notBefore;
  let n: f64 = 0;
  let x: f64 = 0;
  let failSlots: i32 = 0;
  let s = head;
  let wDone = false;
  let rDone = false;
  let wLast = head;
  let rLast = head;
  const kc = ringCode(k + K_RING);
  const kb = ringBase(k + K_RING, kc);
  const cc = ringCode(cp + C_RING);
  const cb = ringBase(cp + C_RING, cc);
  while (s >= lo) {
    n += <f64>rget(kb, kc, s);
    const f = rget(cb, cc, s);
    x += <f64>f;
    if (f != 0) failSlots++;
    if (!wDone) {
      wLast = s;
      if (n >= minViews) { wDone = true; wViews = n; wFails = x; wOldest = s; wFailSlots = failSlots; }
    }
    if (!rDone) {
      rLast = s;
      if (s <= recentFrom && n >= recentViews) { rDone = true; rViews = n; rFails = x; rOldest = s; rFailSlots = failSlots; }
    }
    if (wDone && rDone) break;
    s--;
  }
  if (!wDone) { wViews = n; wFails = x; wOldest = wLast; wFailSlots = failSlots; }
  if (!rDone) { rViews = n; rFails = x; rOldest = rLast; rFailSlots = failSlots; }
}

// The title pass's cache of property figures. While titles are evaluated (evaluateTick's dirty titles,
// then its open titles) no property key or cell changes, and every title cell of a property reads the
// same property cell's figures: its reference rate and its failures / views over spans ending at the
// head. A property cell's entry holds the reference (per parameter profile) and the running sums from
// the head back, added in the order spanRatio adds them, so a span's ratio is the same f64 as a scan
// would give. An entry is valid for one pass (pcEpoch; 0 outside the passes: no caching, e.g. a dump).
const PC_ENTRIES: i32 = 64;
const PC_ENTRY_BYTES: usize = 40 + 16 * <usize>SLOTS;
const PC_CACHE: usize = memory.data(<i32>PC_ENTRY_BYTES * PC_ENTRIES, 16);
// Entry: cell index i32, epoch i32, profile usize (as u64), head i64, reference f64, sums filled u32
// (+ pad), then SLOTS views sums and SLOTS failures sums (f64).
const PCE_CELL: usize = 0;
const PCE_EPOCH: usize = 4;
const PCE_PRM: usize = 8;
const PCE_HEAD: usize = 16;
const PCE_REF: usize = 24;
const PCE_FILLED: usize = 32;
const PCE_N: usize = 40;
const PCE_X: usize = 40 + 8 * <usize>SLOTS;
let pcEpoch: i32 = 0;
let pcEpochNext: i32 = 0;

/** Starts a title pass: what the cache holds from before is stale. */
function titlePassBegin(): void {
  pcEpochNext++;
  if (pcEpochNext <= 0) {
    memory.fill(PC_CACHE, 0, PC_ENTRY_BYTES * <usize>PC_ENTRIES);
    pcEpochNext = 1;
  }
  pcEpoch = pcEpochNext;
}

@inline function titlePassEnd(): void { pcEpoch = 0; }

/** The cache entry of property cell `pc` (its key `pk`) for this pass and profile, reset if it held another. */
function pcEntry(pc: i32, pk: usize, prm: usize): usize {
  const e = PC_CACHE + <usize>(pc & (PC_ENTRIES - 1)) * PC_ENTRY_BYTES;
  const head = headSlot(pk);
  if (load<i32>(e + PCE_CELL) != pc || load<i32>(e + PCE_EPOCH) != pcEpoch || load<u64>(e + PCE_PRM) != <u64>prm || load<i64>(e + PCE_HEAD) != head) {
    store<i32>(e + PCE_CELL, pc);
    store<i32>(e + PCE_EPOCH, pcEpoch);
    store<u64>(e + PCE_PRM, <u64>prm);
    store<i64>(e + PCE_HEAD, head);
    store<f64>(e + PCE_REF, propertyReference(prm, cellPtr(pc)));
    store<u32>(e + PCE_FILLED, 0);
  }
  return e;
}

/** spanRatio of property cell `pc` through its cache entry `e` (the sums from the head back, filled as far as asked). */
function cachedSpanRatio(e: usize, pk: usize, pcp: usize, fromSlot: i64): f64 {
  const head = headSlot(pk);
  let lo = head - <i64>SLOTS + 1;
  if (lo < fromSlot) lo = fromSlot;
  if (lo > head) return 0;
  const need = <u32>(head - lo) + 1;
  let filled = load<u32>(e + PCE_FILLED);
  if (filled < need) {
    const kc = ringCode(pk + K_RING);
    const kb = ringBase(pk + K_RING, kc);
    const cc = ringCode(pcp + C_RING);
    const cb = ringBase(pcp + C_RING, cc);
    let n: f64 = filled > 0 ? load<f64>(e + PCE_N + ((<usize>filled - 1) << 3)) : 0;
    let x: f64 = filled > 0 ? load<f64>(e + PCE_X + ((<usize>filled - 1) << 3)) : 0;
    for (; filled < need; filled++) {
      const s = head - <i64>filled;
      n += <f64>rget(kb, kc, s);
      x += <f64>rget(cb, cc, s);
      store<f64>(e + PCE_N + (<usize>filled << 3), n);
      store<f64>(e + PCE_X + (<usize>filled << 3), x);
    }
    store<u32>(e + PCE_FILLED, filled);
  }
  const n = load<f64>(e + PCE_N + ((<usize>need - 1) << 3));
  const x = load<f64>(e + PCE_X + ((<usize>need - 1) << 3));
  return n > 0 ? x / n : 0;
}

/** Failures / views of a key's cell over its ring slots from `fromSlot` to the head (0 without views). */
export function spanRatio(k: usize, cp: usize, fromSlot: i64): f64 {
  const head = headSlot(k);
  let lo = head - <i64>SLOTS + 1;
  if (lo < fromSlot) lo = fromSlot;
  let n: f64 = 0;
  let x: f64 = 0;
  const kc = ringCode(k + K_RING);
  const kb = ringBase(k + K_RING, kc);
  const cc = ringCode(cp + C_RING);
  const cb = ringBase(cp + C_RING, cc);
  for (let s = head; s >= lo; s--) {
    n += <f64>rget(kb, kc, s);
    x += <f64>rget(cb, cc, s);
  }
  return n > 0 ? x / n : 0;
}

/** Appends cell `c` (its incident record `op`) to the open list. */
export function addOpen(c: i32, op: usize): void {
  const len = hdrI32(H_OPEN_LEN);
  store<i32>(hdrPtr(H_OPEN_PTR) + (<usize>len << 2), c);
  store<i32>(op + O_OPEN_POS, len);
  setHdrI32(H_OPEN_LEN, len + 1);
}

function removeOpen(op: usize): void {
  const pos = load<i32>(op + O_OPEN_POS);
  const len = hdrI32(H_OPEN_LEN) - 1;
  const arr = hdrPtr(H_OPEN_PTR);
  const last = load<i32>(arr + (<usize>len << 2));
  store<i32>(arr + (<usize>pos << 2), last);
  store<i32>(<usize>load<u32>(cellPtr(last) + C_OPEN) + O_OPEN_POS, pos);
  store<i32>(op + O_OPEN_POS, -1);
  setHdrI32(H_OPEN_LEN, len);
}

/** The threshold of minimum effect over a reference rate: max(ref + abs, ref x ratio), at most 1. */
export function thresholdOf(prm: usize, scope: i32, reference: f64): f64 {
  const absThr = reference + profParam(prm, scope, S_MIN_EFFECT_ABS);
  const relThr = reference * profParam(prm, scope, S_MIN_EFFECT_RATIO);
  const thr = absThr > relThr ? absThr : relThr;
  return thr > 1 ? 1 : thr;
}

// Transient outputs of cellFigures (globals: never part of the state).
export let fN: f64 = 0;
export let fX: f64 = 0;
export let fOldest: i64 = 0;
export let fSpanMs: f64 = 0;
export let fFailSlots: i32 = 0;
export let fRN: f64 = 0;
export let fRX: f64 = 0;
export let fRFailSlots: i32 = 0;
export let fROldest: i64 = 0;
export let fRSpanMs: f64 = 0;
export let fBase: f64 = 0;
export let fWarm: bool = false;
export let fThr: f64 = 0;
export let fRecentThr: f64 = 0;

/**
 * A cell's figures at tick `t` without side effects: its window, its recent window, its
 * baseline, whether its key is warm, and the threshold each window must clear. Shared by the
 * evaluation and the dump, so a dump shows exactly what the detector decides on.
 */
export function cellFigures(cp: usize, k: usize, t: i64): void {
  cellWindows(cp, k, t);
  cellReference(cp, k);
}

// Transient, from cellWindows to cellReference: a title cell's property key and property cell (-1 none).
let fParent: i32 = -1;
let fPc: i32 = -1;

/** The first half of cellFigures: the cell's window and recent window (fN ... fRSpanMs). */
function cellWindows(cp: usize, k: usize, t: i64): void {
  const scope = <i32>load<u8>(k + K_SCOPE);
  const slotMs = slotMsOf(scope);
  const prm = keyParams(k);

  // A title's evidence never reaches back into an incident of its property for the same
  // error: those failures were the property's, and it has resolved since.
  let notBefore: i64 = <i64>-0x7fffffffffffffff;
  let pc: i32 = -1;
  let parent: i32 = -1;
  if (scope == SCOPE_TITLE) {
    parent = load<i32>(k + K_PARENT);
    pc = findCell(parent, cellErrHash(cp));
    if (pc >= 0) {
      const pcp = cellPtr(pc);
      const pSlotMs = slotMsOf(SCOPE_PROPERTY);
      const pe = cellEvidence(pcp);
      if (pe >= 0) notBefore = floorDiv((pe + 1) * pSlotMs + slotMs - 1, slotMs);
      // Nor into a stretch where the property was hot and that its ring no longer holds: the title
      // would be compared with the property's figures after it (a title storm after a long outage).
      // While the property was hot within its ring, the title looks no further back than that ring.
      if (profParam(prm, SCOPE_TITLE, S_SPAN_GUARD) > 0) {
        const hotLast = load<i64>(extPtr(cellExt(pcp)) + X_HOT_LAST);
        if (hotLast >= 0) {
          const ringLo = headSlot(keyPtr(parent)) - <i64>SLOTS + 1;
          const from = hotLast >= ringLo ? ringLo : hotLast + 1;
          const nb = floorDiv(from * pSlotMs + slotMs - 1, slotMs);
          if (nb > notBefore) notBefore = nb;
        }
      }
    }
  }

  const resolveMs = <i64>profParam(prm, scope, S_RESOLVE_MS);
  windowsOf(k, cp, profParam(prm, scope, S_MIN_VIEWS), profParam(prm, scope, S_RESOLVE_VIEWS), notBefore, floorDiv(t - resolveMs, slotMs));
  fN = wViews;
  fX = wFails;
  fOldest = wOldest;
  fFailSlots = wFailSlots;
  let spanMs = <f64>(t - fOldest * slotMs);
  if (spanMs < 1) spanMs = 1;
  fSpanMs = spanMs;

  fRN = rViews;
  fRX = rFails;
  fROldest = rOldest;
  fRFailSlots = rFailSlots;
  let rSpanMs = <f64>(t - fROldest * slotMs);
  if (rSpanMs < 1) rSpanMs = 1;
  fRSpanMs = rSpanMs;
  fParent = parent;
  fPc = pc;
}

/** The second half of cellFigures, after cellWindows: the baseline, warmth and both thresholds (fBase ... fRecentThr). */
function cellReference(cp: usize, k: usize): void {
  const scope = <i32>load<u8>(k + K_SCOPE);
  const slotMs = slotMsOf(scope);
  const prm = keyParams(k);
  const parent = fParent;
  const pc = fPc;

  // Baseline: the cell's own history; a title is pulled toward its property's rate
  // and must beat what its property did over the same span (each window is compared
  // with its own span), so a property-wide outage opens one property incident, not one per title.
  let base: f64 = 0;
  let warm = false;
  let reference: f64 = 0;
  let recentReference: f64 = 0;
  if (scope == SCOPE_PROPERTY) {
    base = propertyReference(prm, cp);
    warm = load<f64>(k + K_BASE_VIEWS) >= profParam(prm, SCOPE_PROPERTY, S_WARMUP_VIEWS);
    reference = base;
    recentReference = base;
  } else {
    const nb = cellBaseViews(cp, k);
    const xb = load<f64>(cp + C_BASE_FAILS);
    const pk = keyPtr(parent);
    let parentBase: f64 = 0;
    let parentRatio: f64 = 0;
    let parentRecentRatio: f64 = 0;
    if (pc >= 0) {
      const pcp = cellPtr(pc);
      const pSlotMs = slotMsOf(SCOPE_PROPERTY);
      if (pcEpoch != 0) {
        const e = pcEntry(pc, pk, prm);
        parentBase = load<f64>(e + PCE_REF);
        parentRatio = cachedSpanRatio(e, pk, pcp, floorDiv(fOldest * slotMs, pSlotMs));
        parentRecentRatio = cachedSpanRatio(e, pk, pcp, floorDiv(fROldest * slotMs, pSlotMs));
      } else {
        parentBase = propertyReference(prm, pcp);
        parentRatio = spanRatio(pk, pcp, floorDiv(fOldest * slotMs, pSlotMs));
        parentRecentRatio = spanRatio(pk, pcp, floorDiv(fROldest * slotMs, pSlotMs));
      }
    }
    const prior = profParam(prm, SCOPE_TITLE, S_PRIOR_VIEWS);
    base = (xb + prior * parentBase) / (nb + prior);
    warm = load<f64>(pk + K_BASE_VIEWS) >= profParam(prm, SCOPE_PROPERTY, S_WARMUP_VIEWS);
    reference = base > parentRatio ? base : parentRatio;
    recentReference = base > parentRecentRatio ? base : parentRecentRatio;
  }
  fBase = base;
  fWarm = warm;
  fThr = thresholdOf(prm, scope, reference);
  fRecentThr = thresholdOf(prm, scope, recentReference);
}

/** What evaluating a closed cell that is neither suspect nor hot stores (evalCell's shortcuts). */
@inline function settleQuiet(cp: usize): void {
  store<u8>(cp + C_HOT, 0);
  store<i32>(cp + C_PENDING, 0);
}

/** Evaluates cell `c` of key `key` at tick boundary `t` and emits its verdict, if any. */
export function evalCell(c: i32, key: i32, t: i64): void {
  const cp = cellPtr(c);
  const k = keyPtr(key);
  const scope = <i32>load<u8>(k + K_SCOPE);
  const prm = keyParams(k);
  // A closed cell whose ring holds no failure (a u2 ring in its record, its 8 bytes 0; a fifth of the
  // cells evaluated on a realistic day, titles whose failures have left their ring): every window has
  // x = 0, so every Wilson lower bound is 0 (or within 1e-15 of it), below a threshold of at least
  // minEffectAbs; the cell is neither suspect nor hot and cannot open. What the evaluation would store:
  if (load<u8>(cp + C_STATUS) == 0 && ringCode(cp + C_RING) == RING_U2 && load<u64>(cp + C_RING) == 0
    && profParam(prm, scope, S_MIN_EFFECT_ABS) >= ZERO_BOUND_ABOVE) {
    settleQuiet(cp);
    return;
  }
  const minViews = profParam(prm, scope, S_MIN_VIEWS);
  const resolveMs = <i64>profParam(prm, scope, S_RESOLVE_MS);

  cellWindows(cp, k, t);
  // A closed title cell whose windows fail at a rate of at most minEffectAbs (most of them: a title
  // failing now and then) needs no reference: every threshold is at least min(minEffectAbs, 1) (the
  // reference is a rate, >= 0), and a Wilson bound is above a threshold only when the rate is (or, at
  // x = 0, when the threshold is below ZERO_BOUND_ABOVE), so the cell is neither suspect nor hot and
  // cannot open (a title has no evidence test). What the evaluation would store:
  if (scope == SCOPE_TITLE && load<u8>(cp + C_STATUS) == 0) {
    let floor = profParam(prm, scope, S_MIN_EFFECT_ABS);
    if (floor > 1) floor = 1;
    if (floor >= ZERO_BOUND_ABOVE && (fX == 0 || fX / fN <= floor) && (fRX == 0 || fRX / fRN <= floor)) {
      settleQuiet(cp);
      return;
    }
  }
  cellReference(cp, k);
  const n = fN;
  const x = fX;
  const ratio = n > 0 ? x / n : 0;
  const spanMs = fSpanMs;
  const viewsPerHour = n * 3600000 / spanMs;
  const rn = fRN;
  const rx = fRX;
  const rRatio = rn > 0 ? rx / rn : 0;
  const rSpanMs = fRSpanMs;
  const rViewsPerHour = rn * 3600000 / rSpanMs;
  const base = fBase;
  const warm = fWarm;
  const thr = fThr;
  const recentThr = fRecentThr;

  const status = load<u8>(cp + C_STATUS);
  if (status == 0) {
    store<i32>(cp + C_PENDING, 0);
    const zOpen = profParam(prm, scope, S_Z_OPEN);
    const zStrong = profParam(prm, scope, S_Z_STRONG);
    const minFailures = profParam(prm, scope, S_MIN_FAILURES);
    const minFailSlots = <i32>profParam(prm, scope, S_MIN_FAIL_SLOTS);
    const suspect = lowerAbove(x, n, zOpen, thr);
    const recentSuspect = lowerAbove(rx, rn, zOpen, recentThr);
    // Hot cells keep their slots out of the baseline: the onset of an incident must not
    // raise the bar it has to clear. Not before warm-up ends, or a cold baseline would
    // freeze at its first failures.
    // A lower z than opening's (zHot): a tiny property's first failures are thin evidence, and folded
    // into its thin history they lifted the bar past what its whole ring could ever prove.
    const zHot = profParam(prm, scope, S_Z_HOT);
    let hot = warm && (suspect || recentSuspect
      || (zHot < zOpen && (lowerAbove(x, n, zHot, thr) || lowerAbove(rx, rn, zHot, recentThr))));
    // A frozen baseline's views are the cell's own (store.ts cellBaseViews). No memory for the record
    // that keeps them (never within the caps, which are sized for cells with one): the cell counts as
    // one the kernel could not track, and its baseline goes on learning.
    if (hot && !ownBaseViews(cp, k)) { bumpF64(H_CELLS_DROPPED, 1); hot = false; }
    store<u8>(cp + C_HOT, hot ? 1 : 0);
    if (hot) noteHot(k, cp);
    if (!warm) return;
    // Enough failures: minFailures, or failures in minFailSlots distinct slots (a tiny property failing
    // all the time never collects many in a ring, and a burst of retries lands in one or two slots).
    const byWindow = suspect && (x >= minFailures || (minFailSlots > 0 && fFailSlots >= minFailSlots))
      && (n >= minViews || lowerAbove(x, n, zStrong, thr));
    // Overwhelming evidence in the recent window opens without waiting for the window to fill with it.
    const byRecent = (rx >= minFailures || (minFailSlots > 0 && fRFailSlots >= minFailSlots)) && lowerAbove(rx, rn, zStrong, recentThr);
    // Evidence accumulated over time (property cells): a moderate rise that no single window proves.
    const byEvidence = !byWindow && !byRecent && scope == SCOPE_PROPERTY && evidenceScan(k, cp, prm, thr, minFailures, t);
    if (!byWindow && !byRecent && !byEvidence) return;
    let op = <usize>load<u32>(cp + C_OPEN);
    if (op == 0) {
      // No memory for the incident's record (never within the caps, which are sized for cells with
      // one): the cell stays closed and counts as a cell the kernel could not track.
      op = openRecordNew();
      if (op == 0) { bumpF64(H_CELLS_DROPPED, 1); return; }
      store<u32>(cp + C_OPEN, <u32>op);
    }
    ownBaseViews(cp, k); // the record is had: cannot fail
    store<u8>(cp + C_HOT, 1);
    noteHot(k, cp);
    store<u8>(cp + C_STATUS, 1);
    store<i64>(op + O_OPENED_AT, t);
    store<f64>(op + O_OPEN_THR, byRecent && !byWindow ? recentThr : thr);
    store<f64>(op + O_OPEN_BASE, base);
    store<i64>(op + O_CALM_SINCE, -1);
    addOpen(c, op);
    if (byWindow) {
      store<f64>(op + O_IMPACTED, x);
      emitVerdict(V_OPEN, scope, key, c, <f64>t, ratio, thr, base, n, x, spanMs, viewsPerHour, x, <f64>t);
    } else if (byRecent) {
      store<f64>(op + O_IMPACTED, rx);
      emitVerdict(V_OPEN, scope, key, c, <f64>t, rRatio, recentThr, base, rn, rx, rSpanMs, rViewsPerHour, rx, <f64>t);
    } else {
      let eSpanMs = <f64>(t - eOldest * slotMsOf(scope));
      if (eSpanMs < 1) eSpanMs = 1;
      store<f64>(op + O_IMPACTED, eFails);
      emitVerdict(V_OPEN, scope, key, c, <f64>t, eFails / eViews, thr, base, eViews, eFails, eSpanMs, eViews * 3600000 / eSpanMs, eFails, <f64>t);
    }
    return;
  }

  // Open: accumulate impact, then expire, resolve or report current (recent) figures.
  const op = <usize>load<u32>(cp + C_OPEN);
  const impacted = load<f64>(op + O_IMPACTED) + <f64>load<i32>(cp + C_PENDING);
  store<f64>(op + O_IMPACTED, impacted);
  store<i32>(cp + C_PENDING, 0);
  const openThr = load<f64>(op + O_OPEN_THR);
  const openBase = load<f64>(op + O_OPEN_BASE);
  const openedAt = <f64>load<i64>(op + O_OPENED_AT);
  if (scope == SCOPE_PROPERTY) noteHot(k, cp);
  let kind = V_UPDATE;
  if (t - lastTs(k) >= <i64>profParam(prm, scope, S_EXPIRE_MS)) {
    kind = V_EXPIRE;
  } else {
    // With the fast baseline the bar can move during an incident: a shift that has become the normal
    // (mobile viewers every night) resolves once the bar has caught up, instead of staying open all night.
    let calmThr = openThr;
    if (scope == SCOPE_PROPERTY && profParam(prm, SCOPE_PROPERTY, S_FAST_DECAY) > 0 && recentThr > calmThr) calmThr = recentThr;
    const calm = rn > 0 && wilsonUpper(rx, rn, profParam(prm, scope, S_Z_RESOLVE)) < calmThr;
    if (calm) {
      let since = load<i64>(op + O_CALM_SINCE);
      if (since < 0) { since = t; store<i64>(op + O_CALM_SINCE, t); }
      if (t - since >= resolveMs) kind = V_RESOLVE;
    } else {
      store<i64>(op + O_CALM_SINCE, -1);
    }
  }
  if (kind != V_UPDATE) {
    store<u8>(cp + C_STATUS, 0);
    store<u8>(cp + C_HOT, 0);
    store<i64>(op + O_EVIDENCE, headSlot(k));
    removeOpen(op);
  }
  emitVerdict(kind, scope, key, c, <f64>t, rRatio, openThr, openBase, rn, rx, rSpanMs, rViewsPerHour, impacted, openedAt);
}

/** Remembers that a property cell is hot at its key's newest slot (titles keep their windows out of such stretches). */
@inline function noteHot(k: usize, cp: usize): void {
  const ext = cellExt(cp);
  if (ext >= 0) store<i64>(extPtr(ext) + X_HOT_LAST, headSlot(k));
}

// Transient outputs of evidenceScan (globals: never part of the state).
export let eViews: f64 = 0;
export let eFails: f64 = 0;
export let eOldest: i64 = 0;

/**
 * Sequential evidence (a CUSUM restricted to the ring): for every span of slots ending at the head
 * (after the evidence mark) the log-likelihood ratio of "failures at c x thr" against "failures at
 * thr", Poisson form x ln c - n thr (c - 1), for a gentle c (a rate creeping past the bar) and a
 * steep one (a jump); the maximum over spans is exactly the CUSUM statistic started at the ring's
 * oldest slot. True when it exceeds cusumThreshold nats on a span with at least minFailures failures;
 * that span's figures are left in eViews/eFails/eOldest. ln c is computed in JS, so this stays + - x /.
 * Only complete slots (before tick t's slot): what a slot holds once it is over does not depend on
 * how records arrived (a replay, or partitions read as a backlog), so neither does this test.
 */
function evidenceScan(k: usize, cp: usize, prm: usize, thr: f64, minFailures: f64, t: i64): bool {
  let h = profParam(prm, SCOPE_PROPERTY, S_CUSUM_H);
  const zr = profParam(prm, SCOPE_PROPERTY, S_RAMP_Z);
  if ((h <= 0 && zr <= 0) || thr >= 1) return false;
  if (h <= 0) h = f64.MAX_VALUE;
  const logLo = profParam(prm, SCOPE_PROPERTY, S_CUSUM_LOG_LO);
  const costLo = thr * profParam(prm, SCOPE_PROPERTY, S_CUSUM_STEP_LO);
  const logHi = profParam(prm, SCOPE_PROPERTY, S_CUSUM_LOG_HI);
  const costHi = thr * profParam(prm, SCOPE_PROPERTY, S_CUSUM_STEP_HI);
  // Trend evidence: squared z's, and the binomial variance per view at the threshold.
  const zr2 = zr * zr;
  const zs = profParam(prm, SCOPE_PROPERTY, S_RAMP_SLOPE_Z);
  const zs2 = zs * zs;
  const v = thr * (1 - thr);
  const head = headSlot(k);
  const evidence = cellEvidence(cp);
  let lo = head - <i64>SLOTS + 1;
  if (lo <= evidence) lo = evidence + 1;
  let last = floorDiv(t, slotMsOf(SCOPE_PROPERTY)) - 1;
  if (last > head) last = head;
  let n: f64 = 0;
  let x: f64 = 0;
  // Sums over the span by age a (slots before the newest complete one): views x a, views x a^2, failures x a.
  let na: f64 = 0;
  let na2: f64 = 0;
  let xa: f64 = 0;
  let age: f64 = 0;
  // The span's slot with the most failures (its failures and views): trend evidence must hold without it.
  let mx: f64 = 0;
  let mn: f64 = 0;
  let failSlots: i32 = 0;
  const minFailSlots = <i32>profParam(prm, SCOPE_PROPERTY, S_MIN_FAIL_SLOTS);
  let best: f64 = h;
  let found = false;
  const kc = ringCode(k + K_RING);
  const kb = ringBase(k + K_RING, kc);
  const cc = ringCode(cp + C_RING);
  const cb = ringBase(cp + C_RING, cc);
  for (let s = last; s >= lo; s--) {
    const sn = <f64>rget(kb, kc, s);
    const sx = <f64>rget(cb, cc, s);
    n += sn;
    x += sx;
    na += sn * age;
    na2 += sn * age * age;
    xa += sx * age;
    age += 1;
    if (sx > mx) { mx = sx; mn = sn; }
    if (sx > 0) failSlots++;
    if (x < minFailures) continue;
    const gLo = x * logLo - n * costLo;
    const gHi = x * logHi - n * costHi;
    const g = gLo > gHi ? gLo : gHi;
    if (g > best) {
      best = g;
      found = true;
      eViews = n;
      eFails = x;
      eOldest = s;
    }
    // A rate rising through the bar: the span's failures exceed the threshold at zr, they fall in at
    // least minFailingSlots slots and the span without its slot of most failures is still above the
    // threshold (a burst of retries lands in one slot), and the failure ratio rises over the span
    // (weighted least-squares slope against age, negative when rising) at zs.
    if (!found && zr > 0 && failSlots >= minFailSlots) {
      const e = x - n * thr;
      const e1 = (x - mx) - (n - mn) * thr;
      if (e > 0 && e * e > zr2 * n * v && e1 > 0 && e1 * e1 > zs2 * (n - mn) * v) {
        const sxx = na2 - na * na / n;
        const sxy = xa - na * x / n;
        if (sxx > 0 && sxy < 0 && sxy * sxy > zs2 * v * sxx) {
          found = true;
          eViews = n;
          eFails = x;
          eOldest = s;
        }
      }
    }
  }
  return found;
}

function evalKey(key: i32, t: i64): void {
  const k = keyPtr(key);
  markChanged(key);
  const scope = <i32>load<u8>(k + K_SCOPE);
  foldTo(key, floorDiv(t, slotMsOf(scope)) - 1);
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    const next = load<i32>(cp + C_NEXT);
    evalCell(c, key, t);
    c = next;
  }
}

/** Evaluates tick boundary t: dirty properties, then dirty titles, then open cells not yet seen; sweeps on sweep boundaries. */
export function evaluateTick(t: i64): void {
  const dirty = hdrPtr(H_DIRTY_PTR);
  const dlen = hdrI32(H_DIRTY_LEN);
  for (let i = 0; i < dlen; i++) {
    const key = load<i32>(dirty + (<usize>i << 2));
    if (load<u8>(keyPtr(key) + K_SCOPE) == <u8>SCOPE_PROPERTY) evalKey(key, t);
  }
  titlePassBegin();
  for (let i = 0; i < dlen; i++) {
    const key = load<i32>(dirty + (<usize>i << 2));
    if (load<u8>(keyPtr(key) + K_SCOPE) == <u8>SCOPE_TITLE) evalKey(key, t);
  }
  titlePassEnd();
  // Open cells without traffic this tick still age toward resolve or expiry: those of keys that are
  // not dirty (a dirty key's cells were all evaluated above; the flags go once the open cells are done).
  // Properties first: a title's threshold reads its property's figures.
  evalOpen(t, SCOPE_PROPERTY);
  titlePassBegin();
  evalOpen(t, SCOPE_TITLE);
  titlePassEnd();
  for (let i = 0; i < dlen; i++) store<u8>(keyPtr(load<i32>(dirty + (<usize>i << 2))) + K_DIRTY, 0);
  setHdrI32(H_DIRTY_LEN, 0);
  const sweepMs = <i64>param(P_SWEEP_MS);
  if (t % sweepMs == 0) sweep(t);
}

function evalOpen(t: i64, scope: i32): void {
  const open = hdrPtr(H_OPEN_PTR);
  for (let i = hdrI32(H_OPEN_LEN) - 1; i >= 0; i--) {
    const c = load<i32>(open + (<usize>i << 2));
    const cp = cellPtr(c);
    const key = cellKey(cp);
    const k = keyPtr(key);
    if (<i32>load<u8>(k + K_SCOPE) != scope || load<u8>(k + K_DIRTY) != 0) continue;
    markChanged(key);
    foldTo(key, floorDiv(t, slotMsOf(scope)) - 1);
    evalCell(c, key, t);
  }
}

function keyHasOpenCell(k: usize): bool {
  let c = load<i32>(k + K_FIRST_CELL);
  while (c >= 0) {
    const cp = cellPtr(c);
    if (load<u8>(cp + C_STATUS) != 0) return true;
    c = load<i32>(cp + C_NEXT);
  }
  return false;
}

/** Evicts keys idle for their scope's eviction time that have no open incident and no live titles. */
export function sweep(t: i64): void {
  // Titles before properties, so whether a property goes in this sweep never
  // depends on the order of key indices (which differs with the worker count). The
  // title pass notes whether any property is idle enough to go; only then is there a second pass
  // (with millions of titles a pass over the keys is most of a sweep).
  if (sweepScope(t, SCOPE_TITLE)) sweepScope(t, SCOPE_PROPERTY);
}

/** Evicts the idle keys of one scope; the title pass returns whether a property key is idle enough to go. */
function sweepScope(t: i64, scope: i32): bool {
  const hwm = hdrI32(H_KEY_HWM);
  let otherIdle = false;
  for (let i = 0; i < hwm; i++) {
    const k = keyPtr(i);
    if (load<u64>(k + K_HASH) == 0 || load<u8>(k + K_DIRTY) != 0) continue;
    const keyScope = <i32>load<u8>(k + K_SCOPE);
    const idle = t - lastTs(k) >= <i64>profParam(keyParams(k), keyScope, S_IDLE_EVICT_MS);
    if (keyScope != scope) {
      if (idle) otherIdle = true;
      continue;
    }
    if (!idle) continue;
    if (childCount(k) > 0 || keyHasOpenCell(k)) continue;
    const parent = load<i32>(k + K_PARENT);
    if (parent >= 0) {
      const pk = keyPtr(parent);
      addChildren(pk, -1);
    }
    deleteKey(i);
    bumpF64(H_EVICTED, 1);
  }
  return otherIdle;
}

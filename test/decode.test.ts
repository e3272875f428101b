// The wasm field extractor (assembly/decode.ts) against the JSON.parse reference
// (src/ingest/reference-decode.ts): fixed expectations for both, then
// differential runs over generated, adversarial and mutated lines.
// Needs build/decode-harness.wasm (built by `npm test` before the tests run).

import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { referenceDecode, parseIsoTimestamp } from '../src/ingest/reference-decode.ts';
import type { DecodeResult } from '../src/ingest/reference-decode.ts';
import { DEFAULT_FIELD_NAMES } from '../src/ingest/field-names.ts';
import type { FieldNames } from '../src/ingest/field-names.ts';
import * as S from '../src/ingest/reject-reason.ts';

const WASM_PATH = new URL('../build/decode-harness.wasm', import.meta.url);
const STATUS_SOURCE = new URL('../assembly/decode-status.ts', import.meta.url);
// Nesting the wasm decides by itself (decode.ts STACK_BITS); deeper lines fall back.
const WASM_MAX_DEPTH = 8200 * 8;

interface HarnessExports {
  memory: WebAssembly.Memory;
  inputBase(): number;
  decodeLine(start: number, end: number): number;
  setFieldName(field: number, ptr: number, len: number): void;
  setMaxLineBytes(n: number): void;
  propPtr(): number;
  propLen(): number;
  titlePtr(): number;
  titleLen(): number;
  errPtr(): number;
  errLen(): number;
  viewPtr(): number;
  viewLen(): number;
  tsValue(): number;
}

const enc = new TextEncoder();
const FIELD_ORDER: (keyof FieldNames)[] = ['viewId', 'propertyId', 'videoTitle', 'errorType', 'ts'];

/** Drives the wasm decoder the way the kernel will: bytes in linear memory, results from globals. */
class WasmDecoder {
  private readonly x: HarnessExports;
  private readonly base: number;
  maxLineBytes = 65536;
  names: FieldNames = { ...DEFAULT_FIELD_NAMES };
  fallbacks = 0;

  constructor(bytes: Uint8Array) {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(bytes)), {});
    this.x = instance.exports as unknown as HarnessExports;
    this.base = this.x.inputBase();
  }

  private put(bytes: Uint8Array): void {
    const need = this.base + bytes.length;
    const have = this.x.memory.buffer.byteLength;
    if (need > have) this.x.memory.grow(Math.ceil((need - have) / 65536));
    new Uint8Array(this.x.memory.buffer, this.base, bytes.length).set(bytes);
  }

  private bytesAt(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, ptr, len).slice();
  }

  setMaxLineBytes(n: number): void {
    this.maxLineBytes = n;
    this.x.setMaxLineBytes(n);
  }

  setNames(names: FieldNames): void {
    this.names = { ...names };
    FIELD_ORDER.forEach((key, field) => {
      const b = enc.encode(names[key]);
      this.put(b);
      this.x.setFieldName(field, this.base, b.length);
    });
  }

  /** The wasm's own answer, DECODE_FALLBACK included. */
  raw(line: Uint8Array): DecodeResult {
    this.put(line);
    const status = this.x.decodeLine(this.base, this.base + line.length);
    if (status !== S.DECODE_OK) return { status };
    const tl = this.x.titleLen();
    const el = this.x.errLen();
    const vl = this.x.viewLen();
    return {
      status,
      propertyId: this.bytesAt(this.x.propPtr(), this.x.propLen()),
      videoTitle: tl < 0 ? null : this.bytesAt(this.x.titlePtr(), tl),
      errorType: el < 0 ? null : this.bytesAt(this.x.errPtr(), el),
      ts: this.x.tsValue(),
      viewId: vl < 0 ? null : this.bytesAt(this.x.viewPtr(), vl),
    };
  }

  /** What production does: the wasm, with DECODE_FALLBACK settled by the reference. */
  decode(line: Uint8Array): DecodeResult {
    const r = this.raw(line);
    if (r.status !== S.DECODE_FALLBACK) return r;
    this.fallbacks++;
    assertLegitimateFallback(line, this.names);
    return referenceDecode(line, this.maxLineBytes, this.names);
  }
}

function loadHarness(): Uint8Array {
  try {
    return readFileSync(WASM_PATH);
  } catch (e) {
    throw new Error(
      `${WASM_PATH.pathname} is missing: build it with ` +
        '`npx asc assembly/decode-harness.ts --runtime stub -O3 --noAssert -o build/decode-harness.wasm`',
      { cause: e },
    );
  }
}

const wasm = new WasmDecoder(loadHarness());

function show(line: Uint8Array): string {
  const head = line.length > 240 ? line.subarray(0, 240) : line;
  let s = '';
  for (const b of head) s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return (line.length > 240 ? `${s}… (${line.length} bytes)` : s);
}

function describeResult(r: DecodeResult): string {
  const t = (b: Uint8Array | null | undefined): string =>
    b === undefined ? 'undefined' : b === null ? 'null' : JSON.stringify(Buffer.from(b).toString('latin1'));
  const name = S.DECODE_STATUS_NAMES[r.status] ?? String(r.status);
  if (r.status !== S.DECODE_OK) return name;
  return `ok prop=${t(r.propertyId)} title=${t(r.videoTitle)} err=${t(r.errorType)} ts=${r.ts} view=${t(r.viewId)}`;
}

/** Asserts wasm (fallback resolved) and reference agree on a line; returns the reference's result. */
function same(line: Uint8Array | string): DecodeResult {
  const bytes = typeof line === 'string' ? enc.encode(line) : line;
  const ref = referenceDecode(bytes, wasm.maxLineBytes, wasm.names);
  const got = wasm.decode(bytes);
  if (!sameResult(got, ref)) {
    assert.fail(`wasm and reference disagree on ${show(bytes)}\n  wasm: ${describeResult(got)}\n  ref:  ${describeResult(ref)}`);
  }
  return ref;
}

function sameResult(a: DecodeResult, b: DecodeResult): boolean {
  if (a.status !== b.status) return false;
  if (a.status !== S.DECODE_OK) return true;
  return eqBytes(a.propertyId, b.propertyId) && eqBytes(a.videoTitle, b.videoTitle) &&
    eqBytes(a.errorType, b.errorType) && Object.is(a.ts, b.ts) && eqBytes(a.viewId, b.viewId);
}

function eqBytes(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// A fallback is only allowed for a well-formed object whose property_id or ts is
// a number (the "exotic number" case) or whose nesting exceeds the wasm's stack.
function assertLegitimateFallback(line: Uint8Array, names: FieldNames): void {
  if (maxDepth(line) > WASM_MAX_DEPTH) return;
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(line));
  } catch {
    assert.fail(`FALLBACK on a line the wasm should reject itself: ${show(line)}`);
  }
  const o = doc as Record<string, unknown>;
  const isNum = (k: string): boolean => Object.hasOwn(o, k) && typeof o[k] === 'number';
  assert.ok(
    typeof doc === 'object' && doc !== null && !Array.isArray(doc) && (isNum(names.propertyId) || isNum(names.ts)),
    `FALLBACK without an exotic number field: ${show(line)}`,
  );
}

function maxDepth(line: Uint8Array): number {
  let d = 0;
  let max = 0;
  for (const b of line) {
    if (b === 0x5b || b === 0x7b) max = Math.max(max, ++d);
    else if (b === 0x5d || b === 0x7d) d--;
  }
  return max;
}

const utf8 = (b: Uint8Array | null | undefined): string | null | undefined =>
  b === undefined || b === null ? b : Buffer.from(b).toString('utf8');
const hex = (b: Uint8Array | null | undefined): string | null | undefined =>
  b === undefined || b === null ? b : Buffer.from(b).toString('hex');

interface Expect {
  status: number;
  prop?: string;
  title?: string | null;
  err?: string | null;
  ts?: number;
  view?: string | null;
}

/** Checks a fixed expectation on both decoders, so the reference is not trusted blindly; also demands the wasm decided alone. */
function expectBoth(line: string | Uint8Array, e: Expect, { wasmDecides = true } = {}): void {
  const bytes = typeof line === 'string' ? enc.encode(line) : line;
  const ref = referenceDecode(bytes, wasm.maxLineBytes, wasm.names);
  const raw = wasm.raw(bytes);
  const got = raw.status === S.DECODE_FALLBACK ? referenceDecode(bytes, wasm.maxLineBytes, wasm.names) : raw;
  if (wasmDecides) assert.notEqual(raw.status, S.DECODE_FALLBACK, `wasm fell back on ${show(bytes)}`);
  for (const [who, r] of [['reference', ref], ['wasm', got]] as const) {
    const where = `${who} on ${show(bytes)}: ${describeResult(r)}`;
    assert.equal(S.DECODE_STATUS_NAMES[r.status], S.DECODE_STATUS_NAMES[e.status], where);
    if (e.status !== S.DECODE_OK) continue;
    if (e.prop !== undefined) assert.equal(utf8(r.propertyId), e.prop, where);
    if (e.title !== undefined) assert.equal(utf8(r.videoTitle), e.title, where);
    if (e.err !== undefined) assert.equal(utf8(r.errorType), e.err, where);
    if (e.ts !== undefined) assert.ok(Object.is(r.ts, e.ts), `${where}: ts ${r.ts} !== ${e.ts}`);
    if (e.view !== undefined) assert.equal(utf8(r.viewId), e.view, where);
  }
}

const ok = (prop: string, ts: number, title: string | null = null, err: string | null = null): Expect =>
  ({ status: S.DECODE_OK, prop, ts, title, err });
const st = (status: number): Expect => ({ status });
const T0 = 1700000000000;

function withConfig(maxLineBytes: number, names: FieldNames, fn: () => void): void {
  const prevMax = wasm.maxLineBytes;
  const prevNames = wasm.names;
  wasm.setMaxLineBytes(maxLineBytes);
  wasm.setNames(names);
  try {
    fn();
  } finally {
    wasm.setMaxLineBytes(prevMax);
    wasm.setNames(prevNames);
  }
}

const cat = (...parts: (string | number[] | Uint8Array)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...enc.encode(p)] : [...p])));

// ---- seeded randomness --------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rand {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
}

// ---- realistic line generator ---------------------------------------------------

const TITLES = [
  'Frontline: The Virus', 'Nova — Secrets of the Sky', 'Café Society', 'ñandú & friends', '東京の夜',
  'Ep. 12 "The Return"', 'Back\\slash\\Title', 'Emoji 🎬🍿 Night', 'Ünïcødé Ŧïŧłë', 'Tab\there', 'Line\nbreak',
  'क्रिकेट हाइलाइट्स', 'Ελληνικά', 'עברית', 'Ⅻ Roman', '\u2028sep\u2029', 'Zero\u0000Width', 'Long '.repeat(60),
];
const ERRORS = ['networkError', 'mediaError', 'drmError', 'timeoutError', 'MEDIA_ERR_SRC_NOT_SUPPORTED', 'erreur-réseau'];
const PROPS = ['pbs', 'prop-123', 'ñ-prop', 'a"b', 'x\\y', '🎥stream', 'P'.repeat(256)];
const WS = ['', ' ', '  ', '\t', '\r\n', ' \n '];

function escapeAll(s: string, r: Rand): string {
  // JSON.stringify, then optionally \u-escape non-ASCII and some ASCII, as other exporters write it.
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\' || cp < 0x20 || (cp >= 0x7f && r.chance(0.5)) || r.chance(0.03)) {
      for (let i = 0; i < ch.length; i++) {
        const u = ch.charCodeAt(i).toString(16).padStart(4, '0');
        out += `\\u${r.chance(0.5) ? u : u.toUpperCase()}`;
      }
    } else {
      out += ch;
    }
  }
  return out + '"';
}

function jsonString(s: string, r: Rand): string {
  return r.chance(0.7) ? JSON.stringify(s) : escapeAll(s, r);
}

function isoOf(ms: number, r: Rand): string {
  const offsetMin = r.chance(0.5) ? 0 : (r.int(24 * 60 * 2) - 24 * 60) % (24 * 60);
  const d = new Date(ms + offsetMin * 60000);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  let s = `${String(d.getUTCFullYear()).padStart(4, '0')}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}`;
  s += r.pick(['T', 't', ' ']);
  s += `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  const fracDigits = r.int(10);
  if (fracDigits > 0) s += '.' + (String(d.getUTCMilliseconds()).padStart(3, '0') + '123456').slice(0, fracDigits);
  if (offsetMin === 0 && r.chance(0.7)) return s + r.pick(['Z', 'z']);
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return `${s}${sign}${p2(Math.floor(a / 60))}:${p2(a % 60)}`;
}

function tsText(r: Rand): string {
  const ms = T0 + r.int(400 * 86400000) - 200 * 86400000;
  switch (r.int(8)) {
    case 0:
    case 1:
    case 2:
      return String(ms);
    case 3:
      return JSON.stringify(isoOf(ms, r));
    case 4:
      return `"${ms}"`;
    case 5:
      return `${ms}.${r.int(1000)}`;
    case 6:
      return `${(ms / 1000).toFixed(3)}e3`;
    default:
      return JSON.stringify(isoOf(ms, r));
  }
}

function randomExtra(r: Rand, depth = 0): string {
  switch (r.int(depth > 2 ? 5 : 8)) {
    case 0:
      return String(r.int(100000) - 50);
    case 1:
      return jsonString(r.pick(TITLES), r);
    case 2:
      return r.pick(['true', 'false', 'null']);
    case 3:
      return (r.next() * 1e6).toString();
    case 4:
      return '-1.5e-7';
    case 5:
      return `[${Array.from({ length: r.int(4) }, () => randomExtra(r, depth + 1)).join(',')}]`;
    default: {
      // Nested objects sometimes carry look-alike keys that must be ignored.
      const keys = ['name', 'property_id', 'ts', 'video_title', 'error_type', 'view_id', 'version'];
      const n = r.int(4);
      const body = Array.from({ length: n }, () => `${JSON.stringify(r.pick(keys))}:${randomExtra(r, depth + 1)}`);
      return `{${body.join(',')}}`;
    }
  }
}

function realisticLine(r: Rand): string {
  const fields: string[] = [];
  const kv = (k: string, v: string): string => `${r.pick(WS)}${JSON.stringify(k)}${r.pick(WS)}:${r.pick(WS)}${v}`;
  const prop = r.chance(0.4) ? String(r.pick([177, 0, 42, 9007199254740991, -5, 123456789])) : jsonString(r.pick(PROPS), r);
  fields.push(kv('property_id', prop));
  fields.push(kv('ts', tsText(r)));
  if (!r.chance(0.05)) fields.push(kv('video_title', r.chance(0.05) ? r.pick(['null', '""']) : jsonString(r.pick(TITLES), r)));
  if (r.chance(0.7)) fields.push(kv('error_type', r.chance(0.7) ? 'null' : jsonString(r.pick(ERRORS), r)));
  if (r.chance(0.9)) fields.push(kv('view_id', r.chance(0.8) ? JSON.stringify(crypto.randomUUID()) : String(r.int(1e9))));
  for (let i = r.int(4); i > 0; i--) fields.push(kv(r.pick(['player', 'cdn', 'meta', 'x', 'props', 'é']), randomExtra(r)));
  if (r.chance(0.5)) r.shuffle(fields);
  return `${r.pick(WS)}{${fields.join(',')}${r.pick(WS)}}${r.pick(WS)}`;
}

// ---- tests -------------------------------------------------------------------------

describe('status codes', () => {
  test('reject-reason.ts mirrors assembly/decode-status.ts', () => {
    const src = readFileSync(STATUS_SOURCE, 'utf8');
    const defs = [...src.matchAll(/export const (\w+): i32 = (\d+);/g)];
    assert.ok(defs.length >= 15);
    for (const [, name, value] of defs) {
      assert.equal((S as Record<string, unknown>)[name], Number(value), name);
    }
    assert.equal(S.DECODE_STATUS_NAMES.length, defs.length);
    assert.equal(new Set(S.DECODE_STATUS_NAMES).size, S.DECODE_STATUS_NAMES.length);
    for (const n of S.DECODE_STATUS_NAMES) assert.match(n, /^[a-z0-9]+(_[a-z0-9]+)*$/);
    assert.equal(S.decodeStatusName(S.REJECT_NOT_JSON), 'not_json');
    assert.equal(S.decodeStatusName(S.REJECT_MISSING_PROPERTY), 'missing_property');
    assert.deepEqual(S.REJECT_REASONS.includes('ok') || S.REJECT_REASONS.includes('empty'), false);
    assert.equal(S.REJECT_REASONS.length, 12);
    assert.throws(() => S.decodeStatusName(99), RangeError);
  });
});

describe('fixed expectations (both decoders)', () => {
  test('typical lines', () => {
    expectBoth('{"property_id":177,"ts":1700000000000}', ok('177', T0));
    expectBoth(
      '{"view_id":"v1","property_id":"pbs","video_title":"Caf\\u00e9","error_type":"networkError","ts":"2024-02-29T12:00:00.123456Z"}',
      ok('pbs', Date.parse('2024-02-29T12:00:00.123Z'), 'Café', 'networkError'),
    );
    expectBoth(' \t{ "ts" : 5 , "property_id" : "p" , "video_title" : null , "error_type" : "" }\r', ok('p', 5, null, null));
    expectBoth('{"property_id":"p","ts":5,"video_title":"","error_type":null,"view_id":null}', ok('p', 5, null, null));
    expectBoth('{"property_id":"p","ts":5,"view_id":1.5e3}', ok('p', 5));
  });

  test('string escapes and surrogates', () => {
    expectBoth('{"property_id":"a\\ud800b","ts":0}', ok('a\ufffdb', 0));
    const lone = referenceDecode(enc.encode('{"property_id":"a\\ud800b","ts":0}'));
    assert.equal(hex(lone.propertyId), '61efbfbd62');
    assert.equal(hex(wasm.raw(enc.encode('{"property_id":"a\\ud800b","ts":0}')).propertyId), '61efbfbd62');
    expectBoth('{"property_id":"\\ud83d\\ude00","ts":0}', ok('😀', 0));
    expectBoth('{"property_id":"\\udc00\\ud800","ts":0}', ok('\ufffd\ufffd', 0));
    expectBoth('{"property_id":"\\ud800\\ud83d\\ude00","ts":0}', ok('\ufffd😀', 0));
    expectBoth('{"property_id":"\\ud83d\\u0041","ts":0}', ok('\ufffdA', 0));
    expectBoth('{"property_id":"\\ud83d\\n","ts":0}', ok('\ufffd\n', 0));
    expectBoth('{"property_id":"\\\\\\"\\/\\b\\f\\n\\r\\t","ts":0}', ok('\\"/\b\f\n\r\t', 0));
    expectBoth('{"property_id":"\\u0000","ts":0}', ok('\u0000', 0));
    expectBoth('{"property_id":"\\u00E9\\u00e9\\u20AC","ts":0}', ok('éé€', 0));
    expectBoth('{"property_id":"x","ts":0,"video_title":"\\uD834\\uDD1E clef \\u00e9"}', ok('x', 0, '𝄞 clef é'));
    expectBoth('{"property_id":"\u007f","ts":0}', ok('\u007f', 0));
  });

  test('keys: top level only, last duplicate wins, compared unescaped', () => {
    expectBoth('{"x":{"property_id":"fake","ts":1},"property_id":"real","ts":2}', ok('real', 2));
    expectBoth('{"property_id":"real","ts":2,"x":[{"property_id":"fake"}],"y":{"a":{"ts":"bad"}}}', ok('real', 2));
    expectBoth('{"property_id":"a","property_id":"b","ts":1,"ts":3}', ok('b', 3));
    expectBoth('{"property_id":"a","ts":1,"property_id":null}', st(S.REJECT_MISSING_PROPERTY));
    expectBoth('{"property_id":true,"ts":1,"property_id":"ok"}', ok('ok', 1));
    expectBoth('{"prop\\u0065rty_id":"x","\\u0074s":1}', ok('x', 1));
    expectBoth('{"property_id\\u0000":"x","ts":1}', st(S.REJECT_MISSING_PROPERTY));
    expectBoth('{"Property_id":"x","ts":1}', st(S.REJECT_MISSING_PROPERTY));
    expectBoth('{"property_id ":"x","ts":1}', st(S.REJECT_MISSING_PROPERTY));
    expectBoth('{"property_id":"x","ts":1,"__proto__":{"video_title":"no"}}', ok('x', 1, null));
    expectBoth('{}', st(S.REJECT_MISSING_PROPERTY));
  });

  test('property_id forms', () => {
    const p = (v: string): string => `{"property_id":${v},"ts":1}`;
    expectBoth(p('-5'), ok('-5', 1));
    expectBoth(p('-0'), ok('0', 1));
    expectBoth(p('0'), ok('0', 1));
    expectBoth(p('1e2'), ok('100', 1));
    expectBoth(p('177.0'), ok('177', 1));
    expectBoth(p('1.77E+2'), ok('177', 1));
    expectBoth(p('17700e-2'), ok('177', 1));
    expectBoth(p('-0.0e7'), ok('0', 1));
    expectBoth(p('9007199254740991'), ok('9007199254740991', 1));
    expectBoth(p('-9007199254740991'), ok('-9007199254740991', 1));
    expectBoth(p('9007199254740991.000'), ok('9007199254740991', 1));
    expectBoth(p('9007199254740992'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('9.007199254740992e15'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('12345678901234567890'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('1e400'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('1.5'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('-0.5'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('1e-7'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('""'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('true'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('{}'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('["a"]'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('null'), st(S.REJECT_MISSING_PROPERTY));
    expectBoth('{"ts":1}', st(S.REJECT_MISSING_PROPERTY));
    expectBoth(p(JSON.stringify('x'.repeat(256))), ok('x'.repeat(256), 1));
    expectBoth(p(JSON.stringify('x'.repeat(257))), st(S.REJECT_FIELD_TOO_LONG));
    expectBoth(p(JSON.stringify('é'.repeat(128))), ok('é'.repeat(128), 1));
    expectBoth(p(JSON.stringify('é'.repeat(129))), st(S.REJECT_FIELD_TOO_LONG));
    expectBoth(p(`"${'\\u00e9'.repeat(128)}"`), ok('é'.repeat(128), 1));
    expectBoth(p(`"${'\\u00e9'.repeat(128)}x"`), st(S.REJECT_FIELD_TOO_LONG));
    // Decimals whose double lands on an integer (decided from the digits, exactly at the ties).
    expectBoth(p('579240760946053.06'), ok('579240760946053', 1));
    expectBoth(p('4503599627370497.5'), ok('4503599627370498', 1));
    expectBoth(p('4503599627370496.5'), ok('4503599627370496', 1));
    expectBoth(p('9007199254740991.4'), ok('9007199254740991', 1));
    expectBoth(p('9007199254740991.5'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('34359738368.000003814697265625'), ok('34359738368', 1));
    expectBoth(p('34359738368.0000038146972656251'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('34359738368.999996185302734375'), ok('34359738369', 1));
    expectBoth(p('-34359738368.999996185302734375'), ok('-34359738369', 1));
    expectBoth(p('34359738368.999996185302734374'), st(S.REJECT_BAD_PROPERTY));
    expectBoth(p('1e-400'), ok('0', 1));
    expectBoth(p('-6e-330'), ok('0', 1));
    // Rare forms JSON.parse must settle: the wasm may hand them back.
    expectBoth(p('1.0000000000000000001'), ok('1', 1), { wasmDecides: false });
    expectBoth(p('6293990246.000000015'), ok('6293990246', 1), { wasmDecides: false });
    expectBoth(p('5e-324'), st(S.REJECT_BAD_PROPERTY), { wasmDecides: false });
  });

  test('ts forms', () => {
    const t = (v: string): string => `{"property_id":"p","ts":${v}}`;
    expectBoth(t('0'), ok('p', 0));
    expectBoth(t('-0'), ok('p', 0));
    expectBoth(t('-0.0'), ok('p', 0));
    expectBoth(t('-1'), st(S.REJECT_BAD_TS));
    expectBoth(t('-0.5'), st(S.REJECT_BAD_TS));
    expectBoth(t('1700000000000.9'), ok('p', 1700000000000));
    expectBoth(t('1700000000000.998'), ok('p', 1700000000000));
    expectBoth(t('1.7e12'), ok('p', 1700000000000));
    expectBoth(t('17e11'), ok('p', 1700000000000));
    expectBoth(t('1e400'), st(S.REJECT_BAD_TS));
    expectBoth(t('253402300799999'), ok('p', 253402300799999));
    expectBoth(t('253402300799999.5'), ok('p', 253402300799999));
    expectBoth(t('253402300800000'), st(S.REJECT_BAD_TS));
    expectBoth(t('"1700000000000"'), ok('p', T0));
    expectBoth(t('"0001700000000000"'), ok('p', T0));
    expectBoth(t(`"${'0'.repeat(100)}17"`), ok('p', 17));
    expectBoth(t(`"${'\\u0030'.repeat(100)}17"`), ok('p', 17));
    expectBoth(t('"253402300800000"'), st(S.REJECT_BAD_TS));
    expectBoth(t('"-5"'), st(S.REJECT_BAD_TS));
    expectBoth(t('"17.5"'), st(S.REJECT_BAD_TS));
    expectBoth(t('""'), st(S.REJECT_BAD_TS));
    expectBoth(t('" 17"'), st(S.REJECT_BAD_TS));
    expectBoth(t('"\\u0031\\u0037"'), ok('p', 17));
    expectBoth(t('true'), st(S.REJECT_BAD_TS));
    expectBoth(t('[1]'), st(S.REJECT_BAD_TS));
    expectBoth(t('null'), st(S.REJECT_MISSING_TS));
    expectBoth('{"property_id":"p"}', st(S.REJECT_MISSING_TS));
    // A fraction so close to the next integer that the double rounds up.
    expectBoth(t('1699999999999.99999999'), ok('p', T0));
    expectBoth(t('1700000000000.9998779296874'), ok('p', T0));
    expectBoth(t('1700000000000.9998779296875'), ok('p', T0 + 1));
    expectBoth(t('253402300799999.99'), st(S.REJECT_BAD_TS));
    expectBoth(t('1e-400'), ok('p', 0));
    expectBoth(t('-1e-400'), ok('p', 0));
    expectBoth(t('-1e-300'), st(S.REJECT_BAD_TS));
    expectBoth(t('-5e-324'), st(S.REJECT_BAD_TS), { wasmDecides: false });
    expectBoth(t('0.99999999999999999'), ok('p', 1), { wasmDecides: false });
  });

  test('ISO-8601 timestamps', () => {
    const t = (v: string): string => `{"property_id":"p","ts":"${v}"}`;
    expectBoth(t('2024-02-30T00:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2023-02-29T00:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2100-02-29T00:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2000-02-29T00:00:00Z'), ok('p', Date.parse('2000-02-29T00:00:00Z')));
    expectBoth(t('2096-02-29T23:59:59.999Z'), ok('p', Date.parse('2096-02-29T23:59:59.999Z')));
    expectBoth(t('2024-04-31T00:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-13-01T00:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-00-01T00:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-00T00:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T24:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:60:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:60Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:00+24:00'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:00+01:60'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:00'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:00.Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:00.1234567890Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:00+0100'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:00ZZ'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-1-01T00:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('+2024-01-01T00:00:00Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:00.123456789Z'), ok('p', Date.parse('2024-01-01T00:00:00.123Z')));
    expectBoth(t('2024-01-01t00:00:00.9z'), ok('p', Date.parse('2024-01-01T00:00:00.900Z')));
    expectBoth(t('2024-01-01 00:00:00.05+05:30'), ok('p', Date.parse('2024-01-01T00:00:00.050+05:30')));
    expectBoth(t('2024-01-01T00:00:00-23:59'), ok('p', Date.parse('2024-01-01T00:00:00-23:59')));
    expectBoth(t('1970-01-01T00:00:00Z'), ok('p', 0));
    expectBoth(t('1970-01-01T00:00:00.000+00:01'), st(S.REJECT_BAD_TS));
    expectBoth(t('1969-12-31T23:00:00-01:00'), ok('p', 0));
    expectBoth(t('1969-12-31T23:59:59.999Z'), st(S.REJECT_BAD_TS));
    expectBoth(t('0069-12-31T23:00:00-01:00'), st(S.REJECT_BAD_TS));
    expectBoth(t('9999-12-31T23:59:59.999Z'), ok('p', 253402300799999));
    expectBoth(t('9999-12-31T23:59:59.999-00:01'), st(S.REJECT_BAD_TS));
    expectBoth(t('2024-01-01T00:00:00\\u005a'), ok('p', Date.parse('2024-01-01T00:00:00Z')));
    expectBoth(t('２０２４-01-01T00:00:00Z'), st(S.REJECT_BAD_TS));
  });

  test('title, error type and view id', () => {
    const b = '"property_id":"p","ts":1';
    expectBoth(`{${b},"video_title":5}`, st(S.REJECT_BAD_TITLE));
    expectBoth(`{${b},"video_title":false}`, st(S.REJECT_BAD_TITLE));
    expectBoth(`{${b},"video_title":${JSON.stringify('t'.repeat(1024))}}`, ok('p', 1, 't'.repeat(1024)));
    expectBoth(`{${b},"video_title":${JSON.stringify('t'.repeat(1025))}}`, st(S.REJECT_FIELD_TOO_LONG));
    expectBoth(`{${b},"video_title":${JSON.stringify('€'.repeat(341))}}`, ok('p', 1, '€'.repeat(341)));
    expectBoth(`{${b},"video_title":${JSON.stringify('€'.repeat(342))}}`, st(S.REJECT_FIELD_TOO_LONG));
    expectBoth(`{${b},"error_type":${JSON.stringify('e'.repeat(128))}}`, ok('p', 1, null, 'e'.repeat(128)));
    expectBoth(`{${b},"error_type":${JSON.stringify('e'.repeat(129))}}`, st(S.REJECT_FIELD_TOO_LONG));
    expectBoth(`{${b},"error_type":["networkError"]}`, st(S.REJECT_BAD_ERROR_TYPE));
    expectBoth(`{${b},"error_type":0}`, st(S.REJECT_BAD_ERROR_TYPE));
    expectBoth(`{${b},"view_id":true}`, st(S.REJECT_BAD_VIEW_ID));
    expectBoth(`{${b},"view_id":{}}`, st(S.REJECT_BAD_VIEW_ID));
    expectBoth(`{${b},"view_id":[]}`, st(S.REJECT_BAD_VIEW_ID));
    expectBoth(`{${b},"view_id":-1e999}`, ok('p', 1));
    expectBoth(`{${b},"view_id":"${'v'.repeat(5000)}"}`, ok('p', 1));
  });

  // The view id is what duplicate deliveries are recognized by: a non-empty string of at most 256
  // bytes, unescaped. Numbers, "", null and longer strings are valid but identify nothing.
  test('view id: the identity duplicates are suppressed by', () => {
    const b = '"property_id":"p","ts":1';
    const view = (v: string | null): Expect => ({ ...ok('p', 1), view: v });
    expectBoth(`{${b},"view_id":"v-15sl7-3kjl"}`, view('v-15sl7-3kjl'));
    expectBoth(`{${b},"view_id":"caf\\u00e9 \\"1\\""}`, view('café "1"'));
    expectBoth(`{${b},"view_id":"\\ud800x"}`, view('\ufffdx'));
    expectBoth(`{${b},"view_id":${JSON.stringify('€'.repeat(85))}}`, view('€'.repeat(85)));
    expectBoth(`{${b},"view_id":${JSON.stringify('€'.repeat(86))}}`, view(null));
    expectBoth(`{${b},"view_id":${JSON.stringify('v'.repeat(256))}}`, view('v'.repeat(256)));
    expectBoth(`{${b},"view_id":${JSON.stringify('v'.repeat(257))}}`, view(null));
    expectBoth(`{${b},"view_id":""}`, view(null));
    expectBoth(`{${b},"view_id":null}`, view(null));
    expectBoth(`{${b},"view_id":12345}`, view(null));
    expectBoth(`{"view_id":"first",${b},"view_id":"last"}`, view('last'));
    expectBoth(`{${b}}`, view(null));
  });

  test('check order when several things are wrong', () => {
    expectBoth('{"property_id":true,"ts":"bad","video_title":1,"error_type":1,"view_id":true}', st(S.REJECT_BAD_PROPERTY));
    expectBoth('{"ts":"bad","video_title":1}', st(S.REJECT_MISSING_PROPERTY));
    expectBoth('{"property_id":"p","video_title":1}', st(S.REJECT_MISSING_TS));
    expectBoth('{"property_id":"p","ts":"bad","video_title":1}', st(S.REJECT_BAD_TS));
    expectBoth(`{"property_id":"${'p'.repeat(300)}","ts":"bad"}`, st(S.REJECT_FIELD_TOO_LONG));
    expectBoth('{"property_id":"p","ts":1,"video_title":1,"error_type":1}', st(S.REJECT_BAD_TITLE));
    expectBoth('{"property_id":"p","ts":1,"view_id":true,"error_type":1}', st(S.REJECT_BAD_ERROR_TYPE));
    expectBoth('{"property_id":true,"ts":1,"x":}', st(S.REJECT_NOT_JSON));
    expectBoth(cat('{"property_id":true,"ts":1,"x":}', [0xff]), st(S.REJECT_INVALID_UTF8));
    expectBoth(cat('[', [0xc0, 0x80]), st(S.REJECT_INVALID_UTF8));
    expectBoth('[1,2,3]', st(S.REJECT_NOT_OBJECT));
    expectBoth('[1,2,3', st(S.REJECT_NOT_JSON));
  });

  test('whole-line validity', () => {
    expectBoth('', st(S.DECODE_EMPTY));
    expectBoth(' \t\r', st(S.DECODE_EMPTY));
    expectBoth('\r', st(S.DECODE_EMPTY));
    expectBoth('\f', st(S.REJECT_NOT_JSON));
    expectBoth('\u00a0', st(S.REJECT_NOT_JSON));
    expectBoth('\ufeff{"property_id":"p","ts":1}', st(S.REJECT_NOT_JSON));
    expectBoth('"just a string"', st(S.REJECT_NOT_OBJECT));
    expectBoth('null', st(S.REJECT_NOT_OBJECT));
    expectBoth('-0.5e+7', st(S.REJECT_NOT_OBJECT));
    expectBoth('[]', st(S.REJECT_NOT_OBJECT));
    expectBoth('[[],{}]', st(S.REJECT_NOT_OBJECT));
    expectBoth('{"property_id":"p","ts":1}x', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1}{}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1,}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p" "ts":1}', st(S.REJECT_NOT_JSON));
    expectBoth("{'property_id':'p','ts':1}", st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":01}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1.}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":.5}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":+1}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1e}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":NaN}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1,"x":tru}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1,"x":True}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p\\x41","ts":1}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p\\u00g1","ts":1}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p\tq","ts":1}', st(S.REJECT_NOT_JSON));
    expectBoth(cat('{"property_id":"p', [0], '","ts":1}'), st(S.REJECT_NOT_JSON));
    expectBoth(cat('{"property_id":"p","ts":1}', [0]), st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1,"x":[1,2}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1,"x":{"a":1]}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1,"x":{"a"}}', st(S.REJECT_NOT_JSON));
    expectBoth('{"property_id":"p","ts":1,"x":{1:2}}', st(S.REJECT_NOT_JSON));
    expectBoth(cat('{"property_id":"p","ts":1,"x":"', [0xed, 0xa0, 0x80], '"}'), st(S.REJECT_INVALID_UTF8));
  });

  test('line size limit is checked first', () => {
    withConfig(40, DEFAULT_FIELD_NAMES, () => {
      expectBoth('{"property_id":"p","ts":1}', ok('p', 1));
      expectBoth(`{"property_id":"p","ts":1,"x":"${'x'.repeat(7)}"}`, ok('p', 1));
      expectBoth(`{"property_id":"p","ts":1,"x":"${'x'.repeat(8)}"}`, st(S.REJECT_TOO_LARGE));
      expectBoth(cat(' '.repeat(41)), st(S.REJECT_TOO_LARGE));
      expectBoth(cat([0xff], ' '.repeat(40)), st(S.REJECT_TOO_LARGE));
    });
    expectBoth(`{"property_id":"p","ts":1,"x":"${'x'.repeat(70000)}"}`, st(S.REJECT_TOO_LARGE));
  });

  test('configured field names', () => {
    const names: FieldNames = {
      viewId: 'id',
      propertyId: 'prop',
      videoTitle: 'título',
      errorType: 'player_error_code',
      ts: 'x'.repeat(64),
    };
    withConfig(65536, names, () => {
      expectBoth(`{"prop":"a","${'x'.repeat(64)}":1,"título":"t","player_error_code":"e","id":true}`, st(S.REJECT_BAD_VIEW_ID));
      expectBoth(`{"prop":"a","${'x'.repeat(64)}":1,"t\\u00edtulo":"t","player_error_code":"e"}`, ok('a', 1, 't', 'e'));
      expectBoth('{"property_id":"a","ts":1}', st(S.REJECT_MISSING_PROPERTY));
      expectBoth(`{"prop":"a","${'x'.repeat(65)}":1}`, st(S.REJECT_MISSING_TS));
    });
    // Two fields under one name both see the value.
    withConfig(65536, { ...DEFAULT_FIELD_NAMES, viewId: 'property_id' }, () => {
      expectBoth('{"property_id":"a","ts":1}', ok('a', 1));
    });
    withConfig(65536, { ...DEFAULT_FIELD_NAMES, videoTitle: 'property_id' }, () => {
      expectBoth('{"property_id":"a","ts":1}', ok('a', 1, 'a'));
    });
    // A key with a lone surrogate must not match a name spelled with U+FFFD.
    withConfig(65536, { ...DEFAULT_FIELD_NAMES, videoTitle: 'x\ufffd' }, () => {
      expectBoth('{"property_id":"a","ts":1,"x\\ud800":"t"}', ok('a', 1, null));
      expectBoth('{"property_id":"a","ts":1,"x\\ufffd":"t"}', ok('a', 1, 't'));
    });
    // Names that Object.prototype has must still be looked up as own keys only.
    withConfig(65536, { ...DEFAULT_FIELD_NAMES, propertyId: 'constructor', videoTitle: 'toString', ts: '__proto__' }, () => {
      expectBoth('{"ts":1}', st(S.REJECT_MISSING_PROPERTY));
      expectBoth('{"constructor":"c"}', st(S.REJECT_MISSING_TS));
      expectBoth('{"constructor":"c","__proto__":7}', ok('c', 7, null));
    });
    // Defaults are back.
    expectBoth('{"property_id":"a","ts":1}', ok('a', 1));
  });

  // The decoder tries, at each key position, the field the line before had there, comparing its
  // quoted name and colon as bytes; every line below follows one that set up such a guess.
  test('keys guessed from the line before', () => {
    const base = '{"view_id":"v","property_id":"a","video_title":"t","error_type":"e","ts":1}';
    expectBoth(base, ok('a', 1, 't', 'e'));
    // Other keys at the guessed positions: a name's prefix and extension, another field, an unknown key.
    expectBoth('{"view_i":"v","property_idx":"a","ts":2,"error_type":"e","video_title":"t"}', st(S.REJECT_MISSING_PROPERTY));
    expectBoth(base, ok('a', 1, 't', 'e'));
    expectBoth('{"view_id":"v","property_id":"b","ts":2,"error_type":"e","video_title":"u"}', ok('b', 2, 'u', 'e'));
    expectBoth('{"view_id":"v","property_id":"b","ts":3,"error_type":"e","video_title":"u","ts":4}', ok('b', 4, 'u', 'e'));
    expectBoth(base, ok('a', 1, 't', 'e'));
    // The guessed key spelled with an escape, with space before its colon, or cut short.
    expectBoth('{"view_id":"v","propert\u0079_id":"c","video_title":"t","error_type":"e","ts":1}', ok('c', 1, 't', 'e'));
    expectBoth('{"view_id":"v","property_id" :"c","video_title":"t","error_type":"e","ts":1}', ok('c', 1, 't', 'e'));
    expectBoth(base, ok('a', 1, 't', 'e'));
    expectBoth('{"view_id":"v","property_id"', st(S.REJECT_NOT_JSON));
    expectBoth('{"view_id":"v","property_id":', st(S.REJECT_NOT_JSON));
    expectBoth('{"view_id":"v","property_id', st(S.REJECT_NOT_JSON));
    // A name holding bytes a key must escape is never compared as raw bytes: the same bytes in a line
    // are another key, or no JSON at all.
    withConfig(65536, { ...DEFAULT_FIELD_NAMES, propertyId: 'p"q', videoTitle: 'a\\b' }, () => {
      expectBoth('{"p\\"q":"x","ts":1,"a\\\\b":"t"}', ok('x', 1, 't'));
      expectBoth('{"p\\"q":"x","ts":1,"a\\b":"t"}', ok('x', 1, null));
      expectBoth('{"p\\"q":"x","ts":1,"a\\\\b":"t"}', ok('x', 1, 't'));
      expectBoth('{"p"q":"x","ts":1}', st(S.REJECT_NOT_JSON));
    });
    // New names forget the guesses: the line is read with the defaults again.
    expectBoth(base, ok('a', 1, 't', 'e'));
  });
});

describe('differential: wasm (fallback resolved) equals reference', () => {
  let fallbacksAtStart = 0;
  beforeEach(() => {
    fallbacksAtStart = wasm.fallbacks;
  });
  afterEach((t) => {
    if ('diagnostic' in t) t.diagnostic(`lines the wasm handed to the reference: ${wasm.fallbacks - fallbacksAtStart}`);
  });

  test('20k generated realistic lines, none falls back', () => {
    const r = new Rand(0x5eed);
    const before = wasm.fallbacks;
    const statuses = new Map<number, number>();
    for (let i = 0; i < 20000; i++) {
      const line = realisticLine(r);
      const res = same(line);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
    assert.equal(wasm.fallbacks, before, 'realistic lines must be decided in wasm');
    // The generator must mostly produce accepted lines, or this test proves little.
    assert.ok((statuses.get(S.DECODE_OK) ?? 0) > 15000, JSON.stringify([...statuses]));
  });

  test('every prefix and suffix of generated lines', () => {
    const r = new Rand(7);
    for (let i = 0; i < 60; i++) {
      const line = enc.encode(realisticLine(r));
      for (let n = 0; n <= line.length; n++) {
        same(line.subarray(0, n));
        same(line.subarray(n));
      }
    }
  });

  test('adversarial lines', () => {
    const base = '"property_id":"p","ts":1';
    const lines: (string | Uint8Array)[] = [];
    // Invalid UTF-8 in every position class: key, value, nested, outside strings, at the end.
    const badUtf8 = [
      [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf],
      [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80],
      [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfe], [0xff], [0x80], [0xbf], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98],
      [0xc3, 0x28], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0x28],
    ];
    const goodUtf8 = [[0xc2, 0x80], [0xdf, 0xbf], [0xe0, 0xa0, 0x80], [0xed, 0x9f, 0xbf], [0xee, 0x80, 0x80],
      [0xef, 0xbf, 0xbf], [0xf0, 0x90, 0x80, 0x80], [0xf4, 0x8f, 0xbf, 0xbf], [0xef, 0xbb, 0xbf]];
    for (const seq of [...badUtf8, ...goodUtf8]) {
      lines.push(cat('{"property_id":"', seq, '","ts":1}'));
      lines.push(cat(`{${base},"`, seq, '":1}'));
      lines.push(cat(`{${base},"x":["a`, seq, '"]}'));
      lines.push(cat(`{${base},"x":`, seq, '}'));
      lines.push(cat(`{${base}}`, seq));
      lines.push(cat(`{${base},"video_title":"`, seq));
      lines.push(cat(`{${base},"x":tru`, seq, '}'));
      lines.push(cat(seq));
      lines.push(cat('"', seq, '"'));
    }
    // Control bytes and NUL inside and outside strings.
    for (let c = 0; c < 0x20; c++) {
      lines.push(cat('{"property_id":"a', [c], 'b","ts":1}'));
      lines.push(cat(`{${base},`, [c], '"x":1}'));
    }
    lines.push(cat('{"property_id":"p","ts":1', [0], '}'));
    // Escapes of every kind, valid and not.
    for (const e of ['\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t', '\\u0041', '\\u00', '\\u', '\\', '\\a', '\\U0041',
      '\\u004G', '\\ud800', '\\udfff', '\\ud800\\udc00', '\\udbff\\udfff', '\\ud800\\ud800', '\\ud800x', '\\u0000', "\\'", '\\0', '\\x41']) {
      lines.push(`{"property_id":"${e}","ts":1}`);
      lines.push(`{${base},"video_title":"t${e}t"}`);
      lines.push(`{${base},"error_type":"${e}"}`);
      lines.push(`{${base},"x${e}":{"y${e}":"${e}"}}`);
      lines.push(`{"property_id":"p","ts":"${e}"}`);
    }
    // Numbers in every field slot.
    const nums = ['0', '-0', '1', '-1', '177', '1e2', '1E2', '1e+2', '1e-2', '1.0', '1.5', '0.1', '-0.0', '00', '01', '-', '1.',
      '.1', '1e', '1e+', '2e-0', '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740992',
      '12345678901234567890', '1e15', '9.007199254740991e15', '90071992547409.91e2', '1e21', '1e308', '1e309', '-1e309',
      '5e-324', '2e-324', '1e-400', '-1e-400', '1.7e12', '1700000000000', '1700000000000.0001', '1700000000000.999',
      '1700000000000.9999', '253402300799999', '253402300799999.9', '253402300799999.999999', '253402300800000',
      '0.999', '0.9999', '0.99999999999999999', '17000000000000000e-4', '1' + '0'.repeat(400), '0.' + '0'.repeat(400) + '1',
      '100000000000000000000000000001e-29', '123456789012345.6', '1234567890123456.7'];
    for (const n of nums) {
      lines.push(`{"property_id":${n},"ts":1}`);
      lines.push(`{"property_id":"p","ts":${n}}`);
      lines.push(`{${base},"view_id":${n}}`);
      lines.push(`{${base},"video_title":${n}}`);
      lines.push(`{"property_id":"p","ts":"${n}"}`);
      lines.push(n);
    }
    // Whitespace everywhere, including where JSON forbids it.
    for (const w of [' ', '\t', '\n', '\r', '\f', '\v', '\u00a0', '\u2028', '\ufeff']) {
      lines.push(`${w}{${w}"property_id"${w}:${w}"p"${w},${w}"ts"${w}:${w}1${w}}${w}`);
      lines.push(`{"property_id":"p","ts":1,"x":[${w}1${w},${w}{${w}}${w}]}`);
    }
    lines.push('\ufeff{"property_id":"p","ts":1}', '\ufeff', '\ufeff ');
    // Literals and structure.
    for (const v of ['true', 'false', 'null', 'nul', 'nulll', 'truefalse', '[]', '{}', '[1,]', '{,}', '[,1]', '{"a":1,,"b":2}',
      '{"a" 1}', '{"a":}', '{:1}', '{"a":1 "b":2}', '[1 2]', '"\\"', '"', ']', '}', '[[]]]', '{{}}', '{"a":[}', '{"a":{]']) {
      lines.push(`{${base},"x":${v}}`);
      lines.push(v);
    }
    // Deep nesting, within and beyond the wasm's stack.
    for (const d of [1, 2, 63, 64, 65, 1000, 20000]) {
      lines.push(`{${base},"x":${'['.repeat(d)}${']'.repeat(d)}}`);
      lines.push(`{${base},"x":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`);
      lines.push(`{${base},"x":${'['.repeat(d)}${']'.repeat(d - 1)}}`);
      lines.push(`{${base},"x":${'[{"b":'.repeat(d)}null${'}]'.repeat(d)}}`);
      lines.push(`${'['.repeat(d)}${']'.repeat(d)}`);
    }
    for (const line of lines) same(line);

    // Huge values under a large limit: 10 MB strings, deep nesting past the wasm's stack.
    withConfig(16 << 20, DEFAULT_FIELD_NAMES, () => {
      const big = 'é'.repeat(5 << 20);
      expectBoth(`{${base},"x":"${big}"}`, ok('p', 1));
      expectBoth(`{${base},"video_title":"${big}"}`, st(S.REJECT_FIELD_TOO_LONG));
      expectBoth(`{${base},"x":"${'\\u00e9'.repeat(1 << 20)}"}`, ok('p', 1));
      expectBoth(`{${base},"x":"${big}`, st(S.REJECT_NOT_JSON));
      expectBoth(cat(`{${base},"x":"${big}`, [0xff], '"}'), st(S.REJECT_INVALID_UTF8));
      expectBoth(`{${base},"x":[${'1,'.repeat(2 << 20)}1]}`, ok('p', 1));
      same(`{${base},"x":${'['.repeat(70000)}${']'.repeat(70000)}}`);
      same(`{${base},"x":${'['.repeat(70000)}${']'.repeat(69999)}}`);
      same(`{${base},"x":${'['.repeat(200000)}}`);
      same(`{${base},"x":${'['.repeat(65598)}${']'.repeat(65598)}}`);
      expectBoth(`{${base},"x":${'['.repeat(65599)}${']'.repeat(65599)}}`, ok('p', 1));
    });
  });

  test('random ISO timestamps against Date.parse', () => {
    const r = new Rand(2024);
    const p2 = (n: number): string => String(n).padStart(2, '0');
    for (let i = 0; i < 5000; i++) {
      const year = r.chance(0.1) ? r.pick([1969, 1970, 2000, 2100, 2400, 9999, 1900, 1600]) : 1970 + r.int(8030);
      const month = r.int(14);
      const day = r.int(33);
      const hh = r.int(25);
      const mi = r.int(61);
      const ss = r.int(61);
      const frac = r.int(11);
      const fracText = frac === 0 ? '' : '.' + Array.from({ length: frac }, () => r.int(10)).join('');
      const off = r.chance(0.4) ? 'Z' : `${r.pick(['+', '-'])}${p2(r.int(25))}:${p2(r.int(61))}`;
      const iso = `${String(year).padStart(4, '0')}-${p2(month)}-${p2(day)}T${p2(hh)}:${p2(mi)}:${p2(ss)}${fracText}${off}`;
      const res = same(`{"property_id":"p","ts":"${iso}"}`);
      // Independent oracle: the calendar through Date, the offset through Date.parse's own grammar.
      const dim = new Date(0);
      dim.setUTCFullYear(year, month, 0); // day 0 of the next month: the month's length
      const validDate = month >= 1 && month <= 12 && day >= 1 && day <= dim.getUTCDate();
      const validTime = hh <= 23 && mi <= 59 && ss <= 59 && frac <= 9 && (off === 'Z' || (Number(off.slice(1, 3)) <= 23 && Number(off.slice(4)) <= 59));
      let expected = S.REJECT_BAD_TS;
      let expectedTs: number | undefined;
      if (validDate && validTime) {
        const ms = (fracText.slice(1) + '000').slice(0, 3);
        const t = Date.parse(`${String(year).padStart(4, '0')}-${p2(month)}-${p2(day)}T${p2(hh)}:${p2(mi)}:${p2(ss)}.${ms}${off}`);
        assert.ok(!Number.isNaN(t), iso);
        if (t >= 0 && t <= 253402300799999) {
          expected = S.DECODE_OK;
          expectedTs = t;
        }
      }
      assert.equal(res.status, expected, iso);
      if (expectedTs !== undefined) assert.equal(res.ts, expectedTs, iso);
    }
    assert.equal(parseIsoTimestamp('2024-02-30T00:00:00Z'), undefined);
  });

  test('random numeric property ids and timestamps against Number semantics', () => {
    const r = new Rand(99);
    const before = wasm.fallbacks;
    let plainFallbacks = 0;
    for (let i = 0; i < 20000; i++) {
      const digits = Array.from({ length: 1 + r.int(r.chance(0.2) ? 25 : 16) }, () => r.int(10)).join('').replace(/^0+(?=\d)/, '');
      const fracDigits = r.chance(0.5) ? '' : '.' + Array.from({ length: 1 + r.int(r.chance(0.1) ? 20 : 5) }, () => (r.chance(0.3) ? 0 : r.int(10))).join('');
      const exp = r.chance(0.6) ? '' : `${r.pick(['e', 'E'])}${r.pick(['', '+', '-'])}${r.int(r.chance(0.05) ? 400 : 20)}`;
      const text = `${r.chance(0.2) ? '-' : ''}${digits}${fracDigits}${exp}`;
      const v = Number(text);
      const fallbacksBefore = wasm.fallbacks;
      const prop = same(`{"property_id":${text},"ts":1}`);
      if (Number.isSafeInteger(v)) {
        assert.equal(prop.status, S.DECODE_OK, text);
        assert.equal(utf8(prop.propertyId), String(v), text);
      } else {
        assert.equal(prop.status, S.REJECT_BAD_PROPERTY, text);
      }
      const ts = same(`{"property_id":"p","ts":${text}}`);
      const fl = Math.floor(v);
      assert.equal(ts.status, fl >= 0 && fl <= 253402300799999 ? S.DECODE_OK : S.REJECT_BAD_TS, text);
      // Plain integers and short decimals must never need JSON.parse.
      const sig = (digits + fracDigits.slice(1)).replace(/^0+/, '').replace(/0+$/, '').length;
      if (wasm.fallbacks !== fallbacksBefore && sig <= 15 && Math.abs(Number(exp.slice(1) || 0)) < 300) plainFallbacks++;
    }
    assert.equal(plainFallbacks, 0);
    // Exotic forms (subnormals, fractions within ~1e-6 of an integer) fall back, but rarely.
    assert.ok(wasm.fallbacks - before < 40, `fallbacks: ${wasm.fallbacks - before}`);
  });

  test('decimals at and around the rounding ties of doubles', () => {
    const r = new Rand(53);
    // Exact decimal text of n / 10^d, d >= 1.
    const dec = (n: bigint, d: number): string => n.toString().padStart(d, '0');
    let decidedBelow35 = 0;
    for (let i = 0; i < 4000; i++) {
      const k = r.chance(0.1) ? 52 : r.chance(0.2) ? r.int(35) : 35 + r.int(17);
      const v = 2n ** BigInt(k) + BigInt(Math.floor(r.next() * 2 ** Math.min(k, 30))) * (k > 30 ? 2n ** BigInt(k - 30) : 1n);
      // ulp/2 = 2^(k-53) = 5^(53-k) / 10^(53-k): its decimal expansion is exact.
      const d = 53 - k;
      const half = 5n ** BigInt(d);
      const one = 10n ** BigInt(d);
      const base = r.pick([half, one - half, one / 2n, half * 3n, one - half * 3n]);
      const pad = 3 + r.int(5);
      const scaled = base * 10n ** BigInt(pad) + BigInt(r.pick([-1, 0, 0, 1]));
      if (scaled <= 0n || scaled >= one * 10n ** BigInt(pad)) continue;
      const text = `${r.chance(0.2) ? '-' : ''}${v}.${dec(scaled, d + pad)}`;
      const fallbacksBefore = wasm.fallbacks;
      same(`{"property_id":${text},"ts":1}`);
      same(`{"property_id":"p","ts":${text}}`);
      same(`{"property_id":"p","ts":${text.replace('-', '')}e-3}`);
      if (k >= 35) assert.equal(wasm.fallbacks, fallbacksBefore, `fell back on ${text}`);
      else if (wasm.fallbacks === fallbacksBefore) decidedBelow35++;
    }
    assert.ok(decidedBelow35 > 0);
  });

  test('mutation fuzzer: 60k mutated lines', () => {
    const r = new Rand(0xf022);
    const seeds = Array.from({ length: 300 }, () => enc.encode(realisticLine(r)));
    const interesting = [...enc.encode('"\\{}[],:0-+.eE uUtfn/'), 0, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xff, 0x0a, 0x0d];
    let cases = 0;
    for (let i = 0; i < 60000; i++) {
      const bytes = [...seeds[r.int(seeds.length)]];
      for (let m = 1 + r.int(3); m > 0; m--) {
        const at = r.int(bytes.length + 1);
        switch (r.int(6)) {
          case 0:
            if (at < bytes.length) bytes[at] ^= 1 << r.int(8);
            break;
          case 1:
            bytes.splice(at, 0, r.chance(0.7) ? r.pick(interesting) : r.int(256));
            break;
          case 2:
            bytes.splice(at, 1 + r.int(3));
            break;
          case 3:
            if (at < bytes.length) bytes[at] = r.pick(interesting);
            break;
          case 4: {
            const from = r.int(bytes.length + 1);
            bytes.splice(at, 0, ...bytes.slice(from, from + 1 + r.int(12)));
            break;
          }
          default:
            bytes.splice(at, 0, ...enc.encode(r.pick(['\\u', '\\ud800', '\\udc00', '"ts":', '"property_id":', 'null', '1e5', '.5', '[', '{"a":'])));
        }
      }
      same(Uint8Array.from(bytes));
      cases++;
    }
    assert.equal(cases, 60000);
  });
});

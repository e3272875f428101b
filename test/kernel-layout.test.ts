// The parameter blocks JS writes and the WASM kernel reads, checked against the AssemblyScript
// sources: a field moved on one side only would otherwise be read as another field without any
// error. (Counter offsets and the packed record's layout JS reads from the kernel's own exports.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SCOPE_PARAM_FIELDS, paramSlots, scopeSlotValues, DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';

/** `export const NAME: type = <number>` constants of an assembly/ source file. */
function constants(file: string): Map<string, number> {
  const text = readFileSync(new URL(`../assembly/${file}`, import.meta.url), 'utf8');
  const out = new Map<string, number>();
  for (const m of text.matchAll(/export const (\w+): \w+ = (\d+);/g)) out.set(m[1], Number(m[2]));
  return out;
}

test('parameter blocks: fields per scope and the global slots fit assembly/params.ts', () => {
  const p = constants('params.ts');
  assert.equal(p.get('SCOPE_FIELDS'), SCOPE_PARAM_FIELDS);
  for (const [name, slot] of [['P_TICK_MS', 0], ['P_OOO_MS', 1], ['P_LATE_DROP', 2], ['P_SWEEP_MS', 3], ['P_DEDUP_MS', 4], ['P_DEDUP_VIEWS', 5]] as const) {
    assert.equal(p.get(name), slot, name);
  }
  const scopeFields = [...p.entries()].filter(([k]) => k.startsWith('S_')).map(([, v]) => v);
  assert.ok(Math.max(...scopeFields) < SCOPE_PARAM_FIELDS, 'a scope field beyond the block');
  // Every scope field the kernel reads is written: slot 16 + scope * fields + field for both scopes.
  const written = new Set(paramSlots(DEFAULT_DETECTION_PARAMS).map(([i]) => i));
  for (const f of scopeFields) for (const scope of [0, 1]) assert.ok(written.has(16 + scope * SCOPE_PARAM_FIELDS + f), `scope ${scope} field ${f} is never written`);
  // Each value JS writes sits at the slot of the kernel constant it is named after, and every constant has one.
  const names = scopeSlotValues(DEFAULT_DETECTION_PARAMS.property).map(([name]) => name);
  names.forEach((name, slot) => assert.equal(p.get(name), slot, `${name}: JS writes it at slot ${slot}, the kernel reads slot ${p.get(name)}`));
  assert.deepEqual([...p.keys()].filter((k) => k.startsWith('S_')).sort(), [...names].sort());
});

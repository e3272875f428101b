import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../src/config/config.ts';
import { DEFAULT_DETECTION_PARAMS } from '../src/kernel/detection-params.ts';

test('defaults: demo source, validated detection defaults', () => {
  const c = loadConfig({});
  assert.equal(c.source, 'demo');
  assert.equal(c.keyGroups, 128);
  assert.deepEqual(c.params, DEFAULT_DETECTION_PARAMS);
  assert.equal(c.idleAdvance, true);
  assert.equal(c.fieldNames.errorType, 'error_type');
});

test('every problem is reported at once, with the variable name', () => {
  let err: unknown;
  try {
    loadConfig({
      VIGIL_SOURCE: 'kafkaa', VIGIL_WORKERS: 'two', VIGIL_CHUNK_BYTES: '12', VIGIL_LOG_LEVEL: 'loud',
      VIGIL_DETECTION: '{"property":{"minEffectRatio":0.5}}', VIGIL_CHECKPOINTS: 'maybe',
    });
  } catch (e) { err = e; }
  assert.ok(err instanceof ConfigError);
  const msg = (err as Error).message;
  for (const needle of ['VIGIL_SOURCE', 'VIGIL_WORKERS', 'VIGIL_CHUNK_BYTES', 'VIGIL_LOG_LEVEL', 'property.minEffectRatio', 'VIGIL_CHECKPOINTS']) {
    assert.ok(msg.includes(needle), `${needle} missing from: ${msg}`);
  }
  assert.equal((err as ConfigError).problems.length, 6);
});

test('file source needs a file; detection overrides merge per scope; field names map', () => {
  assert.throws(() => loadConfig({ VIGIL_SOURCE: 'file' }), /VIGIL_SOURCE_FILE/);
  const c = loadConfig({ VIGIL_DETECTION: '{"property":{"minViews":500}}', VIGIL_FIELD_ERROR_TYPE: 'player_error_code' });
  assert.equal(c.params.property.minViews, 500);
  assert.equal(c.params.property.minFailures, DEFAULT_DETECTION_PARAMS.property.minFailures);
  assert.equal(c.params.title.minViews, DEFAULT_DETECTION_PARAMS.title.minViews);
  assert.equal(c.fieldNames.errorType, 'player_error_code');
  assert.throws(() => loadConfig({ VIGIL_DETECTION: '{nope' }), /VIGIL_DETECTION: not valid JSON/);
});

// The image's recipe, checked without building it (a build takes minutes and a container runtime;
// README's Docker section says how the image itself was checked): what the Dockerfile promises
// must agree with the project it packages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';

const ROOT = join(import.meta.dirname, '..');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string };
// Instructions with their continuation lines joined, comments dropped.
const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
const runtimeStage = instructions.slice(instructions.map((l) => l.startsWith('FROM ')).lastIndexOf(true));

test('the runtime stage: labels with the package version and license, the default port exposed, a HEALTHCHECK without curl', () => {
  const label = (name: string) => new RegExp(`${name.replaceAll('.', '\\.')}="([^"]*)"`).exec(runtimeStage.find((l) => l.startsWith('LABEL ')) ?? '')?.[1];
  assert.equal(/^ARG VERSION=(.+)$/m.exec(runtimeStage.join('\n'))?.[1], pkg.version, 'ARG VERSION follows package.json');
  assert.equal(label('org.opencontainers.image.version'), '$VERSION');
  assert.equal(label('org.opencontainers.image.licenses'), pkg.license);
  for (const name of ['title', 'description', 'revision', 'created', 'base.name']) assert.ok(label(`org.opencontainers.image.${name}`), name);
  const port = loadConfig({}).http.port;
  assert.ok(runtimeStage.includes(`EXPOSE ${port}`), `EXPOSE ${port}`);
  const health = runtimeStage.find((l) => l.startsWith('HEALTHCHECK '));
  assert.match(health ?? '', /CMD \["node", "bin\/vigil\.js", "healthcheck"\]$/);
  assert.doesNotMatch(instructions.join('\n'), /\b(curl|wget)\b/, 'the image has neither');
  assert.ok(runtimeStage.includes('USER node'));
});

test('.dockerignore lets in exactly what the build stage copies (an allowlist: no .services/, node_modules or .git)', () => {
  const rules = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  assert.equal(rules[0], '*', 'everything is left out first');
  const allowed = new Set(rules.slice(1).map((r) => { assert.match(r, /^![^*]+$/, `${r}: only plain re-inclusions`); return r.slice(1); }));
  const copied = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from=')).flatMap((l) => l.split(/\s+/).slice(1, -1));
  assert.ok(copied.length >= 5);
  for (const path of copied) {
    assert.ok(allowed.has(path), `${path} is copied but left out of the context`);
    assert.ok(existsSync(join(ROOT, path)), `${path} exists`);
  }
  for (const path of allowed) assert.ok(copied.includes(path), `${path} is let in but never copied`);
});

test('the uWebSockets.js binary the image keeps is the one this Node loads', () => {
  // The build stage deletes every other binary and fails when this one is missing.
  const keep = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  assert.ok(existsSync(join(ROOT, 'node_modules', 'uWebSockets.js', 'binaries', keep)), `${keep} is shipped by the pinned uWebSockets.js`);
  assert.match(dockerfile, /keep="uws_\$\(node -p 'process\.platform \+ "_" \+ process\.arch \+ "_" \+ process\.versions\.modules'\)\.node"/);
});

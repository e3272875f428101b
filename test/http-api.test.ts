import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceEnv } from './support/services-env.ts';
import { startHarness, verdict, T0, MIN, type Harness } from './support/http-harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness({ VIGIL_HTTP_MAX_BODY_BYTES: '1024' });
  // Two occurrences of 177/networkError (the first resolved), a title incident, and another property.
  h.manager.applyBatch([verdict('open', T0 - 120 * MIN)]);
  h.manager.applyBatch([verdict('resolve', T0 - 97 * MIN)]);
  h.manager.applyBatch([verdict('open', T0), verdict('open', T0, { scope: 'title', errorRatio: 0.86 }), verdict('open', T0, { propertyId: '200', errorType: 'decodeError' })]);
  h.manager.applyBatch([verdict('update', T0 + 2 * MIN, { errorRatio: 0.25, impactedViews: 400 })]);
});
after(() => h.close());

const get = async (path: string, init?: RequestInit) => {
  const res = await fetch(h.base + path, init);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text() };
};

test('ids are decimal only: 0x2, 2e0, +2, 02 are 400, not incident 2', async () => {
  assert.equal((await get('/api/incidents/2')).status, 200);
  for (const id of ['0x2', '2e0', '+2', '02', '2.0', '0b10', '%202']) {
    const r = await get(`/api/incidents/${id}`);
    assert.equal(r.status, 400, `/api/incidents/${id}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'BAD_REQUEST');
    assert.equal((await get(`/api/incidents/${id}/silence`, { method: 'POST' })).status, 400);
  }
  for (const q of ['cursor=0x3', 'limit=0x1', 'limit=1e0']) assert.equal((await get(`/api/incidents?${q}`)).status, 400, q);
  assert.equal((await get('/api/incidents?limit=1')).body.incidents.length, 1);
});

test('OpenAPI document lists exactly the routes the server registers', async () => {
  const { status, body } = await get('/api/openapi.json');
  assert.equal(status, 200);
  const documented = Object.entries(body.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
  assert.deepEqual(documented, [...h.server.routes].sort());
});

test('every documented operation answers with a documented status and the schema\'s required fields', async () => {
  const doc = (await get('/api/openapi.json')).body;
  const schemas = doc.components.schemas;
  const concrete = (p: string) => p.replace('/api/incidents/{id}', '/api/incidents/2').replace('/api/properties/{id}', '/api/properties/177');
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> }>>)) {
    if (path === '/feed') continue; // a WebSocket upgrade: test/feed.test.ts
    for (const [method, op] of Object.entries(ops)) {
      const r = await get(concrete(path), { method: method.toUpperCase(), body: method === 'post' ? '{"command":"status"}' : undefined });
      const documented = op.responses[String(r.status)];
      assert.ok(documented, `${method} ${path} answered ${r.status}, not documented`);
      const ref = documented.content?.['application/json']?.schema?.$ref;
      if (ref) {
        const schema = schemas[ref.split('/').pop()!];
        for (const field of schema.required ?? []) assert.ok(field in r.body, `${method} ${path}: ${field} missing`);
      }
    }
  }
});

test('list: filters, newest first, cursor pagination', async () => {
  const all = (await get('/api/incidents')).body;
  assert.deepEqual(all.incidents.map((i: { id: number }) => i.id), [4, 3, 2, 1]);
  assert.deepEqual((await get('/api/incidents?status=open')).body.incidents.map((i: { id: number }) => i.id), [4, 3, 2]);
  assert.deepEqual((await get('/api/incidents?status=resolved')).body.incidents.map((i: { id: number }) => i.id), [1]);
  assert.deepEqual((await get('/api/incidents?property_id=200')).body.incidents.map((i: { id: number }) => i.id), [4]);
  assert.deepEqual((await get('/api/incidents?scope=title')).body.incidents.map((i: { id: number }) => i.id), [3]);
  assert.deepEqual((await get('/api/incidents?error_type=decodeError')).body.incidents.map((i: { id: number }) => i.id), [4]);
  // q: text in the property id, the title or the error type, ASCII letters in any case.
  const search = async (q: string) => (await get(`/api/incidents?q=${encodeURIComponent(q)}`)).body.incidents.map((i: { id: number }) => i.id);
  assert.deepEqual(await search('nLAc'), [3], 'in the title');
  assert.deepEqual(await search('DECODE'), [4], 'in the error type');
  assert.deepEqual(await search('17'), [3, 2, 1], 'in the property id');
  assert.deepEqual(await search('%'), [], 'no pattern characters');
  assert.deepEqual((await get('/api/incidents?q=network&status=open')).body.incidents.map((i: { id: number }) => i.id), [3, 2]);
  assert.deepEqual((await get(`/api/incidents?from=${T0}`)).body.incidents.map((i: { id: number }) => i.id), [4, 3, 2]);
  assert.deepEqual((await get(`/api/incidents?to=${new Date(T0).toISOString()}`)).body.incidents.map((i: { id: number }) => i.id), [1]);
  const p1 = (await get('/api/incidents?limit=3')).body;
  assert.deepEqual(p1.incidents.map((i: { id: number }) => i.id), [4, 3, 2]);
  const p2 = (await get(`/api/incidents?limit=3&cursor=${p1.next_cursor}`)).body;
  assert.deepEqual(p2.incidents.map((i: { id: number }) => i.id), [1]);
  assert.equal(p2.next_cursor, null);
  const bad = await get('/api/incidents?status=nope&limit=0&from=yesterday');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'BAD_REQUEST');
  for (const p of ['status', 'limit', 'from']) assert.match(bad.body.error.message, new RegExp(p));
});

test('detail: trigger, current status, notifications, timeline, other occurrences; wording of the reference', async () => {
  const { status, body } = await get('/api/incidents/2');
  assert.equal(status, 200);
  const i = body.incident;
  assert.equal(i.summary, 'Overall error-rate is significantly high (22.4%) due to an error of networkError');
  assert.deepEqual(i.trigger, { opened_at_ms: T0, error_ratio: 0.224, views_per_hour: 5486, threshold_ratio: 0.147, baseline_ratio: 0.05, min_window_views: 1000 });
  assert.equal(i.current.error_ratio, 0.25);
  assert.equal(i.current.open_for_ms, 2 * MIN);
  assert.equal(i.current.impacted_views, 400);
  assert.equal(i.current.impacted_views_per_hour, 12000);
  assert.equal(i.notifications, 'on');
  assert.deepEqual(body.timeline.map((s: { at_ms: number }) => s.at_ms), [T0, T0 + 2 * MIN]);
  assert.deepEqual(body.other_occurrences, [{ id: 1, status: 'resolved', opened_at_ms: T0 - 120 * MIN, closed_at_ms: T0 - 97 * MIN, duration_ms: 23 * MIN }]);
  assert.equal((await get('/api/incidents/3')).body.incident.summary, 'Video Title Enlace is failing at a significant rate (86.0%) due to an error of networkError');
  const missing = await get('/api/incidents/999');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'NOT_FOUND');
  assert.equal((await get('/api/incidents/abc')).body.error.code, 'BAD_REQUEST');
});

test('silence and unsilence go through the command handler', async () => {
  const before = h.commands.stats.handled;
  const s = await get('/api/incidents/2/silence', { method: 'POST' });
  assert.equal(s.status, 200);
  assert.deepEqual(s.body.result, { incident_id: 2, notifications: 'silenced' });
  assert.equal(h.manager.get(2)!.notifications, 'silenced');
  assert.equal((await get('/api/incidents/2/unsilence', { method: 'POST' })).body.result.notifications, 'on');
  assert.equal(h.commands.stats.handled, before + 2);
  const missing = await get('/api/incidents/999/silence', { method: 'POST' });
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'NOT_FOUND');
  const cmd = await get('/api/commands', { method: 'POST', body: JSON.stringify({ id: 'op-1', command: 'silence', args: { incident_id: 3 } }) });
  assert.equal(cmd.body.ok, true);
  assert.equal(h.manager.get(3)!.notifications, 'silenced');
  const unknown = await get('/api/commands', { method: 'POST', body: '{"command":"launch-rockets"}' });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.error.code, 'UNKNOWN_COMMAND');
});

test('errors are JSON with a stable code: unknown route 404, bad JSON 400, body over the limit 413', async () => {
  const nf = await get('/no/such/route');
  assert.equal(nf.status, 404);
  assert.equal(nf.body.error.code, 'NOT_FOUND');
  assert.equal(nf.body.error.retriable, false);
  const bad = await get('/api/commands', { method: 'POST', body: '{not json' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'BAD_JSON');
  const big = await get('/api/commands', { method: 'POST', body: JSON.stringify({ command: 'status', args: { pad: 'x'.repeat(5000) } }) });
  assert.equal(big.status, 413);
  assert.equal(big.body.error.code, 'BODY_TOO_LARGE');
  // Without a content-length (chunked), the limit is enforced while reading.
  const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${h.base}/api/commands`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    for (let i = 0; i < 8; i++) req.write('y'.repeat(512));
    req.end();
  });
  assert.equal(chunked.status, 413);
  assert.equal(JSON.parse(chunked.body).error.code, 'BODY_TOO_LARGE');
});

test('healthz, readyz; /metrics counts every request by method, route and status code (unknown paths as "unmatched"), passes promtool', async () => {
  assert.deepEqual((await get('/healthz')).body, { ok: true });
  assert.equal((await get('/readyz')).body.ok, true);
  const count = (body: string, labels: string) => Number(new RegExp(`^vigil_http_requests_total\\{${labels.replace(/[/{}]/g, '\\$&')}\\} (\\d+)$`, 'm').exec(body)?.[1] ?? 0);
  const series = ['method="GET",route="/api/incidents/{id}",code="200"', 'method="GET",route="/api/incidents/{id}",code="404"',
    'method="GET",route="unmatched",code="404"', 'method="DELETE",route="/api/incidents",code="405"'];
  const before = (await get('/metrics')).body;
  await get('/api/incidents/2');
  await get('/api/incidents/99999');
  await get('/no/such/path');
  await get('/api/incidents', { method: 'DELETE' });
  const m = await get('/metrics');
  assert.match(m.type, /^text\/plain; version=0\.0\.4/);
  assert.match(m.body, /^# TYPE vigil_feed_clients gauge$/m);
  for (const labels of series) assert.equal(count(m.body, labels) - count(before, labels), 1, labels);
  assert.doesNotMatch(m.body, /code="\dxx"/);
  // What Prometheus itself accepts (parse and lint).
  const promtool = spawnSync(serviceEnv('VIGIL_TEST_PROMTOOL'), ['check', 'metrics'], { input: m.body, encoding: 'utf8' });
  assert.equal(promtool.status, 0, promtool.stdout + promtool.stderr);
});

test('/metrics negotiates OpenMetrics from the Accept header, and the Prometheus text format stays intact after it', async () => {
  const prometheus2 = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
  const om = await get('/metrics', { headers: { accept: prometheus2 } });
  assert.equal(om.type, 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  const lines = (om.body as string).split('\n');
  assert.equal(lines.at(-2), '# EOF');
  assert.equal(lines.at(-1), '');
  // OpenMetrics: the family is named without _total, its samples with it.
  assert.ok(lines.includes('# TYPE vigil_http_requests counter'), 'counter family without _total');
  assert.ok(lines.some((l) => /^vigil_http_requests_total\{method="GET",route="\/metrics",code="200"\} \d+$/.test(l)));
  for (const l of lines.slice(0, -2)) {
    assert.match(l, /^(# (HELP|TYPE|UNIT) [a-zA-Z_:][\w:]* .+|[a-zA-Z_:][\w:]*(\{[a-zA-Z_]\w*="(\\.|[^"\\])*"(,[a-zA-Z_]\w*="(\\.|[^"\\])*")*\})? (-?[\d.]+(e[+-]?\d+)?|NaN|[+-]Inf))$/, l);
  }
  for (const accept of [undefined, '*/*', 'text/plain', 'application/openmetrics-text;q=0.2,text/plain;q=0.9']) {
    const text = await get('/metrics', accept ? { headers: { accept } } : undefined);
    assert.match(text.type, /^text\/plain; version=0\.0\.4/, String(accept));
    assert.match(text.body, /^# TYPE vigil_http_requests_total counter$/m, 'the counter keeps its name after an OpenMetrics scrape');
    assert.doesNotMatch(text.body, /# EOF/);
  }
});

test('a known path with another method: 405 METHOD_NOT_ALLOWED naming the allowed methods (Allow header), pages too; unknown paths 404', async () => {
  for (const [method, path, allow] of [['DELETE', '/api/incidents', 'GET, HEAD'], ['POST', '/api/incidents/2', 'GET, HEAD'], ['GET', '/api/incidents/2/silence', 'POST'],
    ['PUT', '/healthz', 'GET, HEAD'], ['POST', '/metrics', 'GET, HEAD'], ['GET', '/api/commands', 'POST'], ['POST', '/', 'GET, HEAD'], ['DELETE', '/static/app.css', 'GET, HEAD']] as const) {
    const res = await fetch(h.base + path, { method });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
    const body = await res.json();
    assert.equal(body.error.code, 'METHOD_NOT_ALLOWED');
    assert.match(body.error.message, new RegExp(`^${method} is not allowed on `));
  }
  const none = await get('/api/nothing-here', { method: 'POST', body: '{}' });
  assert.equal(none.status, 404);
  assert.equal(none.body.error.code, 'NOT_FOUND');
});

test('HEAD wherever GET is: the same status and headers, the body\'s length, no body', async () => {
  for (const path of ['/api/incidents', '/api/incidents/2', '/healthz', '/metrics', '/', '/static/app.css', '/api/incidents/999999']) {
    const g = await fetch(h.base + path);
    const gBody = Buffer.from(await g.arrayBuffer());
    const hd = await fetch(h.base + path, { method: 'HEAD' });
    assert.equal(hd.status, g.status, path);
    assert.equal(hd.headers.get('content-type'), g.headers.get('content-type'), path);
    assert.equal((await hd.arrayBuffer()).byteLength, 0, path);
    // /metrics moves between the two requests (it counts them): only its length's presence is compared.
    if (path === '/metrics') assert.ok(Number(hd.headers.get('content-length')) > 0, path);
    else assert.equal(Number(hd.headers.get('content-length')), gBody.byteLength, path);
  }
});

test('the OpenAPI document passes redocly lint (recommended rules) with no error and no warning, run offline', async () => {
  const doc = (await get('/api/openapi.json')).body;
  assert.deepEqual(doc.servers, [{ url: h.base.replace('127.0.0.1', '127.0.0.1'), description: 'this Vigil' }]);
  const file = join(mkdtempSync(join(tmpdir(), 'vigil-openapi-')), 'openapi.json');
  writeFileSync(file, JSON.stringify(doc));
  const redocly = join(import.meta.dirname, '..', 'node_modules', '.bin', 'redocly');
  // No telemetry, no update check: the lint needs nothing beyond this machine.
  const r = spawnSync(redocly, ['lint', file, '--format', 'json'], {
    encoding: 'utf8', timeout: 120_000, env: { PATH: process.env.PATH, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_UPDATE_NOTIFIER: '1' },
  });
  const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { totals: { errors: number; warnings: number }; problems: Array<{ ruleId: string; message: string }> };
  assert.deepEqual(report.totals, { ...report.totals, errors: 0, warnings: 0 }, report.problems.map((p) => `${p.ruleId}: ${p.message}`).join('\n'));
  assert.equal(r.status, 0, r.stderr);
  // Public operations say they need no token; every operation has an id.
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { operationId: string; security: unknown[] }>>)) {
    for (const op of Object.values(ops)) {
      assert.ok(op.operationId, path);
      assert.equal(op.security.length === 0, ['/healthz', '/readyz', '/metrics', '/api/openapi.json'].includes(path), path);
    }
  }
});

test('error rates of a property: figures of its incidents when no engine is attached', async () => {
  const r = (await get('/api/properties/177/error-rates')).body;
  assert.equal(r.source, 'incidents');
  assert.deepEqual(r.error_types.map((e: { error_type: string; incident_id: number }) => [e.error_type, e.incident_id]), [['networkError', 2]]);
  assert.deepEqual(r.worst_titles.map((e: { video_title: string }) => e.video_title), ['Enlace']);
});

test('dashboard pages and assets are served locally with a same-origin CSP', async () => {
  for (const path of ['/', '/incidents/2', '/properties/177/incidents/2', '/static/app.css', '/static/list.js', '/static/incident.js', '/static/common.js']) {
    const res = await fetch(h.base + path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const text = await res.text();
    assert.doesNotMatch(text, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${path} references an external URL`);
  }
  assert.equal((await fetch(h.base + '/static/../package.json')).status, 404);
});

test('a port in use fails start with HTTP_LISTEN_FAILED', async () => {
  await assert.rejects(startHarness({ VIGIL_HTTP_PORT: String(h.server.port) }), (err: Error & { code?: string }) =>
    err.code === 'HTTP_LISTEN_FAILED' && /cannot listen on 127\.0\.0\.1:\d+/.test(err.message));
});

test('notification settings: receivers with their routes (no URL path, secret or routing key) and active silences, admin only; an incident names the receivers that route it', async () => {
  const receivers = [
    { name: 'team-slack', type: 'slack', url: 'https://hooks.slack.example/services/T0/B0/SLACKSECRETPATH', match: { property_id: ['177'], scope: ['property'] }, repeat_interval_ms: 3_600_000 },
    { name: 'oncall', type: 'pagerduty', url: 'https://events.pagerduty.example/v2/enqueue', routing_key: 'ROUTINGKEYSECRET', match: { scope: ['title'] } },
    { name: 'hook', type: 'webhook', url: 'https://ops.example:8443/vigil/hook?token=QUERYSECRET', secret: 'HMACSECRET' },
  ];
  const admin = 'admin-token-0123456789';
  const reader = 'reader-token-0123456789';
  const s = await startHarness({ VIGIL_NOTIFY_RECEIVERS: JSON.stringify({ receivers }), VIGIL_ADMIN_TOKEN: admin, VIGIL_READ_TOKENS: `${reader}=177` });
  try {
    s.manager.applyBatch([verdict('open', T0), verdict('open', T0, { scope: 'title' }), verdict('open', T0, { propertyId: 'pbs' })]);
    s.silences.add({ propertyId: 'pbs', videoTitle: null, errorType: 'networkError', scope: null }, T0 + 60 * MIN, 'CDN migration', T0);
    const as = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
    const res = await fetch(`${s.base}/api/notification-settings`, as(admin));
    assert.equal(res.status, 200);
    const text = await res.text();
    for (const secret of ['SLACKSECRETPATH', 'ROUTINGKEYSECRET', 'QUERYSECRET', 'HMACSECRET', '/services/', '/vigil/hook']) assert.ok(!text.includes(secret), `${secret} leaked`);
    const body = JSON.parse(text);
    assert.deepEqual(body.receivers.map((r: { name: string; type: string; endpoint: string }) => [r.name, r.type, r.endpoint]), [
      ['team-slack', 'slack', 'https://hooks.slack.example'], ['oncall', 'pagerduty', 'https://events.pagerduty.example'], ['hook', 'webhook', 'https://ops.example:8443'],
    ]);
    assert.deepEqual(body.receivers[0].match, { property_id: ['177'], video_title: null, error_type: null, scope: ['property'] });
    assert.equal(body.receivers[0].repeat_interval_ms, 3_600_000);
    assert.deepEqual(body.receivers[1].severity, { property: 'critical', title: 'error' });
    assert.equal(body.receivers[2].signed, true);
    assert.deepEqual(body.silences.map((x: { id: number; property_id: string; error_type: string; comment: string; expires_at_ms: number }) => [x.property_id, x.error_type, x.comment, x.expires_at_ms]),
      [['pbs', 'networkError', 'CDN migration', T0 + 60 * MIN]]);
    assert.equal((await fetch(`${s.base}/api/notification-settings`, as(reader))).status, 403, 'routes and silences name other properties');
    assert.equal((await fetch(`${s.base}/api/notification-settings`)).status, 401);

    const routed = async (id: number) => (await (await fetch(`${s.base}/api/incidents/${id}`, as(admin))).json()) as { receivers: { name: string }[]; receivers_configured: number };
    assert.deepEqual((await routed(1)).receivers, [{ name: 'team-slack', type: 'slack' }, { name: 'hook', type: 'webhook' }]);
    assert.deepEqual((await routed(2)).receivers.map((r) => r.name), ['oncall', 'hook']);
    const pbs = await routed(3);
    assert.deepEqual(pbs.receivers.map((r) => r.name), ['hook']);
    assert.equal(pbs.receivers_configured, 3);
  } finally {
    s.close();
  }
  const none = (await get('/api/incidents/2')).body;
  assert.deepEqual([none.receivers, none.receivers_configured], [[], 0], 'no receiver configured');
});

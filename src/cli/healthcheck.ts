import { request } from 'node:http';
import type { HttpConfig } from '../config/http-config.ts';

/** What one probe found: the status code, or why there was none. */
export interface ProbeResult {
  ok: boolean;
  detail: string;
}

// A daemon listening on every interface (0.0.0.0, ::) is probed through the loopback of the same family.
function probeHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/**
 * GETs /readyz (or /healthz) of the daemon that `http` configures, from the same machine or container:
 * ok when it answers 200 within `timeoutMs`. Used by the image's HEALTHCHECK, so it needs no curl.
 */
export function probe(http: HttpConfig, path: '/readyz' | '/healthz', timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = request({ host: probeHost(http.host), port: http.port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { if (body.length < 4096) body += d; });
      res.on('end', () => resolve({ ok: res.statusCode === 200, detail: `${path} ${res.statusCode}: ${body.trim()}` }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, detail: `${path}: ${err.message}` }));
    req.end();
  });
}

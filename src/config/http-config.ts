import { readFileSync } from 'node:fs';
import { EnvReader } from './env-reader.ts';

/** What a request may see and do: an admin sees everything and may run commands; a reader sees only its properties. */
export interface AccessGrant {
  admin: boolean;
  /** Properties a read token may see; null means all (admin, or no tokens configured). */
  properties: ReadonlySet<string> | null;
}

/** The HTTP API, feed and dashboard settings. */
export interface HttpConfig {
  /** False disables the server (VIGIL_HTTP=false). */
  enabled: boolean;
  host: string;
  /** 0 picks a free port (tests); the chosen port is logged. */
  port: number;
  /** Token -> grant; empty when no tokens are configured (then everything is open, loopback only). */
  tokens: ReadonlyMap<string, AccessGrant>;
  maxBodyBytes: number;
  /** A feed client whose unsent bytes pass this is dropped with close code 4008. */
  feedMaxBufferedBytes: number;
  /** At most one `updated` delta per incident per this interval (0: every update). */
  feedUpdateIntervalMs: number;
  /** Public base URL of the dashboard (for links in notifications); defaults to http://host:port. */
  publicUrl: string | null;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** True when a host only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Reads the VIGIL_HTTP_* and token variables from the environment object config.ts hands over
 * (this file never touches process.env) and appends every problem to `problems` (loadConfig passes
 * its own reader, whose problems are the same list, so that it knows every name read).
 */
export function parseHttpConfig(env: NodeJS.ProcessEnv, problems: string[], reader = new EnvReader(env, problems)): HttpConfig {
  const str = (name: string): string | null => reader.str(name);
  const int = (name: string, def: number, min: number, max: number): number => reader.int(name, def, min, max);
  const enabledRaw = (str('VIGIL_HTTP') ?? 'true').toLowerCase();
  if (!['true', 'false', '1', '0', 'on', 'off', 'yes', 'no'].includes(enabledRaw)) problems.push(`VIGIL_HTTP: expected true or false, got ${JSON.stringify(enabledRaw)}`);
  const enabled = !['false', '0', 'off', 'no'].includes(enabledRaw);
  const host = str('VIGIL_HTTP_HOST') ?? '127.0.0.1';
  const tokens = new Map<string, AccessGrant>();

  const admin = str('VIGIL_ADMIN_TOKEN');
  if (admin !== null) addToken(tokens, admin, { admin: true, properties: null }, 'VIGIL_ADMIN_TOKEN', problems);
  const read = str('VIGIL_READ_TOKENS');
  if (read !== null) parseReadTokens(read, 'VIGIL_READ_TOKENS', tokens, problems);
  const file = str('VIGIL_TOKENS_FILE');
  if (file !== null) parseTokensFile(file, tokens, problems);

  if (enabled && tokens.size === 0 && !isLoopbackHost(host)) {
    problems.push(`VIGIL_HTTP_HOST: refusing to listen on ${host} (beyond loopback) with no tokens; set VIGIL_ADMIN_TOKEN / VIGIL_READ_TOKENS / VIGIL_TOKENS_FILE, or listen on 127.0.0.1`);
  }
  return {
    enabled,
    host,
    port: int('VIGIL_HTTP_PORT', 8080, 0, 65535),
    tokens,
    maxBodyBytes: int('VIGIL_HTTP_MAX_BODY_BYTES', 64 * 1024, 256, 16 << 20),
    feedMaxBufferedBytes: int('VIGIL_FEED_MAX_BUFFERED_BYTES', 256 * 1024, 1024, 64 << 20),
    feedUpdateIntervalMs: int('VIGIL_FEED_UPDATE_MS', 2000, 0, 600_000),
    publicUrl: str('VIGIL_PUBLIC_URL'),
  };
}

// A token shorter than 16 characters is guessable; a duplicate would make its grant ambiguous.
function addToken(tokens: Map<string, AccessGrant>, token: string, grant: AccessGrant, where: string, problems: string[]): void {
  if (token.length < 16 || /\s/.test(token)) {
    problems.push(`${where}: a token must be at least 16 characters without spaces`);
    return;
  }
  if (tokens.has(token)) {
    problems.push(`${where}: the same token is configured twice`);
    return;
  }
  tokens.set(token, grant);
}

// "TOKEN=prop1,prop2;TOKEN2=prop3"
function parseReadTokens(text: string, where: string, tokens: Map<string, AccessGrant>, problems: string[]): void {
  for (const entry of text.split(';').map((s) => s.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const props = eq < 0 ? [] : entry.slice(eq + 1).split(',').map((s) => s.trim()).filter(Boolean);
    if (eq < 0 || props.length === 0) {
      problems.push(`${where}: expected TOKEN=property[,property...] entries separated by ';'`);
      continue;
    }
    addToken(tokens, entry.slice(0, eq), { admin: false, properties: new Set(props) }, where, problems);
  }
}

// {"admin": ["token"], "read": {"token": ["property", ...]}}
function parseTokensFile(path: string, tokens: Map<string, AccessGrant>, problems: string[]): void {
  const where = `VIGIL_TOKENS_FILE (${path})`;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    problems.push(`${where}: cannot read JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    return;
  }
  const d = doc as { admin?: unknown; read?: unknown };
  const admins = d?.admin === undefined ? [] : d.admin;
  if (!Array.isArray(admins) || admins.some((t) => typeof t !== 'string')) problems.push(`${where}: "admin" must be an array of token strings`);
  else for (const t of admins as string[]) addToken(tokens, t, { admin: true, properties: null }, where, problems);
  const readers = d?.read === undefined ? {} : d.read;
  if (readers === null || typeof readers !== 'object' || Array.isArray(readers)) {
    problems.push(`${where}: "read" must be an object {token: [property, ...]}`);
    return;
  }
  for (const [t, props] of Object.entries(readers)) {
    if (!Array.isArray(props) || props.length === 0 || props.some((p) => typeof p !== 'string')) {
      problems.push(`${where}: read token entries must list at least one property id string`);
      continue;
    }
    addToken(tokens, t, { admin: false, properties: new Set(props as string[]) }, where, problems);
  }
}

import { readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The dashboard's files: src/dashboard, found from src/http or dist/http alike (the package ships src/dashboard). */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../src/dashboard/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml', '.ico': 'image/x-icon', '.json': 'application/json',
};

/** One file ready to serve. */
export interface StaticFile {
  body: Buffer;
  contentType: string;
}

/** Reads every dashboard file into memory once (a few KiB): no file system access per request, no path traversal. */
export function loadStaticFiles(dir: string = DASHBOARD_DIR): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { body: readFileSync(join(dir, name)), contentType: type });
  }
  return files;
}

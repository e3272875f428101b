import { readFileSync } from 'node:fs';

/** Vigil's version: package.json's, read once (found from src/ and dist/ alike). */
export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

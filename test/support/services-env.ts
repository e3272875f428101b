/** The VIGIL_TEST_* variable that `npm run services:up` / `services.sh env` provides; a missing one fails the test loudly. */
export function serviceEnv(name: string): string {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: this integration test needs the real services. Run \`npm run services:up\` and ` +
      '`eval "$(bash scripts/services.sh env)"` first (npm test does both).');
  }
  return v;
}

/** Polls `cond` until it holds, at most `timeoutMs` (never a fixed sleep in place of a condition). */
export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000, stepMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

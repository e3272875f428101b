const HOUR_MS = 3_600_000;
// Viewing peaks in the evening UTC (Americas afternoon, Europe evening).
const PEAK_HOUR_UTC = 20;

/** Traffic multiplier at an instant: 1 + amplitude * cos(...), peaking at 20:00 UTC and lowest at 08:00 UTC. */
export function dailyCycle(atMs: number, amplitude: number): number {
  const hourOfDay = (((atMs % (24 * HOUR_MS)) + 24 * HOUR_MS) % (24 * HOUR_MS)) / HOUR_MS;
  return 1 + amplitude * Math.cos((2 * Math.PI * (hourOfDay - PEAK_HOUR_UTC)) / 24);
}

import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';

// Compares the incidents of two transition streams in the replay format (vigil replay's output, a
// daemon's VIGIL_TRANSITIONS_FILE): what the stream of a live source must give against the replay.

/** One incident reconstructed from its transitions. */
export interface IncidentSpan {
  key: string;
  openedAtMs: number;
  /** Close time and how it closed; null while open. */
  closedAtMs: number | null;
  closedAs: 'resolved' | 'expired' | null;
}

/** The outcome of a comparison. */
export interface IncidentComparison {
  expected: number;
  /** Opened within the tolerance, and closed the same way within it (or both still open). */
  matched: number;
  /** Expected incidents with no counterpart (key and opening within the tolerance). */
  missing: IncidentSpan[];
  /** Incidents of the stream that the expected ones do not have. */
  extra: IncidentSpan[];
  /** Pairs whose opening matched but whose closing did not. */
  closeDiffers: Array<{ expected: IncidentSpan; actual: IncidentSpan }>;
}

/** Parses NDJSON transitions (replay format) into incidents, in opening order. */
export function incidentSpans(ndjson: string): IncidentSpan[] {
  const byId = new Map<number, IncidentSpan>();
  for (const line of ndjson.split('\n')) {
    if (!line.trim()) continue;
    const t = JSON.parse(line) as { type: string; incident_id: number; scope: string; property_id: string; video_title?: string; error_type: string; at: string; opened_at: string };
    const key = JSON.stringify([t.scope, String(t.property_id), t.video_title ?? null, t.error_type]);
    let span = byId.get(t.incident_id);
    if (!span) {
      span = { key, openedAtMs: Date.parse(t.opened_at), closedAtMs: null, closedAs: null };
      byId.set(t.incident_id, span);
    }
    if (t.type === 'resolved' || t.type === 'expired') {
      span.closedAtMs = Date.parse(t.at);
      span.closedAs = t.type;
    }
  }
  return [...byId.values()].sort((a, b) => a.openedAtMs - b.openedAtMs || a.key.localeCompare(b.key));
}

/**
 * Pairs the incidents of `actual` with those of `expected` by key and opening time within
 * `toleranceMs` (one evaluation tick). Only incidents opened before `untilMs` count on either side,
 * and closes after it are treated as still open (the stream stopped there; a replay's end evaluates further).
 */
export function compareIncidents(expected: IncidentSpan[], actual: IncidentSpan[], toleranceMs: number, untilMs = Infinity): IncidentComparison {
  const clip = (s: IncidentSpan): IncidentSpan => (s.closedAtMs !== null && s.closedAtMs > untilMs ? { ...s, closedAtMs: null, closedAs: null } : s);
  const exp = expected.filter((s) => s.openedAtMs <= untilMs).map(clip);
  const act = actual.filter((s) => s.openedAtMs <= untilMs).map(clip);
  const used = new Set<number>();
  const out: IncidentComparison = { expected: exp.length, matched: 0, missing: [], extra: [], closeDiffers: [] };
  for (const e of exp) {
    let best = -1;
    for (let i = 0; i < act.length; i++) {
      if (used.has(i) || act[i].key !== e.key || Math.abs(act[i].openedAtMs - e.openedAtMs) > toleranceMs) continue;
      if (best < 0 || Math.abs(act[i].openedAtMs - e.openedAtMs) < Math.abs(act[best].openedAtMs - e.openedAtMs)) best = i;
    }
    if (best < 0) { out.missing.push(e); continue; }
    used.add(best);
    const a = act[best];
    const sameClose = (a.closedAtMs === null && e.closedAtMs === null)
      || (a.closedAtMs !== null && e.closedAtMs !== null && a.closedAs === e.closedAs && Math.abs(a.closedAtMs - e.closedAtMs) <= toleranceMs);
    if (sameClose) out.matched++;
    else out.closeDiffers.push({ expected: e, actual: a });
  }
  act.forEach((a, i) => { if (!used.has(i)) out.extra.push(a); });
  return out;
}

/** A one-line account of a comparison for assertion messages and reports. */
/**
 * The union of several nodes' incidents by identity (key, opening within `toleranceMs`): one incident
 * may be in several stores (a task's re-derived tail on its new owner, an incident taken over from a
 * checkpoint); its closing is the one any of them has. Closings that disagree are returned.
 */
export function unionByIdentity(nodes: ReadonlyArray<{ name: string; spans(): IncidentSpan[] }>, toleranceMs: number): { spans: IncidentSpan[]; conflicts: string[] } {
  const out: IncidentSpan[] = [];
  const conflicts: string[] = [];
  for (const n of nodes) {
    for (const s of n.spans()) {
      const same = out.find((o) => o.key === s.key && Math.abs(o.openedAtMs - s.openedAtMs) <= toleranceMs);
      if (!same) { out.push({ ...s }); continue; }
      if (s.closedAtMs === null) continue;
      if (same.closedAtMs === null) { same.closedAtMs = s.closedAtMs; same.closedAs = s.closedAs; continue; }
      if (same.closedAs !== s.closedAs || Math.abs(same.closedAtMs - s.closedAtMs) > toleranceMs) {
        conflicts.push(`${s.key} opened ${new Date(s.openedAtMs).toISOString()}: ${same.closedAs} ${new Date(same.closedAtMs).toISOString()} vs ${s.closedAs} at ${n.name} ${new Date(s.closedAtMs).toISOString()}`);
      }
    }
  }
  return { spans: out.sort((a, b) => a.openedAtMs - b.openedAtMs), conflicts };
}

export function describeComparison(c: IncidentComparison): string {
  const fmt = (s: IncidentSpan) => `${s.key} opened ${new Date(s.openedAtMs).toISOString()} closed ${s.closedAtMs === null ? '-' : new Date(s.closedAtMs).toISOString()}`;
  return `${c.matched}/${c.expected} matched, ${c.missing.length} missing, ${c.extra.length} extra, ${c.closeDiffers.length} closed differently`
    + (c.missing.length ? `; first missing: ${fmt(c.missing[0])}` : '')
    + (c.extra.length ? `; first extra: ${fmt(c.extra[0])}` : '')
    + (c.closeDiffers.length ? `; first close differs: ${fmt(c.closeDiffers[0].expected)} vs ${fmt(c.closeDiffers[0].actual)}` : '');
}

/**
 * The incident database of `dataDir` holds exactly the audit file's incidents (`audit`, the replay
 * format): the same ids, none skipped or repeated, with the same statuses, opening and closing times.
 */
export function assertDatabaseAgrees(dataDir: string, audit: string, what = ''): void {
  const fromAudit = new Map<number, { opened: number; closed: number | null; status: string }>();
  for (const l of audit.split('\n').filter(Boolean)) {
    const t = JSON.parse(l) as { type: string; incident_id: number; at: string; opened_at: string };
    const e = fromAudit.get(t.incident_id) ?? { opened: Date.parse(t.opened_at), closed: null, status: 'open' };
    if (t.type !== 'opened') { e.closed = Date.parse(t.at); e.status = t.type; }
    fromAudit.set(t.incident_id, e);
  }
  const db = new Database(join(dataDir, 'incidents.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT id, status, opened_at_ms AS openedAtMs, closed_at_ms AS closedAtMs FROM incidents ORDER BY id').all() as
      Array<{ id: number; status: string; openedAtMs: number; closedAtMs: number | null }>;
    assert.deepEqual(rows.map((r) => r.id), [...fromAudit.keys()], `${what}the same incidents in the database and the audit file, no id skipped or repeated`);
    for (const r of rows) assert.deepEqual({ opened: r.openedAtMs, closed: r.closedAtMs, status: r.status }, fromAudit.get(r.id), `${what}incident ${r.id}`);
  } finally {
    db.close();
  }
}

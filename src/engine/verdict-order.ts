import type { Verdict, VerdictKind } from '../kernel/verdict.ts';

const KIND_ORDER: Record<VerdictKind, number> = { open: 0, update: 1, resolve: 2, expire: 3 };

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The engine's total order of verdicts: event time, kind, scope, property, title, error type (code-unit order, locale-free). */
export function compareVerdicts(a: Verdict, b: Verdict): number {
  return a.atMs - b.atMs
    || KIND_ORDER[a.kind] - KIND_ORDER[b.kind]
    || cmp(a.scope, b.scope)
    || cmp(a.propertyId, b.propertyId)
    || cmp(a.videoTitle ?? '', b.videoTitle ?? '')
    || cmp(a.errorType, b.errorType);
}

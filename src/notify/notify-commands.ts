import { CommandFailure, type CommandHandler } from '../control/command-handler.ts';
import type { Silence } from '../silence/silence.ts';
import type { NotificationPipeline } from './notification-pipeline.ts';

const MATCHER_FIELDS = [['property_id', 'propertyId'], ['video_title', 'videoTitle'], ['error_type', 'errorType'], ['scope', 'scope']] as const;
const MAX_SILENCE_MS = 90 * 86_400_000;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A silence as the control API shows it. */
export function silenceView(s: Silence): Record<string, unknown> {
  return {
    silence_id: s.id, property_id: s.propertyId, video_title: s.videoTitle, error_type: s.errorType, scope: s.scope,
    comment: s.comment, created_at: iso(s.createdAtMs), expires_at: iso(s.expiresAtMs), ended_at: iso(s.endedAtMs),
    silenced_incidents: s.silencedIncidents,
  };
}

function matcherProblems(args: Record<string, unknown>): string[] {
  const problems: string[] = [];
  let set = 0;
  for (const [arg] of MATCHER_FIELDS) {
    const v = args[arg];
    if (v === undefined || v === null) continue;
    set++;
    if (typeof v !== 'string' || v.length === 0) problems.push(`args.${arg} must be a non-empty string`);
  }
  if (args.scope !== undefined && args.scope !== null && args.scope !== 'property' && args.scope !== 'title') problems.push('args.scope must be property or title');
  if (set === 0) problems.push('a silence needs at least one of args.property_id, args.video_title, args.error_type, args.scope');
  const d = args.duration_ms;
  const e = args.expires_at;
  if ((d === undefined) === (e === undefined)) problems.push('give exactly one of args.duration_ms or args.expires_at');
  if (d !== undefined && !(Number.isSafeInteger(d) && (d as number) > 0 && (d as number) <= MAX_SILENCE_MS)) problems.push(`args.duration_ms must be an integer from 1 to ${MAX_SILENCE_MS}`);
  if (e !== undefined && (typeof e !== 'string' || Number.isNaN(Date.parse(e)))) problems.push('args.expires_at must be an ISO-8601 time');
  if (args.comment !== undefined && (typeof args.comment !== 'string' || args.comment.length > 1000)) problems.push('args.comment must be a string of at most 1000 characters');
  return problems;
}

/**
 * Registers the notification commands on the daemon's one command handler (so RabbitMQ and the HTTP
 * admin API get them too): silence-matching, unsilence-matching, silences, notifications. Per-incident
 * silence/unsilence stay the built-in 'silence'/'unsilence' commands.
 */
export function registerNotifyCommands(h: CommandHandler, pipeline: NotificationPipeline, now: () => number = Date.now): void {
  const expiry = (args: Record<string, unknown>): number => {
    const expiresAtMs = args.duration_ms !== undefined ? now() + (args.duration_ms as number) : Date.parse(args.expires_at as string);
    if (expiresAtMs <= now()) throw new CommandFailure('INVALID_ARGS', 'args.expires_at is in the past');
    return expiresAtMs;
  };
  h.register('silence-matching', {
    validate: matcherProblems,
    // A cluster's silence ends at one time on every node: the receiving node's clock fixes it.
    share: (args) => {
      const { duration_ms: _relative, ...rest } = args;
      return { ...rest, expires_at: new Date(expiry(args)).toISOString() };
    },
    run: (args, ctx) => {
      const matcher = {
        propertyId: (args.property_id as string | undefined) ?? null, videoTitle: (args.video_title as string | undefined) ?? null,
        errorType: (args.error_type as string | undefined) ?? null, scope: (args.scope as 'property' | 'title' | undefined) ?? null,
      };
      // From the cluster's control topic (checked where it was received): a node that reads it after its
      // expiry (one that joined later) creates it as it was, and it ends at once.
      const expiresAtMs = ctx.sequence === undefined ? expiry(args) : Date.parse(args.expires_at as string);
      // The cluster's silences are numbered by their place in the control topic: the same id on every node.
      const id = ctx.sequence === undefined ? null : ctx.sequence + 1;
      const { silence, silenced } = pipeline.silenceMatching(matcher, expiresAtMs, (args.comment as string | undefined) ?? '', id);
      return { ...silenceView(silence), silenced_now: silenced };
    },
  });
  h.register('unsilence-matching', {
    validate: (args) => (Number.isSafeInteger(args.silence_id) && (args.silence_id as number) > 0 ? [] : ['args.silence_id must be a positive integer']),
    run: (args) => {
      const ended = pipeline.endSilence(args.silence_id as number);
      if (ended === null) throw new CommandFailure('NOT_FOUND', `no active silence ${String(args.silence_id)}`);
      return { ...silenceView(ended.silence), unsilenced_now: ended.unsilenced };
    },
  });
  h.register('silences', { validate: () => [], run: () => ({ silences: pipeline.silences.list().map(silenceView) }) });
  h.register('notifications', {
    validate: (args) => (Number.isSafeInteger(args.incident_id) && (args.incident_id as number) > 0 ? [] : ['args.incident_id must be a positive integer']),
    run: (args) => ({
      incident_id: args.incident_id,
      notifications: pipeline.notificationState(args.incident_id as number).map((r) => ({
        receiver: r.receiver, kind: r.kind, seq: r.seq, delivery_id: pipeline.deliveryKey(r), state: r.state, attempts: r.attempts,
        created_at: iso(r.createdAtMs), last_attempt_at: iso(r.lastAttemptAtMs), done_at: iso(r.doneAtMs),
        next_attempt_at: r.state === 'pending' ? iso(r.nextAttemptAtMs) : null, last_status: r.lastStatus, last_error: r.lastError,
      })),
    }),
  });
}

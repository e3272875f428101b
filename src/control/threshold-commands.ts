import type { CommandHandler } from './command-handler.ts';
import { CommandFailure } from './command-handler.ts';
import { ParamOverrides, type OverrideChange } from './param-overrides.ts';
import { effectiveScopes, type DetectionParams, type ScopeParams } from '../kernel/detection-params.ts';

/** What set-thresholds needs: a way to make new parameters effective, and the persisted overrides. */
export interface ThresholdDeps {
  /** Makes parameters effective from the next evaluation (engine.setParams) and records them as current. */
  setParams: (p: DetectionParams) => Promise<void>;
  overrides: ParamOverrides;
}

/**
 * Registers set-thresholds: detection parameters of either scope (args.property / args.title),
 * globally or for one property and its titles (args.property_id), or a reset of either
 * (args.reset); validated, effective from the next evaluation, persisted in the data directory.
 */
export function registerThresholdCommands(h: CommandHandler, deps: ThresholdDeps): void {
  h.register('set-thresholds', {
    validate: (args) => {
      const { property_id: pid, reset, ...over } = args;
      const problems = ParamOverrides.problems(over);
      if (pid !== undefined && (typeof pid !== 'string' || pid === '')) problems.push('args.property_id must be a non-empty string');
      if (reset !== undefined && typeof reset !== 'boolean') problems.push('args.reset must be true or false');
      if (Object.keys(over).length === 0 && reset !== true) {
        problems.push('give args.property and/or args.title, e.g. {"property":{"minEffectAbs":0.05}}, or args.reset: true');
      }
      return problems;
    },
    run: async (args) => {
      const change: OverrideChange = {
        propertyId: args.property_id as string | undefined,
        property: args.property as Partial<ScopeParams> | undefined,
        title: args.title as Partial<ScopeParams> | undefined,
        reset: args.reset === true,
      };
      const { params, problems } = deps.overrides.apply(change);
      if (problems.length) throw new CommandFailure('INVALID_ARGS', problems.join('; '));
      await deps.setParams(params);
      const inForce = change.propertyId === undefined ? { property: params.property, title: params.title } : effectiveScopes(params, change.propertyId);
      return { ...(change.propertyId === undefined ? {} : { property_id: change.propertyId }), ...inForce, overrides: deps.overrides.current() };
    },
  });
}

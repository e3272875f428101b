import type { CommandHandler } from './command-handler.ts';
import { CommandFailure } from './command-handler.ts';
import { ParamOverrides } from './param-overrides.ts';
import type { DeepPartial, DetectionParams } from '../kernel/detection-params.ts';

/** What set-thresholds needs: the parameters in force, a way to make new ones effective, and the persisted overrides. */
export interface ThresholdDeps {
  params: () => DetectionParams;
  /** Makes parameters effective from the next evaluation (engine.setParams) and records them as current. */
  setParams: (p: DetectionParams) => Promise<void>;
  overrides: ParamOverrides;
}

/** Registers set-thresholds: global detection parameters (args.property / args.title), validated, effective from the next evaluation, persisted. */
export function registerThresholdCommands(h: CommandHandler, deps: ThresholdDeps): void {
  h.register('set-thresholds', {
    validate: (args) => {
      const { property_id: _pid, ...over } = args;
      const problems = ParamOverrides.problems(over);
      if (Object.keys(over).length === 0) problems.push('give args.property and/or args.title, e.g. {"property":{"minEffectAbs":0.05}}');
      return problems;
    },
    run: async (args) => {
      if (args.property_id !== undefined) {
        throw new CommandFailure('NOT_SUPPORTED', 'per-property thresholds are not supported yet; omit args.property_id to change them globally');
      }
      const { params, problems } = deps.overrides.apply(deps.params(), args as DeepPartial<DetectionParams>);
      if (problems.length) throw new CommandFailure('INVALID_ARGS', problems.join('; '));
      await deps.setParams(params);
      return { property: params.property, title: params.title, overrides: deps.overrides.current() };
    },
  });
}

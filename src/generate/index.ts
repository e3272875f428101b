export { createGenerator, type ViewGenerator } from './view-generator.ts';
export { writeGeneratedFiles, type WriteGeneratedOptions, type WriteGeneratedResult } from './write-generated-files.ts';
export { DEFAULT_START_MS, type GenerateOptions } from './generate-options.ts';
export type { IncidentLabel, IncidentKind } from './incident-label.ts';
export { ERROR_TYPES, type ErrorType } from './error-types.ts';
export { scoreRun, sameKey, alertFromMs, EXPLAIN_SLACK_MS, type Score, type LabelOutcome, type ScoredOpening } from './score.ts';

/** Stable codes of the cluster component's errors. */
export type ClusterErrorCode = 'CLUSTER_CONNECT' | 'CLUSTER_TOPIC' | 'CLUSTER_PUBLISH' | 'CLUSTER_CONSUME';

/** An error of the cluster component: a stable code, whether retrying can help, and the underlying cause. */
export class ClusterError extends Error {
  readonly code: ClusterErrorCode;
  readonly retriable: boolean;

  constructor(code: ClusterErrorCode, message: string, options: { retriable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClusterError';
    this.code = code;
    this.retriable = options.retriable;
  }
}

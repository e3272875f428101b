// The VIGIL_CLUSTER_* variables: several `vigil run` nodes in one Kafka consumer group acting as one
// Vigil (see ARCHITECTURE.md, "Cluster"). Called by loadConfig with its reader, so config.ts stays the
// only reader of process.env.

import { hostname } from 'node:os';
import type { EnvReader } from './env-reader.ts';

/** How this node takes part in a cluster. */
export interface ClusterConfig {
  /** Prefix of the cluster's internal topics and object paths (default: the Kafka group id). */
  name: string;
  /** This node's name in object names and logs (default: host name and pid). */
  nodeId: string;
  /**
   * Worker threads of each task's engine. A node runs one engine per task (input partition) it owns,
   * so its threads are tasks owned x workers per task.
   */
  workersPerTask: number;
  /**
   * Tasks a node is sized for (VIGIL_CLUSTER_MAX_TASKS, default VIGIL_WORKERS / workers per task): the
   * default key and cell caps give each of its maxTasks x workersPerTask kernels an equal share of the
   * memory. A node may own more (the group assigns them); it warns then.
   */
  maxTasks: number;
  /**
   * With Kinesis input: the number of tasks (partitions of the coordination topic `<name>.kinesis`)
   * when this node creates that topic; null: the stream's shard lineages at that time. An existing
   * topic's partition count is what counts.
   */
  kinesisTasks: number | null;
  /**
   * Whether the input topic is keyed by property (a property's views in one partition). When it is
   * not, every node also runs a forwarder (the repartition stage) into `<name>.repartition`, whose
   * partitions are the tasks (ARCHITECTURE.md "Cluster: input not keyed by property").
   */
  inputKeyedByProperty: boolean;
  /** Partitions of `<name>.repartition` when a node creates it; null: as many as the input topic has. */
  repartitionPartitions: number | null;
}

/** What the cluster section depends on in the rest of the configuration. */
export interface ClusterDeps {
  source: string;
  kafkaGroupId: string | null;
  s3Configured: boolean;
  checkpoints: boolean;
  /** VIGIL_WORKERS: the node's thread budget, which VIGIL_CLUSTER_MAX_TASKS defaults from. */
  workers: number;
  /** VIGIL_KINESIS_NODE_COUNT above 1 (the static split, which a cluster replaces). */
  kinesisStaticSplit?: boolean;
}

const NAME = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * Reads VIGIL_CLUSTER (default false) and, when it is on, the other VIGIL_CLUSTER_* variables;
 * problems (each naming its variable) go to the reader. Off, they are read all the same with a
 * scratch reader, so the reader knows them, and null is returned.
 */
export function readClusterConfig(reader: EnvReader, deps: ClusterDeps): ClusterConfig | null {
  const on = reader.bool('VIGIL_CLUSTER', false);
  const r = on ? reader : reader.scratch();
  const problems = r.problems;
  if (deps.source !== 'kafka' && deps.source !== 'kinesis') {
    problems.push(`VIGIL_CLUSTER: a cluster needs VIGIL_SOURCE=kafka or kinesis (a Kafka group assigns the tasks), got VIGIL_SOURCE=${deps.source}`);
  }
  if (deps.source === 'kinesis' && deps.kinesisStaticSplit) {
    problems.push('VIGIL_KINESIS_NODE_COUNT: a cluster assigns the shards to its nodes itself (and moves them when a node dies): leave VIGIL_KINESIS_NODE_INDEX/_COUNT unset');
  }
  if (!deps.s3Configured) problems.push('VIGIL_CLUSTER: a cluster keeps its task checkpoints in S3: set VIGIL_S3_BUCKET (and VIGIL_S3_ENDPOINT etc. for an S3-compatible store)');
  if (!deps.checkpoints) problems.push('VIGIL_CLUSTER: a cluster moves state by its checkpoints: VIGIL_CHECKPOINTS=false is not possible with it');
  const name = r.str('VIGIL_CLUSTER_NAME') ?? deps.kafkaGroupId ?? 'vigil';
  if (!NAME.test(name)) problems.push(`VIGIL_CLUSTER_NAME: expected 1-100 letters, digits or ._-, got ${JSON.stringify(name)}`);
  const nodeId = r.str('VIGIL_CLUSTER_NODE_ID') ?? `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  if (!NAME.test(nodeId)) problems.push(`VIGIL_CLUSTER_NODE_ID: expected 1-100 letters, digits or ._-, got ${JSON.stringify(nodeId)}`);
  const workersPerTask = r.int('VIGIL_CLUSTER_WORKERS_PER_TASK', 1, 1, 64);
  const maxTasks = r.int('VIGIL_CLUSTER_MAX_TASKS', Math.max(1, Math.floor(deps.workers / workersPerTask)), 1, 4096);
  const tasks = r.str('VIGIL_CLUSTER_KINESIS_TASKS') === null ? null : r.int('VIGIL_CLUSTER_KINESIS_TASKS', 1, 1, 1024);
  const inputKeyedByProperty = r.bool('VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY', true);
  if (on && !inputKeyedByProperty && deps.source !== 'kafka') {
    problems.push(`VIGIL_CLUSTER_INPUT_KEYED_BY_PROPERTY=false: the repartition stage reads a Kafka topic (VIGIL_SOURCE=kafka), got VIGIL_SOURCE=${deps.source}; a Kinesis stream in a cluster must be keyed by property`);
  }
  // 0 (the default): as many partitions as the input topic has, read from the broker at start.
  const partitions = r.int('VIGIL_CLUSTER_REPARTITION_PARTITIONS', 0, 0, 10_000);
  return on ? { name, nodeId, workersPerTask, maxTasks, kinesisTasks: tasks, inputKeyedByProperty, repartitionPartitions: partitions === 0 ? null : partitions } : null;
}

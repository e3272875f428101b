import client from 'prom-client';

/** Label names to values for one series. */
export type Labels = Readonly<Record<string, string>>;

/** One sample of a metric family, as collected at scrape time. */
export interface Sample {
  labels?: Labels;
  value: number;
}

/** Metric types a collected family can have. */
export type MetricType = 'counter' | 'gauge';

/** A counter the caller increments (prom-client's). */
export type Counter = client.Counter<string>;
/** A gauge the caller sets (prom-client's). */
export type Gauge = client.Gauge<string>;
/** A histogram the caller observes into (prom-client's). */
export type Histogram = client.Histogram<string>;

/** The two exposition formats /metrics negotiates. */
export const PROMETHEUS_TEXT = client.Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_TEXT = client.Registry.OPENMETRICS_CONTENT_TYPE;

/**
 * The format a scraper asked for in its Accept header: OpenMetrics when it lists
 * application/openmetrics-text with a q above that of text/plain (Prometheus 2.5+ does), else the
 * Prometheus text format 0.0.4 (also for a missing header, a wildcard or anything else).
 */
export function negotiateFormat(accept: string | undefined): typeof PROMETHEUS_TEXT | typeof OPENMETRICS_TEXT {
  let openMetrics = -1;
  let text = -1;
  for (const part of (accept ?? '').split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (!Number.isFinite(q) || q <= 0) continue;
    if (type === 'application/openmetrics-text') openMetrics = Math.max(openMetrics, q);
    else if (type === 'text/plain' || type === 'text/*' || type === '*/*') text = Math.max(text, q);
  }
  return openMetrics > text ? OPENMETRICS_TEXT : PROMETHEUS_TEXT;
}

/** How a registry is set up. */
export interface MetricsRegistryOptions {
  /**
   * Also export the process and runtime metrics every Node service has (prom-client's defaults: CPU,
   * resident memory, heap, event-loop lag, GC, open file descriptors, ...). Off for registries in tests.
   */
  runtime?: boolean;
}

/**
 * The daemon's metrics, on prom-client: metrics that hold values (counter(), gauge(), histogram()),
 * and families computed at scrape time from counters other components already keep (collect()), so
 * the hot path gains no metric calls. Any component may register its own families; names are unique.
 */
export class MetricsRegistry {
  readonly registry = new client.Registry<client.RegistryContentType>();
  private readonly collectErrors: Counter;
  // Renders run one after another: an OpenMetrics render changes the registry's content type and,
  // in prom-client 15, renames counters in place (it strips their _total), which render() undoes.
  private rendering: Promise<unknown> = Promise.resolve();

  constructor(opts: MetricsRegistryOptions = {}) {
    if (opts.runtime) {
      client.collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters (promtool's lint refuses them); each is the sum over `type` of the
      // same family without the suffix, which stays.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    }
    this.collectErrors = this.counter('vigil_metrics_collect_errors_total', 'Scrape-time collectors that threw (their family is left empty in that scrape).');
  }

  /** Registers a counter the caller increments; every label it will carry must be named here. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return new client.Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** Registers a gauge the caller sets. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return new client.Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  /** Registers a histogram with these upper bounds (seconds for durations). */
  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return new client.Histogram({ name, help, labelNames, buckets: [...buckets], registers: [this.registry] });
  }

  /**
   * Registers a family whose samples are computed at each scrape (from another component's stats). A
   * collector that throws leaves its family empty for that scrape and counts in
   * vigil_metrics_collect_errors_total; the rest of the scrape is unaffected.
   */
  collect(name: string, help: string, type: MetricType, fn: () => Sample[] | number, labelNames: readonly string[] = []): void {
    const errors = this.collectErrors;
    const fill = function (this: Counter | Gauge): void {
      this.reset();
      let samples: Sample[];
      try {
        const r = fn();
        samples = typeof r === 'number' ? [{ value: r }] : r;
        for (const s of samples) {
          if (type === 'counter') (this as Counter).inc(s.labels ?? {}, s.value);
          else (this as Gauge).set(s.labels ?? {}, s.value);
        }
      } catch {
        this.reset();
        errors.inc();
      }
    };
    const spec = { name, help, labelNames, registers: [this.registry], collect: fill };
    if (type === 'counter') new client.Counter(spec);
    else new client.Gauge(spec);
  }

  /** The registered family names, sorted. */
  names(): string[] {
    return this.registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name).sort();
  }

  /** Every family in the given exposition format (Prometheus text by default), with its content type. */
  render(contentType: typeof PROMETHEUS_TEXT | typeof OPENMETRICS_TEXT = PROMETHEUS_TEXT): Promise<{ body: string; contentType: string }> {
    const run = async () => {
      const metrics = this.registry.getMetricsAsArray() as unknown as Array<{ name: string }>;
      const names = metrics.map((m) => m.name);
      this.registry.setContentType(contentType);
      try {
        return { body: await this.registry.metrics(), contentType };
      } finally {
        metrics.forEach((m, i) => { m.name = names[i]; });
        this.registry.setContentType(PROMETHEUS_TEXT);
      }
    };
    const result = this.rendering.then(run, run);
    this.rendering = result.catch(() => {});
    return result;
  }
}

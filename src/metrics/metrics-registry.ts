/** Label names to values for one series. */
export type Labels = Readonly<Record<string, string>>;

/** One sample of a metric family, as collected at scrape time. */
export interface Sample {
  labels?: Labels;
  value: number;
}

/** Prometheus metric types this registry renders. */
export type MetricType = 'counter' | 'gauge';

/** A metric whose value the registry holds: counters only go up, gauges are set. */
export class Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(readonly name: string, readonly help: string, readonly type: MetricType) {}

  /** Adds n (default 1) to the series with these labels; a counter refuses a negative n. */
  inc(labels: Labels = {}, n = 1): void {
    if (this.type === 'counter' && n < 0) throw new Error(`counter ${this.name} cannot decrease`);
    const key = labelKey(labels);
    const cur = this.values.get(key);
    if (cur) cur.value += n;
    else this.values.set(key, { labels: { ...labels }, value: n });
  }

  /** Sets the series with these labels (gauges). */
  set(labels: Labels, value: number): void {
    this.values.set(labelKey(labels), { labels: { ...labels }, value });
  }

  /** The current samples. */
  samples(): Sample[] {
    return [...this.values.values()];
  }
}

interface Family {
  name: string;
  help: string;
  type: MetricType;
  collect: () => Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A small Prometheus registry: metrics that hold values (counter()/gauge()) and metrics computed at
 * scrape time from other components' counters (collect()); render() writes text format 0.0.4.
 * Any component may register its own families; names must be unique.
 */
export class MetricsRegistry {
  private readonly families = new Map<string, Family>();

  /** Registers a counter the caller increments. */
  counter(name: string, help: string): Metric {
    const m = new Metric(name, help, 'counter');
    this.add({ name, help, type: 'counter', collect: () => m.samples() });
    return m;
  }

  /** Registers a gauge the caller sets. */
  gauge(name: string, help: string): Metric {
    const m = new Metric(name, help, 'gauge');
    this.add({ name, help, type: 'gauge', collect: () => m.samples() });
    return m;
  }

  /** Registers a family whose samples are computed at each scrape (from another component's stats). */
  collect(name: string, help: string, type: MetricType, fn: () => Sample[] | number): void {
    this.add({ name, help, type, collect: () => { const r = fn(); return typeof r === 'number' ? [{ value: r }] : r; } });
  }

  /** The registered family names, sorted. */
  names(): string[] {
    return [...this.families.keys()].sort();
  }

  /** Every family in Prometheus text format; a collector that throws is skipped and reported in vigil_metrics_collect_errors. */
  render(): string {
    const out: string[] = [];
    let errors = 0;
    for (const f of this.families.values()) {
      let samples: Sample[];
      try {
        samples = f.collect();
      } catch {
        errors++;
        continue;
      }
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
      for (const s of samples) out.push(`${f.name}${renderLabels(s.labels)} ${formatValue(s.value)}`);
    }
    out.push('# HELP vigil_metrics_collect_errors Collectors that failed during this scrape.', '# TYPE vigil_metrics_collect_errors gauge', `vigil_metrics_collect_errors ${errors}`);
    return out.join('\n') + '\n';
  }

  private add(f: Family): void {
    if (!NAME.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
    if (this.families.has(f.name)) throw new Error(`metric ${f.name} is already registered`);
    this.families.set(f.name, f);
  }
}

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function renderLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => {
    if (!LABEL.test(k)) throw new Error(`invalid label name ${JSON.stringify(k)}`);
    return `${k}="${String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`;
  });
  return parts.length ? `{${parts.join(',')}}` : '';
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

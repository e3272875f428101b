// The CLI's help texts. test/cli.test.ts checks that every option named here is accepted by its
// command and that every VIGIL_* variable named here is one src/config reads.

export const USAGE = `usage: vigil <command> [options]

Real-time error-rate alerting for video playback.

commands:
  run          the daemon: reads view outcomes, opens and resolves incidents, notifies,
               serves the dashboard, API, /metrics and probes (configured by VIGIL_* variables)
  replay       runs the detector over an NDJSON file as fast as it can; transitions to stdout
  generate     writes synthetic view outcomes with labelled incidents
  healthcheck  asks the running daemon's /readyz (the container image's HEALTHCHECK)

options:
  -h, --help      this help; "vigil <command> --help" or "vigil help <command>" for a command's
  -V, --version   the version
`;

const RUN = `usage: vigil run

Runs the daemon until SIGTERM or SIGINT (Ctrl-C), then drains, writes a checkpoint and exits.
It takes no options: it is configured by environment variables, all checked at start (every
problem is reported at once, with its variable). The ones you will want first:

  VIGIL_SOURCE             demo (default: synthetic traffic with an incident every few minutes),
                           file, stdin, kafka, kinesis
  VIGIL_SOURCE_FILE        the NDJSON file for VIGIL_SOURCE=file
  VIGIL_KAFKA_BROKERS      host:port,... and VIGIL_KAFKA_TOPIC for VIGIL_SOURCE=kafka
  VIGIL_KINESIS_STREAM     stream name or ARN for VIGIL_SOURCE=kinesis
  VIGIL_DATA_DIR           incidents database and checkpoints (default .data)
  VIGIL_HTTP_HOST          where the dashboard, API, /metrics, /healthz and /readyz listen
  VIGIL_HTTP_PORT          (default 127.0.0.1:8080)
  VIGIL_ADMIN_TOKEN        admin token; with VIGIL_READ_TOKENS, needed to listen beyond loopback
  VIGIL_SLACK_WEBHOOK_URL  a Slack receiver; VIGIL_PAGERDUTY_ROUTING_KEY, VIGIL_WEBHOOK_URL,
                           VIGIL_ALERTMANAGER_URL and VIGIL_NOTIFY_FILE (routes) for the others
  VIGIL_LOG_LEVEL          info (default); logs are JSON lines on stderr

Every variable, with its default, is in README.md under "Configuration".
`;

const REPLAY = `usage: vigil replay [FILE|-] [options]

Runs the daemon's detector over NDJSON view outcomes from FILE (stdin for - or no FILE) in event
time, as fast as it can, and writes one JSON line per incident transition (opened, resolved,
expired) in event-time order. The output is byte-identical for any --workers and --chunk-bytes.

options:
  --out FILE          write the transitions to FILE instead of stdout
  --workers N         kernel worker threads (default: VIGIL_WORKERS, else the cores, at most 8)
  --chunk-bytes N     bytes of whole lines per batch (default: VIGIL_CHUNK_BYTES, 1048576)
  --json              print the summary as one JSON line even on a terminal
  -h, --help          this help

On a terminal, stderr shows a progress line while it runs and a summary at the end (events,
rejected lines by reason, late events, duplicates dropped, events from the future, incidents,
events/s); otherwise the summary is one JSON line. Warnings (e.g. sampled rejected lines) are JSON lines on stderr. Detection parameters and
field names come from the same variables as vigil run (VIGIL_DETECTION, VIGIL_FIELD_*).
Exit status: 0 when the input was read to its end, whatever it contained; 2 for a usage or
configuration error.
`;

const GENERATE = `usage: vigil generate [options]

Writes realistic synthetic view outcomes (NDJSON) with injected incidents, and their labels.
Deterministic: the same options give byte-identical output.

options:
  --seed S            random seed (default 1)
  --hours H           hours of traffic (default 8)
  --out FILE          write the views to FILE instead of stdout
  --labels FILE       write the injected incidents, one JSON line each, to FILE
  --scale X           multiply the traffic of the big properties (default 1; 0.05 for a small file)
  --profile P         realistic (default), demo (the demo source's traffic; needs --hours) or field
                      (many properties of heavy-tailed sizes and the ways real player data goes wrong)
  --start ISO         event time of the first view (default 2026-11-27T00:00:00Z)
  --properties N      field profile: how many properties (default 300)
  --duplicates SHARE  deliver this share of the lines a second time, 1-60 s later (default 0)
  --bad-clocks        field profile: a view stamped 24 h ahead, a producer 3 min ahead
  --json              print the summary as one JSON line even on a terminal
  -h, --help          this help

Try: vigil generate --hours 8 --scale 0.05 --out /tmp/views.ndjson --labels /tmp/labels.ndjson
     vigil replay /tmp/views.ndjson
`;

const HEALTHCHECK = `usage: vigil healthcheck [--live] [--timeout MS]

Asks the daemon running on this machine (or in this container), at the address the same
VIGIL_HTTP_HOST and VIGIL_HTTP_PORT variables give it (0.0.0.0 and :: through loopback), whether
it is ready: GET /readyz (workers up, source started). Exit status 0 when it answers 200, 1
otherwise (not ready, stopping, not listening), with the answer on stdout or stderr. It needs no
curl, so the container image's HEALTHCHECK uses it.

options:
  --live              GET /healthz instead (the process answers at all)
  --timeout MS        give up after MS milliseconds (default 3000)
  -h, --help          this help
`;

/** Each command's help, printed by "vigil <command> --help" and "vigil help <command>". */
export const COMMAND_HELP = { run: RUN, replay: REPLAY, generate: GENERATE, healthcheck: HEALTHCHECK } as const;

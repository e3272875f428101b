import type { Prng } from './prng.ts';

/** The ways a line of a real export is broken; the generator cycles through them. */
export const MALFORMED_KINDS = ['truncated', 'garbage', 'missing-property', 'nul-byte'] as const;

/** One way a line is broken. */
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

const GARBAGE = [
  '<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>',
  'ERROR 2026-11-27 exporter: connection reset by peer',
  '\u001b[2K\u001b[1G⠋ uploading…',
  '}{"view_id":',
  '\ufffd\ufffdPK\u0003\u0004\ufffd binary',
];

/** Breaks a well-formed view line `validLine` (whose property fragment is `idFragment`) in the given way. */
export function malformedLine(kind: MalformedKind, validLine: string, idFragment: string, prng: Prng): string {
  switch (kind) {
    case 'truncated':
      // A proper prefix of a JSON object is never valid JSON: the object closes only at its last byte.
      return validLine.slice(0, 8 + prng.int(validLine.length - 12));
    case 'garbage':
      return GARBAGE[prng.int(GARBAGE.length)];
    case 'missing-property':
      return validLine.replace(idFragment, '');
    case 'nul-byte': {
      // A raw NUL is invalid both inside a JSON string and between tokens.
      const at = 1 + prng.int(validLine.length - 2);
      return validLine.slice(0, at) + '\u0000' + validLine.slice(at);
    }
  }
}

import net from 'node:net';
import tls from 'node:tls';

/** OpenSSL/Node codes of a certificate the client does not trust: retrying cannot help. */
const CERTIFICATE_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE', 'INVALID_CA', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * One TLS handshake with `host:port`, as the Kafka source's sockets make it. Resolves with the error
 * when the server's certificate is not trusted, and with null otherwise (handshake done, or failed
 * for a reason retries may heal: refused, reset, timeout), so that a wrong or missing CA is
 * reported at once rather than after the client's minutes of connection retries.
 */
export function untrustedCertificate(broker: string, options: tls.ConnectionOptions, timeoutMs = 10_000): Promise<Error | null> {
  const i = broker.lastIndexOf(':');
  const host = broker.slice(0, i);
  const port = Number(broker.slice(i + 1));
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, ...(!net.isIP(host) ? { servername: host } : {}), ...options });
    const done = (result: Error | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    socket.once('secureConnect', () => done(null));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code && CERTIFICATE_ERRORS.has(err.code) ? err : null));
  });
}

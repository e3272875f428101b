import net from 'node:net';
import tls from 'node:tls';
import type { ISocketFactory } from 'kafkajs';

const KEEP_ALIVE_DELAY_MS = 60_000;

/**
 * kafkajs's socket factory, plus a registry of the sockets it opened. After a broker restart
 * kafkajs's disconnect() can leave a connection open (it kept the daemon from exiting after
 * SIGTERM), so the source destroys whatever is still open once it has disconnected.
 */
export class TrackedSockets {
  private readonly open = new Set<net.Socket>();

  /** The factory to pass as `socketFactory` to `new Kafka()`. */
  readonly factory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
    const socket = ssl
      ? tls.connect({ host, port, ...(!net.isIP(host) ? { servername: host } : {}), ...ssl }, onConnect)
      : net.connect({ host, port }, onConnect);
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    return socket;
  };

  /**
   * Destroys every socket still open; returns how many there were. With an error, so that kafkajs
   * runs its own error path for the connection (which also clears its request-timeout interval).
   */
  destroyAll(): number {
    const n = this.open.size;
    for (const s of this.open) s.destroy(new Error('closed by vigil after the consumer disconnected'));
    this.open.clear();
    return n;
  }
}

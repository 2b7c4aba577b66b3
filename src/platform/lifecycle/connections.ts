import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Server as TlsServer } from 'node:tls';

/**
 * How long a connection that is idle when the listener closes is kept open for one more request
 * (answered with `Connection: close`) before it is closed. A client sends on an idle keep-alive
 * connection at any moment, so closing it at once loses a request already on the wire to it.
 */
export const IDLE_CLOSE_AFTER_MS = 1_000;
const POLL_MS = 20;

interface ConnectionState {
  /** Requests read on it and not yet answered. */
  active: number;
  /** `performance.now()` when it last became idle (its last answer ended, or it connected). */
  idleSince: number;
}

/**
 * Follows an HTTP server's connections so that shutdown closes each one between requests rather
 * than under a request: see `drain`. Made before the server listens.
 */
export class ConnectionTracker {
  readonly #server: HttpServer;
  readonly #connections = new Map<Socket, ConnectionState>();

  constructor(server: HttpServer) {
    this.#server = server;
    // Requests arrive on the TLS socket, not on the TCP socket under it.
    const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
    server.on(event, (socket: Socket) => {
      this.#connections.set(socket, { active: 0, idleSince: performance.now() });
      socket.once('close', () => this.#connections.delete(socket));
    });
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const state = this.#connections.get(request.socket);
      if (!state) return;
      state.active += 1;
      response.once('close', () => {
        state.active -= 1;
        state.idleSince = performance.now();
      });
    });
  }

  /** Open connections now. */
  get size(): number {
    return this.#connections.size;
  }

  /**
   * Stops accepting connections, then closes the open ones cleanly: a connection with a request
   * in flight is closed by the server after that answer (which carries `Connection: close` once
   * the lifecycle says so); an idle one gets `idleMs` for one more request, then is closed.
   * Resolves when only connections with a request in flight remain (the HTTP server's own close
   * waits for those), at most `idleMs` later.
   */
  async drain(idleMs = IDLE_CLOSE_AFTER_MS): Promise<void> {
    // net.Server's close only stops listening. http.Server's close() also destroys every idle
    // keep-alive socket at once: a request already sent on one of them was lost (issue 12, #7).
    if (this.#server.listening) NetServer.prototype.close.call(this.#server);
    const closedAt = performance.now();
    for (;;) {
      const now = performance.now();
      let waiting = false;
      for (const [socket, state] of this.#connections) {
        if (state.active > 0) continue;
        if (now - Math.max(state.idleSince, closedAt) >= idleMs) socket.destroy();
        else waiting = true;
      }
      if (!waiting) return;
      await sleep(POLL_MS);
    }
  }
}

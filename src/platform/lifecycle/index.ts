export { ConnectionTracker, IDLE_CLOSE_AFTER_MS } from './connections.ts';

/**
 * Process-wide lifecycle state shared by the HTTP layer, health checks and workers. Shutdown has
 * two steps: `beginShutdown` (readiness fails, so load balancers stop routing here), then, after
 * the drain delay, `closeConnections` (the listener closes and every answer closes its
 * connection).
 */
export class Lifecycle {
  #shuttingDown = false;
  #closingConnections = false;
  readonly #listeners: (() => void)[] = [];

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** True once the listener is closing: every answer carries `Connection: close`. */
  get closingConnections(): boolean {
    return this.#closingConnections;
  }

  /** Marks the process as stopping: readiness turns 503 at once. */
  beginShutdown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    for (const listener of this.#listeners) listener();
  }

  /**
   * Marks the connections as closing: answers carry `Connection: close` from now on. Not at
   * `beginShutdown`: while the drain delay runs, keep-alive clients keep their connections
   * rather than reconnecting, so none is caught in the accept queue when the listener closes.
   */
  closeConnections(): void {
    this.beginShutdown();
    this.#closingConnections = true;
  }

  /** Runs `listener` when shutdown begins (workers stop fetching, for example). */
  onShutdown(listener: () => void): void {
    this.#listeners.push(listener);
  }
}

/** Process-wide lifecycle state shared by the HTTP layer, health checks and workers. */
export class Lifecycle {
  #shuttingDown = false;
  readonly #listeners: (() => void)[] = [];

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Marks the process as stopping: readiness turns 503 at once, responses carry `Connection: close`. */
  beginShutdown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    for (const listener of this.#listeners) listener();
  }

  /** Runs `listener` when shutdown begins (workers stop fetching, for example). */
  onShutdown(listener: () => void): void {
    this.#listeners.push(listener);
  }
}

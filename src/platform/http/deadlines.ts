import type { FastifyInstance, FastifyReply } from 'fastify';
import { HttpCodes, HttpError } from './errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * This route's handler deadline in ms, instead of `HANDLER_TIMEOUT_MS` (uploads need longer).
     * Node's `REQUEST_TIMEOUT_MS` still bounds the time to receive the whole request.
     */
    handlerTimeoutMs?: number;
  }
}

/**
 * The handler timeout (`HANDLER_TIMEOUT_MS`) of every request: one timer sweeps the requests in
 * flight, oldest first, and answers those past their deadline with 503 `HANDLER_TIMEOUT`.
 *
 * Fastify's own `handlerTimeout` arms an AbortController, a timer and a `close` listener for
 * every request: about 28,000 of a request's 200,000 instructions in bench/http. Node's HTTP
 * server enforces its `requestTimeout` the same way as here (one interval checking every
 * connection). The deadline is kept to within a quarter of the timeout (at most a second late).
 * A route that sets its own `handlerTimeout` still gets Fastify's, exact and with
 * `request.signal` aborted; this sweep then finds it answered and only forgets it.
 */
export class HandlerDeadlines {
  readonly #timeoutMs: number;
  readonly #intervalMs: number;
  // Insertion order is deadline order: every entry has the same timeout.
  readonly #inFlight = new Map<FastifyReply, number>();
  // Requests of routes with their own timeout (few: uploads), swept in full.
  readonly #own = new Map<FastifyReply, { deadline: number; timeoutMs: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#intervalMs = Math.min(1_000, Math.max(10, Math.floor(timeoutMs / 4)));
  }

  /** Requests being tracked (for tests and metrics). */
  get size(): number {
    return this.#inFlight.size + this.#own.size;
  }

  /** A request has arrived: its deadline starts now (`timeoutMs`: the route's own). */
  start(reply: FastifyReply, timeoutMs?: number): void {
    if (timeoutMs !== undefined && timeoutMs !== this.#timeoutMs)
      this.#own.set(reply, { deadline: Date.now() + timeoutMs, timeoutMs });
    else this.#inFlight.set(reply, Date.now() + this.#timeoutMs);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => {
        this.sweep();
      }, this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Its answer is on its way: no deadline any more. */
  finish(reply: FastifyReply): void {
    this.#inFlight.delete(reply);
    this.#own.delete(reply);
  }

  /** Answers the requests past their deadline; forgets those answered some other way. */
  sweep(now = Date.now()): void {
    for (const [reply, deadline] of this.#inFlight) {
      if (reply.sent) {
        this.#inFlight.delete(reply);
        continue;
      }
      if (deadline > now) break;
      this.#inFlight.delete(reply);
      expire(reply, this.#timeoutMs);
    }
    for (const [reply, { deadline, timeoutMs }] of this.#own) {
      if (!reply.sent && deadline > now) continue;
      this.#own.delete(reply);
      if (!reply.sent) expire(reply, timeoutMs);
    }
    if (this.size === 0) this.stop();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Answers a request past its deadline with 503 (or ends a response already streaming). */
function expire(reply: FastifyReply, timeoutMs: number): void {
  if (reply.raw.headersSent) {
    // A response already streaming cannot become a problem body: end it.
    reply.raw.destroy();
    return;
  }
  reply.send(
    new HttpError(HttpCodes.HANDLER_TIMEOUT, {
      detail: `The request took longer than ${String(timeoutMs)} ms.`,
    }),
  );
}

/** Creates the deadlines of an app instance, stopped when it closes. */
export function createHandlerDeadlines(app: FastifyInstance, timeoutMs: number): HandlerDeadlines {
  const deadlines = new HandlerDeadlines(timeoutMs);
  app.addHook('onClose', async () => {
    deadlines.stop();
  });
  return deadlines;
}

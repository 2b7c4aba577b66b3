import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleAll,
  type CircuitBreakerPolicy,
  type IBackoff,
} from 'cockatiel';

/** The breaker's state, as the metrics and readiness name it. */
export type RedisCircuitState = 'closed' | 'open' | 'half-open';

/**
 * What a Redis user throws or rejects with when the circuit is open: no command was sent. One
 * instance for every refusal, so refusing costs no stack capture per request.
 */
export class RedisCircuitOpenError extends Error {
  constructor() {
    super('redis circuit open: command not sent');
    this.name = 'RedisCircuitOpenError';
  }
}
export const REDIS_CIRCUIT_OPEN: Error = new RedisCircuitOpenError();

export interface RedisBreakerOptions {
  /** Consecutive failed commands (timeouts, connection errors) that open the circuit. */
  failureThreshold: number;
  /** First probe this long after opening (jittered), then longer, up to `maxProbeIntervalMs`. */
  firstProbeMs: number;
  maxProbeIntervalMs: number;
  /** One probe of Redis (a PING): resolves when Redis answered in time, rejects otherwise. */
  probe(): Promise<unknown>;
  /** Told of every change of state, with the failure that opened the circuit when it opened. */
  onChange?(state: RedisCircuitState, from: RedisCircuitState, reason?: unknown): void;
}

/**
 * Whether Redis answered, even with an error: a reply error (NOSCRIPT, WRONGTYPE, ...) is Redis
 * working, so only timeouts and connection errors count against the circuit.
 */
function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}

/**
 * The circuit breaker of one Redis client. Every user reads `closed` (a field) before sending a
 * command and, when it is false, applies its own fail mode at once (rate limits open or closed,
 * cache misses). Users report each command's outcome (`succeeded`, `failed`); after
 * `failureThreshold` consecutive timeouts or connection errors the circuit opens, and then only
 * a probe is sent, one at a time, at growing jittered intervals, until one is answered.
 *
 * cockatiel's `CircuitBreakerPolicy` keeps the state, the single half-open trial and the events;
 * its `ConsecutiveBreaker` keeps the count. Outcomes are counted on the breaker directly, at once
 * and in the order they arrive (in the closed state that is all `execute` would do, and it keeps
 * the hot path free of promises); the failure that reaches the threshold goes through `execute`,
 * which opens the circuit. cockatiel half-opens only when called, so the probes are scheduled
 * here, with cockatiel's exponential backoff (decorrelated jitter).
 */
export class RedisBreaker {
  readonly #options: RedisBreakerOptions;
  readonly #counter: ConsecutiveBreaker;
  readonly #policy: CircuitBreakerPolicy;
  readonly #backoff: ExponentialBackoff<unknown>;
  #delay: IBackoff<unknown> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = true;
  /** The threshold was reached and cockatiel is opening the circuit (a few microtasks). */
  #tripping = false;
  #state: RedisCircuitState = 'closed';
  #stopped = false;
  #openedAt = 0;
  #opens = 0;
  readonly #recovered = new Set<() => void>();

  constructor(options: RedisBreakerOptions) {
    this.#options = options;
    this.#counter = new ConsecutiveBreaker(options.failureThreshold);
    // halfOpenAfter 0: cockatiel half-opens on the first call after opening, and the only calls
    // made while open are the scheduled probes.
    this.#policy = circuitBreaker(handleAll, { halfOpenAfter: 0, breaker: this.#counter });
    this.#backoff = new ExponentialBackoff({
      initialDelay: options.firstProbeMs,
      maxDelay: options.maxProbeIntervalMs,
    });
    this.#policy.onBreak((reason) => {
      const first = this.#state === 'closed';
      if (first) {
        this.#openedAt = Date.now();
        this.#opens += 1;
        this.#delay = undefined;
      }
      this.#tripping = false;
      this.#set('open', first && 'error' in reason ? reason.error : undefined);
      this.#schedule();
    });
    this.#policy.onHalfOpen(() => this.#set('half-open'));
    this.#policy.onReset(() => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#set('closed');
      this.#notifyRecovered();
    });
  }

  /** True while commands may be sent. Read before every command: a field, no promise. */
  get closed(): boolean {
    return this.#closed;
  }

  get state(): RedisCircuitState {
    return this.#state;
  }

  /** Times the circuit opened from closed (a failed probe re-opening it is not counted). */
  get opens(): number {
    return this.#opens;
  }

  /** When the circuit last opened from closed (epoch ms; 0 never). */
  get openedAt(): number {
    return this.#openedAt;
  }

  /** A command was answered (a reply error counts: Redis answered). */
  succeeded(): void {
    if (this.#closed && !this.#tripping) this.#counter.success();
  }

  /** A command failed: timeouts and connection errors count toward opening the circuit. */
  failed(error: unknown): void {
    if (isReplyError(error)) {
      this.succeeded();
      return;
    }
    if (!this.#closed || this.#tripping || this.#stopped) return;
    // Counted here, in the order outcomes arrive; cockatiel is called only to open the circuit
    // (its own count of this failure is then past the threshold too).
    if (!this.#counter.failure()) return;
    this.#tripping = true;
    this.#policy
      .execute(() => {
        throw error;
      })
      .catch(() => undefined);
  }

  /** `command`'s outcome reported; the promise settles as the command's does. */
  observe<T>(command: Promise<T>): Promise<T> {
    return command.then(
      (value) => {
        this.succeeded();
        return value;
      },
      (error: unknown) => {
        this.failed(error);
        throw error;
      },
    );
  }

  /**
   * The client (re)connected and its ready check was answered: that is a probe that succeeded,
   * so an open circuit closes (a probe under way decides by itself).
   */
  reconnected(): void {
    if (this.#stopped) return;
    if (this.#state === 'open') {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#policy.execute(() => undefined).catch(() => undefined);
    } else if (this.#state === 'closed') {
      this.#notifyRecovered();
    }
  }

  /**
   * Calls `listener` once, when Redis is usable again: the circuit closes after being open, or
   * the client reconnects while it is closed. Returns the unsubscribe function.
   */
  onRecovered(listener: () => void): () => void {
    const once = () => {
      this.#recovered.delete(once);
      listener();
    };
    this.#recovered.add(once);
    return () => this.#recovered.delete(once);
  }

  /** Stops probing (the client is closing); the state stays as it is. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#recovered.clear();
  }

  #set(state: RedisCircuitState, reason?: unknown): void {
    const from = this.#state;
    this.#state = state;
    this.#closed = state === 'closed';
    if (from !== state) this.#options.onChange?.(state, from, reason);
  }

  #notifyRecovered(): void {
    for (const listener of [...this.#recovered]) listener();
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#delay = (this.#delay ?? this.#backoff).next(undefined);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#probe();
    }, this.#delay.duration);
    this.#timer.unref();
  }

  /** One probe: cockatiel half-opens for it, then closes on success or re-opens (and we wait longer). */
  #probe(): void {
    if (this.#stopped || this.#state !== 'open') return;
    this.#policy.execute(() => this.#options.probe()).catch(() => undefined);
  }
}

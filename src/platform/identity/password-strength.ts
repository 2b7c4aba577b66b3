import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { StrengthAnswer, StrengthJob } from './password-strength-worker.ts';

/** A zxcvbn verdict: score 0-4, the warning and suggestions it gives. */
export interface StrengthResult {
  score: number;
  warning: string | null;
  suggestions: string[];
}

export interface StrengthPoolOptions {
  /** Worker threads at most (started on first use, each with its own dictionaries). */
  size: number;
  /** Longest a worker may take on one password; past it the worker is ended and replaced. */
  runBudgetMs: number;
  /** Longest a password may wait for a free worker. */
  queueBudgetMs: number;
  /** Passwords waiting at most; more are refused at once. */
  maxQueue: number;
}

/** The check could not run in time (pool full, queue wait or run budget spent): retry later. */
export class StrengthUnavailableError extends Error {
  constructor(reason: string) {
    super(`password strength check unavailable: ${reason}`);
    this.name = 'StrengthUnavailableError';
  }
}

interface Pending {
  job: StrengthJob;
  resolve: (result: StrengthResult) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  current: Pending | undefined;
}

// The worker next to this file: `.ts` from the sources, `.js` from the build.
const WORKER_URL = new URL(
  `./password-strength-worker${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

/**
 * zxcvbn off the main thread: a few worker threads, a bounded queue, and a time budget per
 * password. zxcvbn is synchronous and superlinear in the length (hundreds of milliseconds for
 * 32 random or digit-heavy characters here, seconds for 128); on the event loop one such request
 * stalled every other. A worker past its budget is terminated (V8 stops it mid-loop) and replaced on next use.
 * Idle workers are unreferenced, so they never keep a process alive.
 */
export class PasswordStrengthPool {
  readonly #options: StrengthPoolOptions;
  readonly #slots: (Slot | undefined)[];
  readonly #queue: Pending[] = [];
  #nextId = 0;

  constructor(options: StrengthPoolOptions) {
    this.#options = options;
    this.#slots = Array.from({ length: options.size }, () => undefined);
  }

  /** The score of a password (already bounded in length by the caller) with its context words. */
  score(password: string, words: readonly string[]): Promise<StrengthResult> {
    if (this.#queue.length >= this.#options.maxQueue)
      return Promise.reject(new StrengthUnavailableError('too many passwords waiting'));
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        job: { id: ++this.#nextId, password, words: [...words] },
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.#queue.indexOf(pending);
          if (at < 0) return;
          this.#queue.splice(at, 1);
          reject(new StrengthUnavailableError('no worker free in time'));
        }, this.#options.queueBudgetMs),
      };
      this.#queue.push(pending);
      this.#dispatch();
    });
  }

  /** Ends the workers; passwords still waiting or running are refused. */
  async close(): Promise<void> {
    for (const pending of this.#queue.splice(0)) {
      clearTimeout(pending.timer);
      pending.reject(new StrengthUnavailableError('closing'));
    }
    await Promise.all(
      this.#slots.map(async (slot, i) => {
        if (slot === undefined) return;
        this.#slots[i] = undefined;
        if (slot.current !== undefined) {
          clearTimeout(slot.current.timer);
          slot.current.reject(new StrengthUnavailableError('closing'));
        }
        await slot.worker.terminate();
      }),
    );
  }

  #dispatch(): void {
    for (let i = 0; i < this.#slots.length && this.#queue.length > 0; i++) {
      const slot = this.#slots[i] ?? this.#spawn(i);
      if (!slot.ready || slot.current !== undefined) continue;
      const pending = this.#queue.shift() as Pending;
      clearTimeout(pending.timer);
      slot.current = pending;
      pending.timer = setTimeout(() => {
        this.#retire(i, slot, new StrengthUnavailableError('took too long'));
      }, this.#options.runBudgetMs);
      slot.worker.ref();
      slot.worker.postMessage(pending.job);
    }
  }

  #spawn(i: number): Slot {
    // No inherited `--import`/`--require` preloads: the worker runs the scorer and nothing else.
    const worker = new Worker(WORKER_URL, { name: 'password-strength', execArgv: [] });
    const slot: Slot = { worker, ready: false, current: undefined };
    this.#slots[i] = slot;
    worker.on('message', (message: StrengthAnswer | 'ready') => {
      if (message === 'ready') {
        slot.ready = true;
      } else {
        const pending = slot.current;
        if (pending === undefined || pending.job.id !== message.id) return;
        slot.current = undefined;
        clearTimeout(pending.timer);
        if ('error' in message) pending.reject(new Error(message.error));
        else pending.resolve(message);
      }
      if (this.#queue.length === 0 && slot.current === undefined) worker.unref();
      this.#dispatch();
    });
    worker.on('error', (error: Error) => this.#retire(i, slot, error));
    worker.on('exit', () => this.#retire(i, slot, new Error('password strength worker exited')));
    return slot;
  }

  /** Drops a worker (failed, exited or over budget): its job is refused, the next use spawns. */
  #retire(i: number, slot: Slot, error: Error): void {
    if (this.#slots[i] !== slot) return;
    this.#slots[i] = undefined;
    const pending = slot.current;
    slot.current = undefined;
    if (pending !== undefined) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    void slot.worker.terminate();
    // A worker that never got ready cannot load: refuse what waits instead of respawning forever.
    if (!slot.ready) {
      for (const waiting of this.#queue.splice(0)) {
        clearTimeout(waiting.timer);
        waiting.reject(error);
      }
      return;
    }
    this.#dispatch();
  }
}

let shared: PasswordStrengthPool | undefined;

/**
 * The process's pool: one worker per spare core, at most two; 3 s to run one password (over ten
 * times the worst 32-character case measured idle), 3 s to wait for a worker, 64 waiting.
 */
export function passwordStrengthPool(): PasswordStrengthPool {
  shared ??= new PasswordStrengthPool({
    size: Math.min(2, Math.max(1, availableParallelism() - 1)),
    runBudgetMs: 3_000,
    queueBudgetMs: 3_000,
    maxQueue: 64,
  });
  return shared;
}

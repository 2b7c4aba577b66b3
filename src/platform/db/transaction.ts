import type { IsolationLevel, Kysely, Transaction } from 'kysely';
import { setTimeout as sleep } from 'node:timers/promises';
import { isStalePreparedStatement } from './prepared.ts';

/** What a unit of work receives besides its transaction. */
export interface TransactionContext {
  /** Runs `effect` only after the transaction committed (never on rollback or retry). */
  afterCommit(effect: () => void | Promise<void>): void;
  /** 1 on the first try, 2 on the first retry... */
  readonly attempt: number;
}

export interface TransactionOptions {
  isolation?: IsolationLevel;
  /** Retries of serialization failures and deadlocks (default 3). */
  retries?: number;
  /** First backoff in ms, doubled each retry, with full jitter (default 20). */
  baseDelayMs?: number;
  /** Receives errors thrown by after-commit effects, which never fail the committed work. */
  onEffectError?: (error: unknown) => void;
}

/** serialization_failure, deadlock_detected: safe to retry the whole unit of work. */
const RETRYABLE = new Set(['40001', '40P01']);

/**
 * Whether the whole unit of work may be run again: a serialization failure or deadlock, or a
 * named prepared statement made stale by DDL (prepared.ts: the retry runs it unnamed).
 */
export function isRetryableTransactionError(error: unknown): boolean {
  return RETRYABLE.has((error as { code?: string })?.code ?? '') || isStalePreparedStatement(error);
}

/**
 * Runs `fn` in one transaction, retrying it on serialization failures, deadlocks and stale prepared
 * statements with jittered exponential backoff. Effects registered with `afterCommit` run once,
 * after the commit succeeded.
 */
export async function withTransaction<T, S = unknown>(
  db: Kysely<S>,
  fn: (trx: Transaction<S>, ctx: TransactionContext) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const retries = options.retries ?? 3;
  const base = options.baseDelayMs ?? 20;
  for (let attempt = 1; ; attempt++) {
    const effects: (() => void | Promise<void>)[] = [];
    try {
      let builder = db.transaction();
      if (options.isolation) builder = builder.setIsolationLevel(options.isolation);
      const result = await builder.execute((trx) =>
        fn(trx, { attempt, afterCommit: (effect) => effects.push(effect) }),
      );
      for (const effect of effects) {
        try {
          await effect();
        } catch (error) {
          options.onEffectError?.(error);
        }
      }
      return result;
    } catch (error) {
      if (attempt > retries || !isRetryableTransactionError(error)) throw error;
      await sleep(Math.random() * base * 2 ** (attempt - 1));
    }
  }
}

import type { CompiledQuery, Kysely, QueryResult } from 'kysely';
import { hash } from 'node:crypto';
import pg from 'pg';

/**
 * Named prepared statements for the hot listings.
 *
 * `pg` sends every query with parameters through the extended protocol with the unnamed statement,
 * so PostgreSQL parses, analyses and plans it again on every call. A named statement is parsed and
 * analysed once per connection; its plan is cached by PostgreSQL's plan cache (custom plans for
 * the first five runs, then a generic plan when that is estimated no worse).
 *
 * Kysely does not name queries and its driver calls `client.query(sql, parameters)`, so the name
 * travels in the SQL text: `prepared()` prefixes the statement with a comment carrying
 * `gw_` + a hash of the SQL text (one name per query shape; the table name is part of the text, so
 * a new dataset table is a new shape), and the pool's client class (`PreparingClient`) sends
 * marked statements as named ones. Every other statement is sent exactly as before. Everything
 * else stays Kysely's: transactions, plugins, the query log and metrics.
 *
 * Bounds: PostgreSQL keeps each named statement for the life of the connection, so each connection
 * names at most `MAX_PREPARED_PER_CONNECTION` distinct statements; past that, new shapes run
 * unnamed (as before) on that connection. Marked are the hot listings and the statements of the
 * busiest writes (placing an order, enqueueing a job): statements of a fixed shape, each parsed
 * and planned once per connection instead of on every call. A statement found stale (after DDL)
 * runs unnamed from then on, on every connection of the process: a read outside a transaction is
 * retried at once, unnamed (below); in a transaction the error aborts it and `withTransaction`
 * retries the whole unit of work.
 */

const OPEN = '/* prepared ';
/** `gw_` and 16 hex digits of the SQL text's SHA-256: collisions are out of reach. */
const NAME_LENGTH = 19;
const CLOSE = ' */\n';

/** Distinct named statements per connection; beyond, statements run unnamed on it. */
export const MAX_PREPARED_PER_CONNECTION = 200;

/**
 * Whether a named statement is unusable from now on (run it unnamed): a table it reads was
 * replaced by one with other columns, or its connection was DEALLOCATEd or DISCARDed. In a
 * transaction the error aborts it; `withTransaction` retries the unit of work (the retry runs the
 * statement unnamed).
 */
export function isStalePreparedStatement(error: unknown): boolean {
  const { code, message } = error as { code?: string; message?: string };
  // `cached plan must not change result type`: its table was replaced by one with other columns.
  if (code === '0A000') return message?.includes('cached plan') === true;
  // `prepared statement ... does not exist`: a DEALLOCATE or DISCARD ran on the connection.
  return code === '26000';
}

/** The statement's name for `sql`: `gw_` and a short hash of the text (one name per shape). */
export function preparedName(sql: string): string {
  return `gw_${hash('sha256', sql, 'hex').slice(0, NAME_LENGTH - 3)}`;
}

/**
 * Marked texts by text: the same few shapes are marked on every request, and hashing a statement
 * of a few hundred characters costs more than looking it up (a Map hashes a string once, faster
 * than SHA-256). Bounded: emptied when full, so shapes built from data (a dataset's table) cannot
 * grow it without end.
 */
const marked = new Map<string, string>();
const MARKED_MAX = 1_000;

/** `sql` marked to run as a named prepared statement on a `PreparingClient` (idempotent). */
export function preparedSql(sql: string): string {
  if (sql.startsWith(OPEN)) return sql;
  let text = marked.get(sql);
  if (text === undefined) {
    if (marked.size >= MARKED_MAX) marked.clear();
    text = `${OPEN}${preparedName(sql)}${CLOSE}${sql}`;
    marked.set(sql, text);
  }
  return text;
}

/** A compiled Kysely query marked to run as a named prepared statement. */
export function preparedQuery<R>(compiled: CompiledQuery<R>): CompiledQuery<R> {
  return { ...compiled, sql: preparedSql(compiled.sql) };
}

// `database.ts` imports this file (the pool's client class): the database type is spelled out
// here, not imported back.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

/**
 * Runs a Kysely query (a builder or `sql` template) as a named prepared statement on `db` (the
 * database or a transaction). For read statements of bounded shapes: listings.
 */
export function executePrepared<R>(
  db: AnyDb,
  query: { compile(db: AnyDb): CompiledQuery<R> },
): Promise<QueryResult<R>> {
  const compiled = query.compile(db);
  return db.executeQuery(preparedQuery(compiled));
}

function nameOf(text: string): string | null {
  if (!text.startsWith(OPEN)) return null;
  return text.slice(OPEN.length, OPEN.length + NAME_LENGTH);
}

// `pg.Client.prototype.query`, looked up at each call rather than captured once, so what wraps it
// later (the tests' statement counters, instrumentation) sees these calls too.
// eslint-disable-next-line @typescript-eslint/unbound-method
const baseQuery = (): pg.Client['query'] => pg.Client.prototype.query;

/**
 * Runs `pg.Client.query` through its callback form and answers with a promise of our own.
 *
 * Why not pg's own promise form (`client.query(text, values)` without a callback, which Kysely's
 * driver uses): with pg 8.23 on Node 24, measured under a paced load (bench/shop's listing, and
 * a bare node:http server doing `pool.connect()`, `await client.query()`, `release()` at 400 to
 * 600 requests/s), everything a query allocates there (its `Query`, the parsed rows, the awaiting
 * request's objects) outlives the young generation: V8 promoted 10 MB of every 48 MB scavenge,
 * scavenges took 10 to 20 ms instead of 1 to 2, and the old generation filled until a 60 ms
 * mark-compact. The same server through the callback form, or through `pool.query` (which uses
 * it), promotes about nothing. The forms differ in one store: the promise form makes the `Query`
 * without a callback and then stores its resolver into `query.callback`; the callback form hands
 * the callback to the `Query` constructor. Plain JavaScript doing the first promotes the same way
 * on Node 20 and 24, with or without the JIT (the 20-line repro in docs/benchmarks.md); why V8
 * keeps it is not known, and a heap snapshot's full collection frees it all. The error's stack is
 * re-captured as pg does, so it leads back to the caller rather than to the socket read.
 */
function queryByCallback(
  client: pg.Client,
  text: unknown,
  values: unknown,
): Promise<pg.QueryResult> {
  return new Promise<pg.QueryResult>((resolve, reject) => {
    Reflect.apply(baseQuery(), client, [
      text,
      values,
      (error: Error | null, result: pg.QueryResult) => {
        if (error) reject(error);
        else resolve(result);
      },
    ]);
  }).catch((error: unknown) => {
    if (error instanceof Error) Error.captureStackTrace(error);
    throw error;
  });
}

/**
 * Whether a call is pg's promise form: no callback anywhere (last argument, or a config's own
 * `callback`), and not a submittable (a cursor or stream, which pg hands back as it is).
 */
function isPromiseCall(args: readonly unknown[]): boolean {
  const [first] = args;
  if (first === null || first === undefined || args.length > 3) return false;
  if (args.some((arg) => typeof arg === 'function')) return false;
  if (typeof first === 'object') {
    const config = first as { submit?: unknown; callback?: unknown };
    if (typeof config.submit === 'function' || typeof config.callback === 'function') return false;
  }
  return typeof first === 'string' || typeof first === 'object';
}

/**
 * The pool's client: sends statements marked by `preparedSql` as named prepared statements, within
 * the per-connection bound, and runs every promise-form call through pg's callback form
 * (`queryByCallback`); calls with a callback go to `pg.Client.query` untouched.
 */
export class PreparingClient extends pg.Client {
  /** Names used on this connection (prepared, or being prepared). */
  readonly #named = new Set<string>();
  /**
   * Names given up (stale after DDL): run unnamed. Shared by every connection of the process, so
   * the retry of a transaction aborted by a stale statement cannot meet the same statement, stale
   * too, on another connection. (Names are hashes of the text: a shape stale in one database
   * runs unnamed in the others too, which is slower, never wrong.) Bounded as `marked` is:
   * emptied when full (a name stale again then costs one more retry).
   */
  static readonly #stale = new Set<string>();

  /** Distinct statements this connection has named (for tests and metrics). */
  get preparedCount(): number {
    return this.#named.size;
  }

  static {
    // `pg.Client.query` has a dozen overloads; this forwards every call shape as it is but two:
    // a marked text with an array of values, with or without a callback (Kysely's driver calls
    // without, `pool.query` with one), runs named; any other promise-form call runs through the
    // callback form (`queryByCallback`).
    PreparingClient.prototype.query = function query(
      this: PreparingClient,
      ...args: unknown[]
    ): unknown {
      const [text, values, callback] = args;
      const name =
        typeof text === 'string' &&
        Array.isArray(values) &&
        (callback === undefined || typeof callback === 'function')
          ? nameOf(text)
          : null;
      if (
        name === null ||
        PreparingClient.#stale.has(name) ||
        (!this.#named.has(name) && this.#named.size >= MAX_PREPARED_PER_CONNECTION)
      ) {
        if (!isPromiseCall(args)) return Reflect.apply(baseQuery(), this, args);
        // A config object is copied: the callback form writes its `callback` into it.
        const config = typeof text === 'object' ? { ...(text as object) } : text;
        return queryByCallback(this, config, values);
      }
      this.#named.add(name);
      const config = { name, text: text as string, values: values as unknown[] };
      const named = queryByCallback(this, config, undefined);
      const result = named.catch((error: unknown) => {
        if (!isStalePreparedStatement(error)) throw error;
        // The statement stays defined but unusable: run it unnamed from now on, on every
        // connection of the process. Retried once unnamed when no transaction was open (the
        // error ended nothing); in a transaction, the error has aborted it and is the caller's
        // (`withTransaction` runs the unit of work again).
        if (PreparingClient.#stale.size >= MARKED_MAX) PreparingClient.#stale.clear();
        PreparingClient.#stale.add(name);
        if (this.getTransactionStatus() !== 'I') throw error;
        return queryByCallback(this, text, values);
      });
      if (typeof callback !== 'function') return result;
      const done = callback as (error: unknown, result?: pg.QueryResult) => void;
      result.then(
        (r) => done(null, r),
        (error: unknown) => done(error),
      );
      return undefined;
    } as pg.Client['query'];
  }
}

import { Counter, Histogram, type Registry } from 'prom-client';
import { ObjectMismatchError, ObjectTooLargeError } from './types.ts';
import type { ByteRange, PutOptions, SignedGetOptions, Storage, StoredObject } from './types.ts';
import type { Readable } from 'node:stream';

interface StorageMetrics {
  operations: Counter<'driver' | 'op' | 'outcome'>;
  duration: Histogram<'driver' | 'op'>;
  bytesWritten: Counter<'driver'>;
}

const byRegistry = new WeakMap<Registry, StorageMetrics>();

/** The storage metrics in this registry (made once per registry: several platforms may share one). */
function storageMetrics(registry: Registry): StorageMetrics {
  let m = byRegistry.get(registry);
  if (m) return m;
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  m = {
    operations:
      existing('storage_operations_total') ??
      new Counter({
        name: 'storage_operations_total',
        help: 'Object storage operations by driver, operation and outcome (ok, not_found, too_large, mismatch, error)',
        labelNames: ['driver', 'op', 'outcome'],
        registers: [registry],
      }),
    duration:
      existing('storage_operation_duration_seconds') ??
      new Histogram({
        name: 'storage_operation_duration_seconds',
        help: 'Time of object storage operations (a get until its stream is open)',
        labelNames: ['driver', 'op'],
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [registry],
      }),
    bytesWritten:
      existing('storage_bytes_written_total') ??
      new Counter({
        name: 'storage_bytes_written_total',
        help: 'Bytes of objects stored (successful puts)',
        labelNames: ['driver'],
        registers: [registry],
      }),
  };
  byRegistry.set(registry, m);
  return m;
}

function outcomeOf(error: unknown): string {
  if (error instanceof ObjectTooLargeError) return 'too_large';
  if (error instanceof ObjectMismatchError) return 'mismatch';
  return 'error';
}

/** `storage` with every operation counted and timed in `registry`. */
export function meteredStorage(storage: Storage, registry: Registry): Storage {
  const m = storageMetrics(registry);
  const driver = storage.driver;
  for (const op of ['put', 'get', 'head', 'delete', 'list', 'sign'])
    for (const outcome of ['ok', 'error']) m.operations.inc({ driver, op, outcome }, 0);
  const run = async <T>(op: string, call: () => Promise<T>, found?: (v: T) => boolean) => {
    const stop = m.duration.startTimer({ driver, op });
    try {
      const value = await call();
      m.operations.inc({ driver, op, outcome: found && !found(value) ? 'not_found' : 'ok' });
      return value;
    } catch (error) {
      m.operations.inc({ driver, op, outcome: outcomeOf(error) });
      throw error;
    } finally {
      stop();
    }
  };
  return {
    driver,
    async put(key: string, body: Readable | Buffer, options: PutOptions): Promise<StoredObject> {
      const object = await run('put', () => storage.put(key, body, options));
      m.bytesWritten.inc({ driver }, object.size);
      return object;
    },
    get: (key: string, options?: { range?: ByteRange }) =>
      run(
        'get',
        () => storage.get(key, options),
        (v) => v !== null,
      ),
    head: (key: string) =>
      run(
        'head',
        () => storage.head(key),
        (v) => v !== null,
      ),
    delete: (key: string) => run('delete', () => storage.delete(key)),
    list: (prefix: string, options?: { limit?: number; after?: string }) =>
      run('list', () => storage.list(prefix, options)),
    signedGetUrl: (key: string, options: SignedGetOptions) =>
      run('sign', () => storage.signedGetUrl(key, options)),
    presignPut: (key, options) => run('sign', () => storage.presignPut(key, options)),
    ping: (signal?: AbortSignal) => storage.ping(signal),
    close: () => storage.close(),
  };
}

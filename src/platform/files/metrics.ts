import { sql } from 'kysely';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AnyDb } from '../db/index.ts';

/** The files area's metrics. */
export interface FileMetrics {
  uploads: Counter<'outcome'>;
  processing: Histogram<'outcome'>;
  failures: Counter<'reason'>;
}

/** Upload outcomes counted (`files_uploads_total{outcome}`). */
export type UploadOutcome =
  | 'stored'
  | 'too_large'
  | 'quota_exceeded'
  | 'type_refused'
  | 'image_refused'
  | 'invalid'
  | 'mismatch'
  | 'error';

const byRegistry = new WeakMap<Registry, FileMetrics>();

/**
 * The metrics in this registry (made once per registry: several platforms may share one). With
 * a database, `files_stored_bytes` is read from the usage table at scrape time.
 */
export function fileMetrics(registry: Registry, db?: AnyDb): FileMetrics {
  let m = byRegistry.get(registry);
  if (m) return m;
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  m = {
    uploads:
      existing<Counter<'outcome'>>('files_uploads_total') ??
      new Counter({
        name: 'files_uploads_total',
        help: 'Uploads (multipart and completed presigned) by outcome',
        labelNames: ['outcome'],
        registers: [registry],
      }),
    processing:
      existing<Histogram<'outcome'>>('files_processing_duration_seconds') ??
      new Histogram({
        name: 'files_processing_duration_seconds',
        help: 'Time to process one image (read, decode, variants, store) by outcome (ready, failed)',
        labelNames: ['outcome'],
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers: [registry],
      }),
    failures:
      existing<Counter<'reason'>>('files_processing_failures_total') ??
      new Counter({
        name: 'files_processing_failures_total',
        help: 'Files whose processing failed, by reason code',
        labelNames: ['reason'],
        registers: [registry],
      }),
  };
  if (db && !existing('files_stored_bytes')) {
    new Gauge({
      name: 'files_stored_bytes',
      help: 'Bytes of uploads stored and not deleted (the sum of every user’s quota use)',
      registers: [registry],
      async collect() {
        // A database that does not answer leaves the last value: the scrape still succeeds.
        try {
          const { rows } = await sql<{ total: string | null }>`
            select sum(used_bytes)::text as total from gw_file_usage`.execute(db);
          this.set(Number(rows[0]?.total ?? 0));
        } catch {
          return;
        }
      },
    });
  }
  byRegistry.set(registry, m);
  return m;
}

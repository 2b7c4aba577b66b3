// Property-based fuzzing of every route of the live OpenAPI document (docs/testing.md).
// CI: a fixed seed and a small budget. Nightly: `npm run test:fuzz:nightly` (FUZZ_RUNS, FUZZ_SEED).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { requestArb, type FuzzRequest } from './arbitraries.ts';
import {
  changedTables,
  contractProblems,
  describeExchange,
  fingerprinter,
  headersFor,
} from './checks.ts';
import { Actors, seedFixtures, startFuzzHarness } from './harness.ts';
import { operationsOf, ResponseValidators, type OpenApiDocument } from './openapi.ts';

/** Runs per route (CI default; the nightly script raises it). */
const RUNS = Number(process.env.FUZZ_RUNS ?? 25);
/** `random` picks one (printed, for replay); CI uses a fixed one. */
const SEED =
  process.env.FUZZ_SEED === 'random'
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(process.env.FUZZ_SEED ?? 20_261_205);
/** fast-check's replay path of a failure (with its seed and route), to rerun that case only. */
const PATH = process.env.FUZZ_PATH;
/** Only the routes whose `METHOD /path` contains this. */
const ROUTE = process.env.FUZZ_ROUTE;
/**
 * `all`: do not stop at a route's first failure (and shrink it), but run the whole budget and
 * list every distinct problem found, with one example each: for triage.
 */
const REPORT_ALL = process.env.FUZZ_REPORT === 'all';
/** A cap on each route's time (ms), so a slow route cannot eat the whole budget. */
const ROUTE_TIME_LIMIT_MS = Number(process.env.FUZZ_ROUTE_TIME_LIMIT_MS ?? 8_000);

describe('fuzz: every route of the OpenAPI document', async () => {
  const h = await startFuzzHarness();
  test.after(() => h.close());
  const { app } = h;
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDocument>();
  const operations = operationsOf(doc).filter((op) => !ROUTE || op.id.includes(ROUTE));
  const validators = new ResponseValidators(doc);
  const known = await seedFixtures(h);
  const actors = new Actors(h);
  const fingerprint = await fingerprinter(h.tdb.database.pool);

  test('the document lists the routes to walk', (t) => {
    t.diagnostic(`seed ${SEED}, ${RUNS} runs per route, ${operations.length} routes`);
    assert.ok(ROUTE || operations.length >= 40, `only ${operations.length} operations`);
    assert.ok(ROUTE || operations.some((op) => op.path.startsWith('/api/v1/admin/')));
  });

  for (const op of operations) {
    test(op.id, async (t) => {
      const statuses = new Map<string, number>();
      const findings = new Map<string, { count: number; example: string }>();
      const property = fc.asyncProperty(requestArb(op, known), async (req: FuzzRequest) => {
        await actors.ensure();
        const headers = await headersFor(app, actors, req.auth);
        if (req.body.contentType !== undefined) headers['content-type'] = req.body.contentType;
        const before = await fingerprint();
        let res;
        try {
          res = await app.inject({
            method: req.method as 'GET',
            url: req.url,
            headers,
            ...(req.body.text === undefined ? {} : { payload: req.body.text }),
          });
        } catch (error) {
          throw new Error(
            describeExchange(req, headers, null, [`inject threw: ${(error as Error).message}`]),
            { cause: error },
          );
        }
        const who = 'actor' in req.auth ? req.auth.actor : 'malformed';
        const seen = `${who} ${res.statusCode}`;
        statuses.set(seen, (statuses.get(seen) ?? 0) + 1);
        const problems = contractProblems(op, res, validators);
        if (res.statusCode >= 400 && res.statusCode < 500) {
          const changed = changedTables(before, await fingerprint());
          if (changed.length > 0)
            problems.push(`a rejected request (${res.statusCode}) changed ${changed.join(', ')}`);
        }
        if (problems.length === 0) return;
        const report = describeExchange(req, headers, res, problems);
        if (!REPORT_ALL) throw new Error(report);
        const code = /"code":"([A-Z_]+)"/.exec(res.body)?.[1] ?? res.statusCode;
        for (const problem of problems) {
          const kind = `${problem.replace(/\(documented: [^)]*\)/, '')} [${code}]`;
          const found = findings.get(kind);
          if (found) found.count += 1;
          else findings.set(kind, { count: 1, example: report });
        }
      });
      try {
        await fc.assert(property, {
          seed: SEED,
          numRuns: RUNS,
          ...(PATH ? { path: PATH } : {}),
          plugins: [fc.interruptAfterTimeLimit(ROUTE_TIME_LIMIT_MS)],
        });
      } finally {
        t.diagnostic(
          [...statuses.entries()]
            .sort()
            .map(([k, n]) => `${k}×${n}`)
            .join(' '),
        );
      }
      if (findings.size > 0) {
        assert.fail(
          [...findings.entries()]
            .map(([kind, f]) => `■ ${kind} (×${f.count})\n${f.example}`)
            .join('\n\n'),
        );
      }
    });
  }
});

// Property-based fuzzing of every route of the live OpenAPI document (docs/testing.md).
// CI: a fixed seed and a small budget. Nightly: `npm run test:fuzz:nightly` (FUZZ_RUNS, FUZZ_SEED).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { requestArb, type FuzzRequest } from './arbitraries.ts';
import {
  acceptedInvalidBody,
  changedTables,
  contractProblems,
  describeExchange,
  fingerprinter,
  headersFor,
} from './checks.ts';
import { Actors, seedFixtures, startFuzzHarness } from './harness.ts';
import { operationsOf, ResponseValidators, type OpenApiDocument } from './openapi.ts';

/** Runs per route (CI default; the nightly script raises it). */
const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
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
/**
 * The time for all routes (ms), shared equally: a route that has not finished its runs by then
 * stops there (and passes if nothing failed), so a slow machine cannot push the file past CI's
 * limit. The nightly script raises it with the runs.
 */
const TIME_BUDGET_MS = Number(process.env.FUZZ_TIME_BUDGET_MS ?? 60_000);

/** Each route's own seed, from the base seed and its name: routes do not all see the same cases. */
function routeSeed(base: number, id: string): number {
  let hash = base | 0;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

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
  let lastFingerprint: Map<string, string> | null = null;

  test('the document lists the routes to walk', (t) => {
    t.diagnostic(`seed ${SEED}, ${RUNS} runs per route, ${operations.length} routes`);
    assert.ok(ROUTE || operations.length >= 40, `only ${operations.length} operations`);
    assert.ok(ROUTE || operations.some((op) => op.path.startsWith('/api/v1/admin/')));
  });

  // The checks below must be able to fail: each is shown a planted defect.
  test('the checks catch an undocumented status, a body off its schema, a 5xx and a data change', async () => {
    await actors.ensure();
    const me = operationsOf(doc).find((op) => op.id === 'GET /api/v1/users/me');
    assert.ok(me);
    const res = await app.inject({ method: 'GET', url: me.path, headers: actors.user.headers });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(contractProblems(me, res, validators), []);
    const only500 = { ...me, responses: { '500': me.responses['500'] ?? [] } };
    assert.match(contractProblems(only500, res, validators).join(), /status 200 is not documented/);
    const tampered = { ...res, body: '{"id":1}', statusCode: 200 } as typeof res;
    assert.match(contractProblems(me, tampered, validators).join(), /does not match the 200/);
    const crashed = { ...res, statusCode: 500 } as typeof res;
    assert.match(contractProblems(me, crashed, validators).join(), /answered 500/);
    const pool = h.tdb.database.pool;
    const before = await fingerprint();
    await pool.query(
      `update gw_user set failed_login_count = failed_login_count + 1 where id = $1`,
      [actors.user.userId],
    );
    assert.deepEqual(
      changedTables(before, await fingerprint()),
      [],
      'brute-force counters are left out',
    );
    await pool.query(`update gw_user set username = username || 'x' where id = $1`, [
      actors.user.userId,
    ]);
    assert.match(changedTables(before, await fingerprint()).join(), /^gw_user /);
    lastFingerprint = null;
  });

  for (const op of operations) {
    test(op.id, async (t) => {
      const seed = routeSeed(SEED, op.id);
      // Past its share of the budget a route sends nothing more (its remaining runs pass
      // unsent), except while shrinking a failure. fast-check's interruptAfterTimeLimit is not
      // used: it abandons the request in flight, which then runs into the next route's checks.
      const deadline = Date.now() + Math.max(1_000, TIME_BUDGET_MS / operations.length);
      let unsent = 0;
      let failing = false;
      const statuses = new Map<string, number>();
      const findings = new Map<string, { count: number; example: string }>();
      const property = fc.asyncProperty(requestArb(op, known), async (req: FuzzRequest) => {
        if (!failing && Date.now() > deadline) {
          unsent += 1;
          return;
        }
        if (await actors.ensure()) lastFingerprint = null;
        const headers = await headersFor(app, actors, req.auth);
        if (req.body.contentType !== undefined) headers['content-type'] = req.body.contentType;
        // The fingerprint taken after the previous request still holds when that request was
        // rejected (it changed nothing, or failed) and no actor was remade since.
        const before = lastFingerprint ?? (await fingerprint());
        lastFingerprint = null;
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
        if (req.method !== 'GET') actors.touched();
        const who = 'actor' in req.auth ? req.auth.actor : 'malformed';
        const seen = `${who} ${res.statusCode}`;
        statuses.set(seen, (statuses.get(seen) ?? 0) + 1);
        const problems = contractProblems(op, res, validators);
        const accepted = acceptedInvalidBody(op, req, res, validators);
        if (accepted) problems.push(accepted);
        if (res.statusCode >= 400 && res.statusCode < 500) {
          lastFingerprint = await fingerprint();
          const changed = changedTables(before, lastFingerprint);
          if (changed.length > 0)
            problems.push(`a rejected request (${res.statusCode}) changed ${changed.join(', ')}`);
        }
        if (problems.length === 0) return;
        const report = describeExchange(req, headers, res, problems);
        if (!REPORT_ALL) {
          failing = true;
          throw new Error(report);
        }
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
          seed,
          numRuns: RUNS,
          ...(PATH ? { path: PATH } : {}),
          includeErrorInReport: true,
        });
      } catch (error) {
        // fast-check's own hint names the route's derived seed; this one replays from the base.
        const path = /path: "([^"]+)"/.exec(String((error as Error).message))?.[1];
        const hint = `replay: FUZZ_SEED=${SEED} FUZZ_ROUTE='${op.id}'${path ? ` FUZZ_PATH=${path}` : ''} npm run test:fuzz`;
        t.diagnostic(hint);
        throw new Error(`${hint}\n${(error as Error).message}`, { cause: error });
      } finally {
        t.diagnostic(
          [...statuses.entries()]
            .sort()
            .map(([k, n]) => `${k}×${n}`)
            .join(' ') + (unsent > 0 ? ` (${unsent} runs past the time budget not sent)` : ''),
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

import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp, enabledModules } from '../../src/app.ts';
import { allApps } from '../../src/apps/index.ts';
import type { Config } from '../../src/platform/config/index.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { newId } from '../../src/platform/db/index.ts';
import { purgeDeletedAccountsJob, identitySettings } from '../../src/platform/identity/index.ts';
import { JOBS_SCHEMA } from '../../src/platform/jobs/index.ts';
import { createMetricsRegistry } from '../../src/platform/observability/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { LogCapture, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, createUser, grantRoles, signIn, signInAdmin } from '../helpers/identity.ts';
import { redisAnswers, TEST_REDIS_URL } from '../helpers/redis.ts';

/**
 * The app the fuzz suite walks: every app module (`allApps`, so routes added later are covered),
 * the identity and app mail templates, the job queue and the dev mailbox, as `main.ts` builds it.
 *
 * - `APP_ENV=development`: the development-only routes (dev mailbox, previews) are part of the
 *   document too, and they take user input.
 * - Job workers do not run: a worker changing a table between the two checksums of a request
 *   would read as "a rejected request changed data". Jobs are still enqueued (in pg-boss's own
 *   schema).
 * - Load shedding is off (`MAX_EVENT_LOOP_DELAY_MS=0`): a 503 because the shared 2-core CI
 *   machine is busy says nothing about the route; a timeout (HANDLER_TIMEOUT_MS) still answers.
 * - Rate limits stay off (as in every test): thousands of requests come from one IP.
 */
export interface FuzzHarness {
  app: FastifyInstance;
  tdb: TestDatabase;
  logs: LogCapture;
  config: Config;
  /** Whether the app runs on Redis (`REDIS_URL`) or its in-process stand-ins. */
  redis: boolean;
  /** Enqueues a job (nothing runs it) for the status routes: its id. */
  enqueue(userId: string): Promise<string>;
  close(): Promise<void>;
}

export async function startFuzzHarness(): Promise<FuzzHarness> {
  const useRedis = await redisAnswers();
  const config = testConfig({
    APP_ENV: 'development',
    APPS: 'all',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    LOG_LEVEL: 'warn',
    PUBLIC_URL: 'https://app.example.test',
    MAIL_FROM: 'Groundwork <no-reply@example.test>',
    ...(useRedis ? { REDIS_URL: TEST_REDIS_URL } : {}),
  });
  const logs = new LogCapture();
  const logger = pino({ level: 'warn' }, logs);
  const metrics = createMetricsRegistry();
  const tdb = await createTestDatabase({
    config,
    metrics,
    migrations: allMigrations(allApps),
  });
  // As main.ts builds it: the platform opens Redis and the queue (no workers) on the test database.
  const platform = await createPlatform(config, {
    logger,
    metrics,
    modules: enabledModules(config, allApps),
    database: tdb.database,
    work: false,
  });
  const app = await buildApp(config, { platform, apps: allApps });
  await app.ready();
  const purge = purgeDeletedAccountsJob(identitySettings(config).accountRetentionS);
  return {
    app,
    tdb,
    logs,
    config,
    redis: platform.hasRedis,
    enqueue: async (userId) => (await platform.jobs.send(purge, {}, { userId })).id,
    async close() {
      await app.close();
      await platform.close();
      await tdb.drop();
    },
  };
}

/** Who sends a request: no credentials, a signed-in account, or an admin signed in with MFA. */
export type ActorName = 'anonymous' | 'user' | 'admin';

export interface Actor {
  userId: string;
  sessionId: string;
  headers: Record<string, string>;
}

/**
 * The signed-in actors, remade when a request ended them (a fuzzed `DELETE /users/me`, logout,
 * an admin locking the account or taking its roles): `ensure()` before each request, `touched()`
 * after one that may have changed something (any method but GET).
 */
export class Actors {
  readonly #h: FuzzHarness;
  #checked = false;
  user!: Actor;
  admin!: Actor;
  constructor(h: FuzzHarness) {
    this.#h = h;
  }

  touched(): void {
    this.#checked = false;
  }

  /** Checks (after a change) that both actors still work, remakes those that do not: true if any was. */
  async ensure(): Promise<boolean> {
    if (this.#checked) return false;
    this.#checked = true;
    let remade = false;
    const { app } = this.#h;
    const probe = (actor: Actor | undefined, url: string) =>
      actor
        ? app.inject({ method: 'GET', url, headers: actor.headers }).then((r) => r.statusCode)
        : Promise.resolve(0);
    if ((await probe(this.user, '/api/v1/users/me')) !== 200) {
      remade = true;
      const user = await createUser(this.#h);
      const tokens = await signIn(app, user);
      this.user = {
        userId: user.id,
        sessionId: tokens.sessionId,
        headers: bearer(tokens.accessToken),
      };
    }
    if ((await probe(this.admin, '/api/v1/admin/roles')) !== 200) {
      remade = true;
      const { user, headers, tokens } = await signInAdmin(app, this.#h);
      this.admin = { userId: user.id, sessionId: tokens.sessionId, headers };
    }
    return remade;
  }

  headersOf(name: ActorName): Record<string, string> {
    return name === 'anonymous' ? {} : { ...this[name].headers };
  }
}

/**
 * Rows that exist before the fuzzing starts, so path parameters can name existing ids: accounts
 * (one locked, one unverified, one holding a custom role), their sessions, roles, an enqueued job.
 * Collected once, in a fixed order, so a seed replays the same choices.
 */
export async function seedFixtures(h: FuzzHarness): Promise<Map<string, string[]>> {
  const { app, tdb } = h;
  const pool = tdb.database.pool;
  const plain = await createUser(h);
  await createUser(h, { verified: false });
  const locked = await createUser(h);
  await pool.query(`update gw_user set locked_until = now() + interval '1 day' where id = $1`, [
    locked.id,
  ]);
  await pool.query(
    `insert into gw_role (id, name, description, permissions) values ($1, 'fuzz-role', 'made by the fuzz suite', '{users:read}')`,
    [newId()],
  );
  await grantRoles(h, plain.id, 'fuzz-role');
  await signIn(app, plain);
  const ids = async (sql: string) =>
    (await pool.query<{ id: string }>(sql)).rows.map((r) => String(r.id));
  const values = new Map<string, string[]>();
  const job = await h.enqueue(plain.id);
  values.set('user', await ids('select id from gw_user order by created_at, id'));
  values.set('session', await ids('select id from gw_session order by created_at, id'));
  values.set('role', await ids('select id from gw_role order by name'));
  values.set('job', [job]);
  values.set('queue', await ids(`select name as id from ${JOBS_SCHEMA}.queue order by name`));
  return values;
}

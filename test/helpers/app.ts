import type { FastifyInstance } from 'fastify';
import { generateKeyPairSync } from 'node:crypto';
import { Writable } from 'node:stream';
import { buildApp, knownModules, type BuildOptions } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/platform/config/index.ts';
import type { AnyModule } from '../../src/platform/modules/index.ts';

/** An Ed25519 signing key (PKCS#8 PEM) for configurations that require one (staging, production). */
export const TEST_JWT_PRIVATE_KEY = generateKeyPairSync('ed25519')
  .privateKey.export({ format: 'pem', type: 'pkcs8' })
  .toString();

/**
 * A validated test configuration: APP_ENV=test, silent-free logs captured by the caller. `apps`:
 * app modules not in `src/apps/index.ts` (fixtures) whose settings are validated too.
 */
export function testConfig(
  overrides: Record<string, string> = {},
  apps: readonly AnyModule[] = [],
): Config {
  const deployed = overrides.APP_ENV === 'staging' || overrides.APP_ENV === 'production';
  // Rate limits stay off unless a test turns them on: most tests send many requests from one IP.
  // The modules' settings are validated with the platform's, as at start.
  return loadConfig(
    {
      APP_ENV: 'test',
      LOG_LEVEL: 'info',
      RATE_LIMIT_ENABLED: 'false',
      // Load shedding off too: on a busy shared machine the event loop of a test process stalls for
      // seconds, and contract tests must not turn into 503s. The tests of shedding turn it on.
      MAX_EVENT_LOOP_DELAY_MS: '0',
      // Cheap argon2id in tests only (staging and production refuse it); those need a signing key.
      ...(deployed
        ? { AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY }
        : { ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1' }),
      ...overrides,
    },
    // An app given here replaces the one of the same name in src/apps/index.ts (a test's own
    // variant of it, such as the shop with a fake payment provider): each module listed once.
    { modules: [...knownModules().filter((m) => !apps.some((a) => a.name === m.name)), ...apps] },
  );
}

/** Collects the JSON log lines an app writes. */
export class LogCapture extends Writable {
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.raw.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((l) => l.length > 0),
    );
    done();
  }
  get lines(): Record<string, unknown>[] {
    return this.raw.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  get text(): string {
    return this.raw.join('\n');
  }
}

export interface TestApp {
  app: FastifyInstance;
  logs: LogCapture;
  config: Config;
}

/**
 * Builds the real app with test config. `setup` may add routes or health checks before `ready()`.
 * Close it with `app.close()` (use `t.after`).
 */
export async function buildTestApp(
  overrides: Record<string, string> = {},
  options: Omit<BuildOptions, 'logDestination'> & {
    setup?: (app: FastifyInstance) => void | Promise<void>;
  } = {},
): Promise<TestApp> {
  const config = testConfig(overrides);
  const logs = new LogCapture();
  const { setup, ...rest } = options;
  const app = await buildApp(config, { apps: [], ...rest, logDestination: logs });
  await setup?.(app);
  await app.ready();
  return { app, logs, config };
}

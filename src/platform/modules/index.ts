import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../config/index.ts';
import type { MigrationSet } from '../db/index.ts';
import type { AnyJob } from '../jobs/index.ts';
import type { MailTemplate } from '../mail/index.ts';

/** What an app brings to the platform. Later areas add migrations, jobs, permissions and events. */
export interface AppModule {
  /** Short name, used in `APPS=` and as the OpenAPI tag prefix. */
  readonly name: string;
  readonly description: string;
  /** OpenAPI tags the app's routes use. */
  readonly tags?: readonly { name: string; description: string }[];
  /** The app's migrations (`YYYYMMDDHHMM_app_what`), merged into one ordered history. */
  readonly migrations?: MigrationSet;
  /** The app's job types; their queues are created at start and worked by worker processes. */
  readonly jobs?: readonly AnyJob[];
  /** The app's mail templates (`defineMailTemplate`), sent with `app.platform.mail.send`. */
  readonly mailTemplates?: readonly MailTemplate[];
  /** Registers the app's routes; mounted under `/api/v1`. */
  readonly routes?: (app: FastifyInstance) => Promise<void>;
}

/** Declares an app module (identity function that checks the shape). */
export function defineApp(module: AppModule): AppModule {
  if (!/^[a-z][a-z0-9-]*$/.test(module.name))
    throw new Error(`app name ${module.name} must be kebab-case`);
  return module;
}

/** The modules enabled by `APPS` (`all` or a list); unknown names are a configuration error. */
export function selectApps(
  available: readonly AppModule[],
  wanted: readonly string[] | 'all',
): AppModule[] {
  if (wanted === 'all') return [...available];
  const byName = new Map(available.map((m) => [m.name, m]));
  const unknown = wanted.filter((n) => !byName.has(n));
  if (unknown.length > 0) {
    const known = [...byName.keys()].join(', ') || 'none';
    throw new ConfigError([
      { key: 'APPS', message: `unknown apps: ${unknown.join(', ')} (known: ${known})` },
    ]);
  }
  return wanted.map((n) => byName.get(n) as AppModule);
}

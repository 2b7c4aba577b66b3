import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { APP_ENVS, type AppEnv } from './app-env.ts';

/** The variable that turns `.env` file reading off (`off`) or on (`on`, the default). */
export const ENV_FILE_SWITCH = 'GROUNDWORK_ENV_FILE';

/**
 * The files read for an environment, lowest precedence first (a later file overrides an earlier
 * one; the process environment overrides them all). `.env.<APP_ENV>` is committed and holds no
 * secret; `.env.<APP_ENV>.local` (ignored by git) holds a local simulation's secrets. `.env` is the
 * developer's own file, read in development and test only: staging and production simulations
 * must not pick up development values from it.
 */
export function envFileNames(appEnv: AppEnv): string[] {
  const local = appEnv === 'development' || appEnv === 'test' ? ['.env'] : [];
  return [...local, `.env.${appEnv}`, `.env.${appEnv}.local`];
}

/**
 * The variables of the `.env` files for this environment in `cwd`, parsed by Node's `parseEnv`.
 * Nothing is read when `GROUNDWORK_ENV_FILE=off` (the image sets it: a container gets its
 * configuration from its orchestrator, never from a file baked in or mounted by accident) or when
 * `APP_ENV` is not a known environment (the loader reports it). Only the process environment
 * decides this: a file cannot turn file reading on or off.
 */
export function readEnvFiles(
  source: Readonly<Record<string, string | undefined>>,
  cwd: string,
): Record<string, string> {
  if (source[ENV_FILE_SWITCH] === 'off') return {};
  const appEnv = source.APP_ENV ?? 'development';
  if (!(APP_ENVS as readonly string[]).includes(appEnv)) return {};
  const out: Record<string, string> = {};
  for (const name of envFileNames(appEnv as AppEnv)) {
    const file = join(cwd, name);
    if (existsSync(file)) Object.assign(out, parseEnv(readFileSync(file, 'utf8')));
  }
  // The environment a file is read for is the process's: a file naming another one is ignored.
  delete out.APP_ENV;
  delete out[ENV_FILE_SWITCH];
  return out;
}

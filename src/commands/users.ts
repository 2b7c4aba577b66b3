import { createCache } from '../platform/cache/index.ts';
import type { Config } from '../platform/config/index.ts';
import { openDatabase, runningEmbeddedUrl } from '../platform/db/index.ts';
import { HttpError } from '../platform/http/index.ts';
import { AccessControl, AdminService, identitySettings } from '../platform/identity/index.ts';
import type { Logger } from '../platform/observability/index.ts';
import { closeRedis, connectRedis } from '../platform/redis/index.ts';

const USAGE = `usage: main users <command>
  grant-role <email-or-username> <role>   give the account a role (audited as a system action)`;

/** What an MFA-only role means for the account, and how it enrols (the role is useless without). */
function mfaNote(login: string, role: string): string {
  return `
The role ${role} requires MFA: its permissions count only in a session signed in with a second
factor, so until ${login} signs in with one, its requests needing them answer 403 MFA_REQUIRED.
To enrol, signed in as ${login} (POST /api/v1/auth/login), with its access token:
  1. POST /api/v1/auth/mfa/totp/setup: add the returned otpauthUri (or the qrSvg) to an
     authenticator app;
  2. POST /api/v1/auth/mfa/totp/enable with {"code": "<the app's 6 digits>"}: keep the 10 backup
     codes it returns;
  3. sign in again: POST /api/v1/auth/login answers an mfaToken, then POST /api/v1/auth/mfa/verify
     with {"mfaToken", "code"} gives the session that holds the ${role} permissions.
An account that already has an authenticator only does step 3. See docs/identity.md (MFA).
`;
}

/** `main users ...`: account commands for operators (the first admin); returns the exit code. */
export async function runUsersCommand(
  args: readonly string[],
  config: Config,
  logger: Logger,
): Promise<number> {
  const [sub, login, role] = args;
  if (sub !== 'grant-role' || !login || !role) {
    process.stderr.write(`${USAGE}\n`);
    return 64;
  }
  // With no DATABASE_URL, the embedded server `npm start` runs on DATA_DIR (if it does) serves
  // this command too: it connects as a client, so the first admin is made while the server runs.
  const attach = config.database.url === null ? runningEmbeddedUrl(config.database.dataDir) : null;
  let database;
  try {
    database = await openDatabase(config, {
      logger,
      role: 'users',
      ...(attach ? { url: attach } : {}),
    });
  } catch (error) {
    logger.error({ err: error }, `users ${sub}: cannot open the database`);
    return 1;
  }
  if (attach)
    logger.info(
      { dataDir: config.database.dataDir },
      'using the embedded database of the server running on DATA_DIR',
    );
  // With Redis the running servers' cached permissions are dropped at once; without it, each
  // server sees the new role after AUTH_PERMISSION_CACHE_TTL at most.
  const redis = await connectRedis(config, logger);
  const cache = createCache({ redis, logger });
  try {
    const access = new AccessControl({
      db: database.db,
      cache,
      ttlSeconds: identitySettings(config).permissionCacheTtlS,
    });
    const admin = new AdminService({
      db: database.db,
      access,
      paging: { secret: config.secrets.appSecret, estimateAbove: config.database.estimateAbove },
    });
    const { userId, added } = await admin.grantRole(login, role);
    logger.info(
      { userId, role },
      added ? `granted the role ${role}` : `the account already holds the role ${role}`,
    );
    if ((await admin.roles()).find((r) => r.name === role)?.mfaRequired)
      process.stdout.write(mfaNote(login, role));
    return 0;
  } catch (error) {
    if (error instanceof HttpError) {
      process.stderr.write(`users ${sub}: ${error.detail ?? error.message}\n`);
      return 1;
    }
    logger.error({ err: error }, `users ${sub} failed`);
    return 1;
  } finally {
    cache.close();
    if (redis) await closeRedis(redis);
    await database.close();
  }
}

import { createCache } from '../platform/cache/index.ts';
import type { Config } from '../platform/config/index.ts';
import { openDatabase } from '../platform/db/index.ts';
import { HttpError } from '../platform/http/index.ts';
import { AccessControl, AdminService } from '../platform/identity/index.ts';
import type { Logger } from '../platform/observability/index.ts';
import { closeRedis, connectRedis } from '../platform/redis/index.ts';

const USAGE = `usage: main users <command>
  grant-role <email-or-username> <role>   give the account a role (audited as a system action)`;

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
  let database;
  try {
    database = await openDatabase(config, { logger, role: 'users' });
  } catch (error) {
    logger.error({ err: error }, `users ${sub}: cannot open the database`);
    return 1;
  }
  // With Redis the running servers' cached permissions are dropped at once; without it, each
  // server sees the new role after AUTH_PERMISSION_CACHE_TTL at most.
  const redis = await connectRedis(config, logger);
  const cache = createCache({ redis, logger });
  try {
    const access = new AccessControl({
      db: database.db,
      cache,
      ttlSeconds: config.identity.permissionCacheTtlS,
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

import { verifyAuditChain } from '../platform/audit/index.ts';
import type { Config } from '../platform/config/index.ts';
import { openDatabase, runningEmbeddedUrl } from '../platform/db/index.ts';
import type { Logger } from '../platform/observability/index.ts';

const USAGE = `usage: main audit <command>
  verify   walk the audit trail's hash chain in order: OK with the count, or the first broken link`;

/** Exit code of a chain that does not verify (distinct from usage 64 and "could not run" 1). */
export const EXIT_CHAIN_BROKEN = 2;

/**
 * `main audit ...`: operator commands on the audit trail; returns the exit code. `verify` prints
 * `audit chain OK: N records, head seq S hash H` (record the head elsewhere: a later run showing
 * the same prefix proves nothing before it changed), or the first broken link and exits 2.
 */
export async function runAuditCommand(
  args: readonly string[],
  config: Config,
  logger: Logger,
): Promise<number> {
  const [sub] = args;
  if (sub !== 'verify') {
    process.stderr.write(`${USAGE}\n`);
    return 64;
  }
  // As `users`: with no DATABASE_URL, the embedded server `npm start` runs on DATA_DIR serves it.
  const attach = config.database.url === null ? runningEmbeddedUrl(config.database.dataDir) : null;
  let database;
  try {
    database = await openDatabase(config, {
      logger,
      role: 'audit',
      ...(attach ? { url: attach } : {}),
    });
  } catch (error) {
    logger.error({ err: error }, `audit ${sub}: cannot open the database`);
    return 1;
  }
  try {
    const verdict = await verifyAuditChain(database.db);
    if (verdict.ok) {
      process.stdout.write(
        `audit chain OK: ${verdict.count} records, head seq ${verdict.headSeq} hash ${verdict.headHash}\n`,
      );
      return 0;
    }
    const { broken } = verdict;
    process.stdout.write(
      `audit chain BROKEN at seq ${broken.seq}${broken.id ? ` (id ${broken.id})` : ''}: ${broken.reason}: ${broken.message}\n` +
        `records verified before it: ${verdict.count}\n`,
    );
    return EXIT_CHAIN_BROKEN;
  } catch (error) {
    logger.error({ err: error }, `audit ${sub} failed`);
    return 1;
  } finally {
    await database.close();
  }
}

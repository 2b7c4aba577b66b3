// Child process of test/integration/events-crash.test.ts, killed with SIGKILL by the parent.
// `node events-child.ts <database url> publish`: publishes one event, commits, prints
// `committed <id>` and waits (no dispatcher here). `... handle`: runs a dispatcher whose handler
// prints `handling <id>` and never returns.
import pino from 'pino';
import { enabledModules } from '../../src/app.ts';
import { openDatabase, withTransaction } from '../../src/platform/db/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { testConfig } from './app.ts';
import { crashEvent, crashModule, crashState } from './events-crash.ts';

const [url, mode] = process.argv.slice(2);
if (!url || (mode !== 'publish' && mode !== 'handle'))
  throw new Error('usage: <url> publish|handle');
const config = testConfig({ EVENTS_HANDLER_TIMEOUT_MS: '2000', EVENTS_POLL_INTERVAL_MS: '100' });
const logger = pino({ level: 'silent' });
const database = await openDatabase(config, { logger, url });
crashState.hang = true;
crashState.onHandle = (id) => process.stdout.write(`handling ${id}\n`);
const platform = await createPlatform(config, {
  modules: enabledModules(config, [crashModule]),
  database,
  connect: false,
  redis: null,
  work: mode === 'handle',
  logger,
});
process.stdout.write('ready\n');
if (mode === 'publish') {
  const { id } = await withTransaction(database.db, (trx) =>
    platform.events.publish(trx, crashEvent, { data: { n: 1 } }),
  );
  process.stdout.write(`committed ${id}\n`);
}
// Waits for the parent's SIGKILL.
setInterval(() => undefined, 60_000);

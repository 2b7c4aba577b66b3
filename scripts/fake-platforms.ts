/**
 * `npm run fake-platforms`: the fake Instagram, Facebook Pages and YouTube APIs on loopback, for
 * local trials. Prints one `KEY=value` per line (the `PUBLISHING_*` settings that point the
 * adapters at them, and `FAKE_PLATFORMS_URL`), then serves until SIGINT or SIGTERM.
 * `FAKE_PLATFORMS_PORT` picks the port (default: any free one).
 */
import { startFakePlatforms } from '../test/fakes/social/server.ts';

const port = Number(process.env.FAKE_PLATFORMS_PORT ?? '0');
const fakes = await startFakePlatforms({ port: Number.isInteger(port) && port > 0 ? port : 0 });
const lines = Object.entries(fakes.env)
  .sort(([a], [b]) => a.localeCompare(b))
  .map(([key, value]) => `${key}=${value}`);
process.stdout.write(`${lines.join('\n')}\n`);

let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  void fakes.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

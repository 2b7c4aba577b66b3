/** `npm run seed -- <app>`: loads an app's demo data (each in `scripts/seed/<app>.ts`, exporting `main`). */
import { readdir } from 'node:fs/promises';

const available = (await readdir(new URL('./seed/', import.meta.url)).catch(() => []))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();
const [name = '', ...args] = process.argv.slice(2);
if (!available.includes(name)) {
  process.stderr.write(`usage: npm run seed -- <${available.join('|')}> [options]\n`);
  process.exit(64);
}
const seeder = (await import(`./seed/${name}.ts`)) as { main: (args: string[]) => Promise<void> };
await seeder.main(args);

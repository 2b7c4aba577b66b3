/** `npm run bench -- <name>`: runs one benchmark; each lives in its own module exporting `main`. */
const benchmarks: Record<string, () => Promise<{ main: () => Promise<void> }>> = {
  http: () => import('./http.ts'),
  db: () => import('./db.ts'),
  jobs: () => import('./jobs.ts'),
  traffic: () => import('./traffic.ts'),
  auth: () => import('./auth.ts'),
  soak: () => import('./soak.ts'),
  webhooks: () => import('./webhooks.ts'),
  files: () => import('./files.ts'),
  publishing: () => import('./publishing.ts'),
  spots: () => import('./spots.ts'),
  shop: () => import('./shop.ts'),
  'public-data': () => import('./public-data.ts'),
  realtime: () => import('./realtime.ts'),
  api: () => import('./api.ts'),
};

const name = process.argv[2] ?? '';
const load = Object.hasOwn(benchmarks, name) ? benchmarks[name] : undefined;
if (load === undefined) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benchmarks).join('|')}>\n`);
  process.exit(64);
}
await (await load()).main();

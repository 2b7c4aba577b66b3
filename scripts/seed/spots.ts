/**
 * `npm run seed -- spots [--spots 3000] [--pictures 300]`: PicASpot's demo data in the configured
 * database: six photographers, a few thousand spots around six cities (names, descriptions,
 * addresses, tags and categories drawn from a small vocabulary, so text search has something to
 * find), pictures generated here by sharp (uploaded through the files area, processed into
 * variants by its job, attached to spots), and favourites. Everything but the accounts goes
 * through the HTTP API in process, so the data is exactly what the app itself writes (events,
 * jobs, cache). The docs' examples (docs/spots.md) use it. Run twice, it does nothing.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { buildApp, enabledModules, knownModules } from '../../src/app.ts';
import { spotsApp } from '../../src/apps/spots/index.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { loadConfig } from '../../src/platform/config/index.ts';
import { migrateToLatest, newId } from '../../src/platform/db/index.ts';
import { identitySettings, PasswordHasher } from '../../src/platform/identity/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { call, multipart } from '../lib/seed-http.ts';

const PASSWORD = 'demo-Spots-Password-2026';
/** Every seeded spot carries it: the seed's mark (and an easy filter, `?tag=demo`). */
const MARK = 'demo';

const CITIES: { name: string; lat: number; lng: number; streets: string[] }[] = [
  {
    name: 'Paris',
    lat: 48.8566,
    lng: 2.3522,
    streets: ['Rue de Rivoli', 'Quai de la Tournelle', 'Rue Mouffetard'],
  },
  {
    name: 'Lisbon',
    lat: 38.7223,
    lng: -9.1393,
    streets: ['Rua Augusta', 'Calçada do Combro', 'Rua da Bica'],
  },
  {
    name: 'Berlin',
    lat: 52.52,
    lng: 13.405,
    streets: ['Oranienstraße', 'Karl-Marx-Allee', 'Kastanienallee'],
  },
  {
    name: 'Tokyo',
    lat: 35.6762,
    lng: 139.6503,
    streets: ['Omotesando', 'Nakamise-dori', 'Takeshita-dori'],
  },
  {
    name: 'New York',
    lat: 40.7128,
    lng: -74.006,
    streets: ['Bowery', 'Bleecker Street', 'Water Street'],
  },
  {
    name: 'Sydney',
    lat: -33.8688,
    lng: 151.2093,
    streets: ['George Street', 'Macquarie Street', 'Crown Street'],
  },
];
const ADJECTIVES = [
  'Golden',
  'Hidden',
  'Misty',
  'Old',
  'Painted',
  'Quiet',
  'Rusty',
  'Sunset',
  'Blue',
  'Twilight',
  'Windy',
  'Secret',
];
const PLACES: [string, string][] = [
  ['harbour', 'water'],
  ['bridge', 'bridge'],
  ['mural', 'mural'],
  ['rooftop', 'viewpoint'],
  ['staircase', 'architecture'],
  ['garden', 'nature'],
  ['market', 'street'],
  ['fountain', 'monument'],
  ['alley', 'street'],
  ['viewpoint', 'viewpoint'],
  ['lighthouse', 'monument'],
  ['café', 'street'],
  ['neon sign', 'night'],
  ['canal', 'water'],
];
const TAGS = [
  'sunrise',
  'sunset',
  'night',
  'reflection',
  'graffiti',
  'panorama',
  'rain',
  'long exposure',
  'street',
  'architecture',
];
const MOODS = [
  'Best just after sunrise, when the light comes in low.',
  'Crowded by day; come at blue hour for an empty frame.',
  'The reflections after rain are worth the wait.',
  'A wide lens helps: the space is tight.',
  'Locals say the colours are best in autumn.',
  'Bring a tripod for the long exposures at night.',
];

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`--${name} must be a non-negative integer`);
  return value;
}

/** A deterministic pseudo-random sequence (the same demo data on every machine). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const pick = <T>(r: () => number, list: readonly T[]): T =>
  list[Math.floor(r() * list.length)] as T;

/** A landscape-ish picture: sky gradient, sun, hills and a skyline, in the spot's hues. */
async function picture(i: number): Promise<Buffer> {
  const hue = (i * 37) % 360;
  const sun = 120 + ((i * 89) % 560);
  const towers = Array.from({ length: 9 }, (_, k) => {
    const w = 40 + ((i * 7 + k * 13) % 50);
    const h = 80 + ((i * 11 + k * 29) % 220);
    return `<rect x="${k * 90 + (i % 30)}" y="${600 - h}" width="${w}" height="${h}" fill="hsl(${(hue + 200) % 360},30%,${15 + (k % 3) * 6}%)"/>`;
  }).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800">
    <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="hsl(${hue},60%,35%)"/><stop offset="1" stop-color="hsl(${(hue + 40) % 360},80%,75%)"/>
    </linearGradient></defs>
    <rect width="1200" height="800" fill="url(#sky)"/>
    <circle cx="${sun}" cy="${260 + (i % 5) * 30}" r="70" fill="hsl(${(hue + 60) % 360},95%,80%)"/>
    <path d="M0 620 Q 300 ${520 + (i % 7) * 10} 600 600 T 1200 580 V 800 H 0 Z" fill="hsl(${(hue + 120) % 360},35%,30%)"/>
    ${towers}
  </svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 80 }).toBuffer();
}

export async function main(args: string[]): Promise<void> {
  const spotCount = option(args, 'spots', 3000);
  const pictureCount = Math.min(option(args, 'pictures', 300), spotCount);
  const modules = knownModules();
  const config = loadConfig(
    {
      ...process.env,
      // The seed signs its demo accounts in from one address and creates thousands of spots.
      RATE_LIMIT_ENABLED: 'false',
      // Demo spots are public at once.
      SPOTS_MODERATE_NEW_ACCOUNTS: 'false',
      STORAGE_LOCAL_DIR:
        process.env.STORAGE_LOCAL_DIR ?? (await mkdtemp(join(tmpdir(), 'gw-spots-seed-'))),
    },
    { modules: modules.some((m) => m.name === 'spots') ? modules : [...modules, spotsApp] },
  );
  const platform = await createPlatform(config, {
    logger: pino({ level: 'warn' }),
    modules: enabledModules(config, [spotsApp]),
    work: true,
    role: 'seed',
    prepare: (database) => migrateToLatest(database.db, allMigrations([spotsApp])).then(() => {}),
  });
  const app = await buildApp(config, { platform, apps: [spotsApp] });
  await app.ready();
  const pool = platform.database.pool;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const seeded = await pool.query(
      `select 1 from spots_spot where tags @> array[$1]::text[] limit 1`,
      [MARK],
    );
    if (seeded.rowCount) {
      out(`The demo spots are already there (tag "${MARK}"): nothing done.`);
      return;
    }

    // Six photographers, verified, one of them a moderator.
    const hasher = new PasswordHasher(identitySettings(config).argon2);
    const hash = await hasher.hash(PASSWORD);
    const stamp = Date.now().toString(36);
    const accounts = ['ada', 'grace', 'alan', 'edsger', 'barbara', 'mod'].map((name) => ({
      id: newId(),
      email: `${name}.${stamp}@spots.example`,
      username: `${name}_${stamp}`,
    }));
    for (const a of accounts)
      await pool.query(
        `insert into gw_user (id, email, username, password_hash, email_verified_at) values ($1, $2, $3, $4, now())`,
        [a.id, a.email, a.username, hash],
      );
    await pool.query(
      `insert into gw_user_role (user_id, role_id) select $1, id from gw_role where name = 'moderator'`,
      [accounts[5]?.id],
    );
    const headers: Record<string, string>[] = [];
    for (const a of accounts) {
      const tokens = await call<{ accessToken: string }>(
        app,
        'POST',
        '/api/v1/auth/login',
        {},
        {
          login: a.email,
          password: PASSWORD,
        },
      );
      headers.push({ authorization: `Bearer ${tokens.accessToken}` });
    }
    const S = '/api/v1/spots';
    const r = random(17);

    out(`creating ${String(spotCount)} spots around ${CITIES.map((c) => c.name).join(', ')}`);
    const spots: { id: string; owner: number }[] = [];
    for (let i = 0; i < spotCount; i++) {
      const city = CITIES[i % CITIES.length] as (typeof CITIES)[number];
      const [place, category] = pick(r, PLACES);
      const adjective = pick(r, ADJECTIVES);
      // A Gaussian around the centre (σ ≈ 3 km), so the centre is dense and the edges sparse.
      const radius = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-9))) * 0.027;
      const angle = 2 * Math.PI * r();
      const lat = city.lat + radius * Math.sin(angle);
      const lng = city.lng + (radius * Math.cos(angle)) / Math.cos((city.lat * Math.PI) / 180);
      const owner = i % 5;
      const tags = [MARK, pick(r, TAGS), pick(r, TAGS), city.name.toLowerCase()];
      const spot = await call<{ id: string }>(app, 'POST', S, headers[owner] ?? {}, {
        name: `${adjective} ${place}${i >= 100 ? ` ${String(i)}` : ''}`,
        description: `A ${adjective.toLowerCase()} ${place} in ${city.name}. ${pick(r, MOODS)}`,
        ...(i % 3 === 0
          ? { address: `${String(1 + (i % 120))} ${pick(r, city.streets)}, ${city.name}` }
          : {}),
        location: { lat: Number(lat.toFixed(6)), lng: Number(lng.toFixed(6)) },
        category,
        tags,
      });
      spots.push({ id: spot.id, owner });
      if ((i + 1) % 500 === 0) out(`  ${String(i + 1)} spots`);
    }

    out(`uploading ${String(pictureCount)} pictures and attaching them`);
    for (let i = 0; i < pictureCount; i++) {
      const spot = spots[i] as { id: string; owner: number };
      const who = headers[spot.owner] ?? {};
      const form = multipart('spots.picture', await picture(i), `spot-${String(i)}.jpg`);
      const file = await call<{ id: string }>(
        app,
        'POST',
        '/api/v1/files',
        { ...who, 'content-type': form.contentType },
        form.body,
        [201],
      );
      await call(app, 'POST', `${S}/${spot.id}/pictures`, who, {
        fileId: file.id,
        caption: `Seen on a demo walk (${String(i + 1)})`,
      });
      if ((i + 1) % 50 === 0) out(`  ${String(i + 1)} pictures`);
    }

    out('favourites');
    for (const [n, h] of headers.entries())
      for (let k = 0; k < Math.min(200, spots.length); k++) {
        // Popularity skewed towards the first spots, as in real life.
        const spot = spots[Math.floor(r() ** 3 * spots.length)] as { id: string; owner: number };
        if (spot.owner === n) continue;
        await call(app, 'PUT', `${S}/${spot.id}/favourite`, h, undefined, [204]);
      }

    // Let the files job finish the pictures (and the recount job the counters).
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      const { rows } = await pool.query<{ n: number }>(
        `select count(*)::int as n from spots_picture where status = 'processing'`,
      );
      const waiting = rows[0]?.n ?? 0;
      if (waiting === 0 || Date.now() > deadline) {
        if (waiting > 0)
          out(`${String(waiting)} pictures still processing: the next worker finishes them`);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const favourites = (
      await pool.query<{ n: number }>('select count(*)::int as n from spots_favourite')
    ).rows[0]?.n;
    out(
      `done: ${String(spots.length)} spots, ${String(pictureCount)} pictures, ${String(favourites ?? 0)} favourites; accounts ${accounts.map((a) => a.email).join(', ')} (password ${PASSWORD}; the last is a moderator)`,
    );
  } finally {
    await app.close();
    await platform.close();
  }
}

/**
 * The bare server of the API benchmark, forked by `api.ts` (arguments: `bare` and a JSON object,
 * `BareOptions`), one process per core: Fastify with no plugin, no logger and no response schema,
 * a `pg` pool of Groundwork's size, and on every request of every listing an EdDSA access token
 * verified with `jose` (signature, `typ`, issuer, audience, expiry; no cache: every request pays
 * for it), then the app's own statements (captured by `api-data.ts`) and the rows as JSON.
 * Nothing else: no session check, permission, rate limit, request log or metrics. Sends
 * `{ port }` once listening and answers each IPC message with `{ cpuMicros }`.
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { importSPKI, jwtVerify } from 'jose';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import type { BareListing } from './api-data.ts';

export interface BareOptions {
  databaseUrl: string;
  poolMax: number;
  /** The Ed25519 public key (SPKI PEM) the bench signed its tokens with. */
  publicKeyPem: string;
  issuer: string;
  audience: string;
  listings: BareListing[];
}

const HOST = '127.0.0.1';

async function start(options: BareOptions): Promise<number> {
  const key = await importSPKI(options.publicKeyPem, 'EdDSA');
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.poolMax,
    application_name: 'bench:api-bare',
  });
  pool.on('error', () => undefined);
  const app = Fastify({ logger: false });

  const unauthorized = (reply: FastifyReply) =>
    reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized' });

  for (const listing of options.listings) {
    app.get(listing.path, async (request: FastifyRequest, reply: FastifyReply) => {
      const header = request.headers.authorization;
      if (header === undefined || !header.startsWith('Bearer ')) return unauthorized(reply);
      try {
        await jwtVerify(header.slice(7), key, {
          algorithms: ['EdDSA'],
          issuer: options.issuer,
          audience: options.audience,
          typ: 'at+jwt',
          requiredClaims: ['sub', 'sid', 'exp', 'iat'],
        });
      } catch {
        return unauthorized(reply);
      }
      const rows: Record<string, unknown>[] = [];
      for (const statement of listing.statements)
        rows.push(
          ...(await pool.query<Record<string, unknown>>(statement.text, statement.values)).rows,
        );
      const page = rows.slice(0, listing.limit);
      const hasMore = rows.length > listing.limit;
      if (listing.shape === 'json')
        return reply
          .type('application/json; charset=utf-8')
          .send(
            `{"items":[${page.map((r) => r.j as string).join(',')}],"page":{"limit":${String(listing.limit)},"hasMore":${String(hasMore)}}}`,
          );
      return { items: page, page: { limit: listing.limit, hasMore } };
    });
  }
  await app.listen({ host: HOST, port: 0 });
  return (app.server.address() as AddressInfo).port;
}

const [kind, raw] = process.argv.slice(2);
if (kind !== 'bare' || raw === undefined || process.send === undefined) {
  process.stderr.write('usage: forked by bench/api.ts with `bare <options JSON>`\n');
  process.exit(64);
}
const port = await start(JSON.parse(raw) as BareOptions);
process.on('message', () => {
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
// The bench gone (even without stopping its children), this server goes too.
process.on('disconnect', () => process.exit(0));
// Stopped by the bench: exits normally (so that a `--cpu-prof` given in NODE_OPTIONS is written).
process.on('SIGTERM', () => process.exit(0));
process.send({ port });

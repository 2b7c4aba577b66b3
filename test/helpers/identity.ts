import type { FastifyInstance } from 'fastify';
import {
  identityMailTemplates,
  newOpaqueToken,
  PasswordHasher,
  type TokenPair,
  identitySettings,
} from '../../src/platform/identity/index.ts';
import { newId } from '../../src/platform/db/index.ts';
import type { Redis } from '../../src/platform/redis/index.ts';
import { eventually, startMailHarness, type MailHarness } from './mail.ts';

/** A password zxcvbn scores 4 that no test user has in its name. */
export const GOOD_PASSWORD = 'violet-Harbor-83-quantum-Mosaic';

/** The mail harness (database, queue, dev-mailbox mailer) with the identity templates. */
export function startIdentityHarness(
  overrides: Record<string, string> = {},
  options: { redis?: Redis | null } = {},
): Promise<MailHarness> {
  return startMailHarness({ templates: identityMailTemplates, overrides, redis: options.redis });
}

export interface TestUser {
  id: string;
  email: string;
  username: string;
  password: string;
}

let counter = 0;

/** Inserts an account directly (verified unless told otherwise), hashed with the harness's cost. */
export async function createUser(
  h: Pick<MailHarness, 'tdb' | 'config'>,
  options: { email?: string; username?: string; password?: string; verified?: boolean } = {},
): Promise<TestUser> {
  counter += 1;
  const suffix = `${process.pid}${counter}`;
  const user = {
    id: newId(),
    email: options.email ?? `user${suffix}@example.com`,
    username: options.username ?? `user_${suffix}`,
    password: options.password ?? GOOD_PASSWORD,
  };
  const hasher = new PasswordHasher(identitySettings(h.config).argon2);
  await h.tdb.database.pool.query(
    `insert into gw_user (id, email, username, password_hash, email_verified_at)
     values ($1, $2, $3, $4, $5)`,
    [
      user.id,
      user.email,
      user.username,
      await hasher.hash(user.password.normalize('NFKC')),
      options.verified === false ? null : new Date(),
    ],
  );
  return user;
}

/** Signs in through the API; asserts nothing (callers check the status). */
export function login(
  app: FastifyInstance,
  body: { login: string; password: string; rememberMe?: boolean },
  headers: Record<string, string> = {},
) {
  return app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: body, headers });
}

/** Signs in and returns the token pair (throws unless 200). */
export async function signIn(app: FastifyInstance, user: TestUser): Promise<TokenPair> {
  const res = await login(app, { login: user.email, password: user.password });
  if (res.statusCode !== 200) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`);
  return res.json<TokenPair>();
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The token in the newest dev-mailbox message of this template to this address. */
export async function mailedToken(
  h: MailHarness,
  to: string,
  template = 'identity.verify-email',
  after = 0,
): Promise<string> {
  return eventually(`a ${template} message to ${to}`, async () => {
    const { rows } = await h.tdb.database.pool.query<{ text: string }>(
      `select text from gw_mail_dev_message where recipient = $1 and template = $2
        order by created_at desc, id desc offset $3 limit 1`,
      [to, template, after],
    );
    return /token=([A-Za-z0-9_-]{43})/.exec(rows[0]?.text ?? '')?.[1];
  });
}

/** The dev-mailbox messages to an address (template names, oldest first). */
export async function mailsTo(h: MailHarness, to: string): Promise<string[]> {
  const { rows } = await h.tdb.database.pool.query<{ template: string }>(
    `select template from gw_mail_delivery where recipient = $1 order by created_at, id`,
    [to],
  );
  return rows.map((r) => r.template);
}

export { newOpaqueToken };

/** Gives an account roles directly in the database (as the operator's CLI would). */
export async function grantRoles(
  h: Pick<MailHarness, 'tdb'>,
  userId: string,
  ...roles: string[]
): Promise<void> {
  await h.tdb.database.pool.query(
    `insert into gw_user_role (user_id, role_id)
     select $1, id from gw_role where name = any($2::text[]) on conflict do nothing`,
    [userId, roles],
  );
}

/** Marks a session as signed in with a second factor (`amr` gets `otp`), as MFA would. */
export async function markMfa(
  app: FastifyInstance,
  h: Pick<MailHarness, 'tdb'>,
  sessionId: string,
): Promise<void> {
  const { rows } = await h.tdb.database.pool.query<{ user_id: string }>(
    `update gw_session set amr = array['pwd', 'otp'] where id = $1 returning user_id`,
    [sessionId],
  );
  // Written behind the service's back: drop the cached session check, as the service would.
  const userId = rows[0]?.user_id;
  if (userId) await app.identity.sessionCache.invalidateSession(userId, sessionId);
}

/** A verified account holding `admin`, signed in with MFA: bearer headers and the account. */
export async function signInAdmin(
  app: FastifyInstance,
  h: Pick<MailHarness, 'tdb' | 'config'>,
): Promise<{ user: TestUser; headers: Record<string, string>; tokens: TokenPair }> {
  const user = await createUser(h);
  await grantRoles(h, user.id, 'admin');
  const tokens = await signIn(app, user);
  await markMfa(app, h, tokens.sessionId);
  return { user, headers: bearer(tokens.accessToken), tokens };
}

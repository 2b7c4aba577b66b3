import '../mfa/tables.ts';
import { sql } from 'kysely';
import type { IdentityDb } from '../db.ts';
import type { WebauthnPurpose } from '../mfa/tables.ts';

type Executor = IdentityDb;

export interface PasskeyRow {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: Buffer;
  counter: string;
  transports: string[];
  name: string;
  flagged_at: Date | null;
  created_at: Date;
  last_used_at: Date | null;
}

export async function listPasskeys(db: Executor, userId: string): Promise<PasskeyRow[]> {
  return db
    .selectFrom('gw_passkey')
    .select([
      'id',
      'user_id',
      'credential_id',
      'public_key',
      'counter',
      'transports',
      'name',
      'flagged_at',
      'created_at',
      'last_used_at',
    ])
    .where('user_id', '=', userId)
    .orderBy('created_at', 'asc')
    .orderBy('id', 'asc')
    .execute();
}

/** The passkey with this credential id, locked until the transaction ends. */
export async function lockPasskeyByCredential(
  db: Executor,
  credentialId: string,
): Promise<PasskeyRow | undefined> {
  return db
    .selectFrom('gw_passkey')
    .select([
      'id',
      'user_id',
      'credential_id',
      'public_key',
      'counter',
      'transports',
      'name',
      'flagged_at',
      'created_at',
      'last_used_at',
    ])
    .where('credential_id', '=', credentialId)
    .forUpdate()
    .executeTakeFirst();
}

export async function insertPasskey(
  db: Executor,
  p: {
    id: string;
    userId: string;
    credentialId: string;
    publicKey: Buffer;
    counter: number;
    transports: string[];
    name: string;
    deviceType: string;
    backedUp: boolean;
  },
): Promise<boolean> {
  const row = await db
    .insertInto('gw_passkey')
    .values({
      id: p.id,
      user_id: p.userId,
      credential_id: p.credentialId,
      public_key: p.publicKey,
      counter: p.counter,
      transports: p.transports,
      name: p.name,
      device_type: p.deviceType,
      backed_up: p.backedUp,
      flagged_at: null,
      last_used_at: null,
    })
    .onConflict((oc) => oc.column('credential_id').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function recordPasskeyUse(db: Executor, id: string, counter: number): Promise<void> {
  await db
    .updateTable('gw_passkey')
    .set({ counter, last_used_at: sql<Date>`now()` })
    .where('id', '=', id)
    .execute();
}

export async function flagPasskey(db: Executor, id: string): Promise<void> {
  await db
    .updateTable('gw_passkey')
    .set({ flagged_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where('flagged_at', 'is', null)
    .execute();
}

export async function renamePasskey(
  db: Executor,
  userId: string,
  id: string,
  name: string,
): Promise<PasskeyRow | undefined> {
  await db
    .updateTable('gw_passkey')
    .set({ name })
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .execute();
  return (await listPasskeys(db, userId)).find((p) => p.id === id);
}

export async function deletePasskey(
  db: Executor,
  userId: string,
  id: string,
): Promise<{ name: string } | undefined> {
  return db
    .deleteFrom('gw_passkey')
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .returning('name')
    .executeTakeFirst();
}

// Ceremonies ------------------------------------------------------------------------------------

export async function insertCeremony(
  db: Executor,
  c: {
    id: string;
    purpose: WebauthnPurpose;
    challenge: string;
    userId: string | null;
    mfaTokenHash: string | null;
    ttlS: number;
  },
): Promise<void> {
  await db
    .insertInto('gw_webauthn_challenge')
    .values({
      id: c.id,
      purpose: c.purpose,
      challenge: c.challenge,
      user_id: c.userId,
      mfa_token_hash: c.mfaTokenHash,
      expires_at: sql<Date>`now() + make_interval(secs => ${c.ttlS})`,
      used_at: null,
    })
    .execute();
}

/**
 * Spends a live ceremony of this purpose (one conditional UPDATE: a ceremony is answered once,
 * even concurrently) and returns its challenge and user.
 */
export async function spendCeremony(
  db: Executor,
  id: string,
  purpose: WebauthnPurpose,
): Promise<
  { challenge: string; user_id: string | null; mfa_token_hash: string | null } | undefined
> {
  return db
    .updateTable('gw_webauthn_challenge')
    .set({ used_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .returning(['challenge', 'user_id', 'mfa_token_hash'])
    .executeTakeFirst();
}

import type { Transaction } from 'kysely';
import { HttpError } from '../../http/index.ts';
import type { IdentityTables } from '../db.ts';
import { RecoveryCodes } from '../recovery/errors.ts';
import { lockRoleHolders } from './repository.ts';

/** The role whose last active holder must stay (the platform's administrators). */
export const ADMIN_ROLE = 'admin';

/**
 * In the transaction of a change that would take `userId` away from the active holders of
 * `admin` (unassigned, locked by an administrator, deleted): 409 `LAST_ADMIN` when they are its
 * only active holder. The `admin` role row is locked first (see `lockRoleHolders`), so two
 * concurrent changes cannot each see the other as the one who stays.
 */
export async function refuseLastAdmin(
  trx: Transaction<IdentityTables>,
  userId: string,
): Promise<void> {
  const holders = await lockRoleHolders(trx, ADMIN_ROLE, userId);
  if (holders?.holds === true && holders.others === 0)
    throw new HttpError(RecoveryCodes.LAST_ADMIN, {
      detail:
        'This account is the last active holder of the admin role: give the role to another account first.',
    });
}

import { mergeMigrations, type MigrationSet } from '../platform/db/index.ts';
import type { AppModule } from '../platform/modules/index.ts';
import * as base from './202611220001_platform_base.ts';
import * as mail from './202611220800_platform_mail.ts';
import * as idempotency from './202611220900_platform_idempotency.ts';
import * as identity from './202611221000_platform_identity.ts';
import * as mailRetention from './202611221100_platform_mail_retention.ts';
import * as audit from './202612020100_platform_audit.ts';
import * as sessionAuth from './202612020200_platform_session_auth.ts';
import * as rbac from './202612020600_platform_rbac.ts';
import * as identityAccounts from './202612020300_platform_identity_accounts.ts';
import * as identityMfa from './202612020400_platform_identity_mfa.ts';
import * as identityOidc from './202612020500_platform_identity_oidc.ts';
import * as permissionDefaults from './202612061800_platform_permission_defaults.ts';
import * as events from './202612061810_platform_events.ts';
import * as auditChain from './202612061900_platform_audit_chain.ts';
import * as webhooks from './202612061910_platform_webhooks.ts';
import * as files from './202612062000_platform_files.ts';
import * as flags from './202612080300_platform_flags.ts';
import * as identityFactors from './202612080100_platform_identity_factors.ts';
import * as identityRecovery from './202612080200_platform_identity_recovery.ts';

/** The platform's own migrations, in order. Apps declare theirs in their module. */
export const platformMigrations: MigrationSet = {
  '202611220001_platform_base': base,
  '202611220800_platform_mail': mail,
  '202611220900_platform_idempotency': idempotency,
  '202611221000_platform_identity': identity,
  '202611221100_platform_mail_retention': mailRetention,
  '202612020100_platform_audit': audit,
  '202612020200_platform_session_auth': sessionAuth,
  '202612020300_platform_identity_accounts': identityAccounts,
  '202612020400_platform_identity_mfa': identityMfa,
  '202612020500_platform_identity_oidc': identityOidc,
  '202612020600_platform_rbac': rbac,
  '202612061800_platform_permission_defaults': permissionDefaults,
  '202612061810_platform_events': events,
  '202612061900_platform_audit_chain': auditChain,
  '202612061910_platform_webhooks': webhooks,
  '202612062000_platform_files': files,
  '202612080100_platform_identity_factors': identityFactors,
  '202612080200_platform_identity_recovery': identityRecovery,
  '202612080300_platform_flags': flags,
};

/** The one ordered history: the platform's migrations and those of the given apps. */
export function allMigrations(apps: readonly AppModule[]): MigrationSet {
  return mergeMigrations(platformMigrations, ...apps.map((a) => a.migrations ?? {}));
}

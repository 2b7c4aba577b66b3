import { defineModule } from '../modules/index.ts';
import { AUDIT_EXPORT_PERMISSION, registerAuditRoutes } from './routes.ts';

/** The audit trail's own routes: the NDJSON export (the listing is identity's admin API). */
export const auditModule = defineModule({
  name: 'audit',
  description: 'The tamper-evident audit trail: export of a time range.',
  // The permission check of its route is identity's.
  dependsOn: ['identity'],
  tags: [],
  permissions: [
    {
      name: AUDIT_EXPORT_PERMISSION,
      description: 'Export the audit trail of a time range (NDJSON, with the chain fields).',
      roles: ['admin'],
    },
  ],
  routes: (app, { platform }) => registerAuditRoutes(app, { database: platform.database }),
});

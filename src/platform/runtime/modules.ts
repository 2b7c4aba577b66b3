import { Type } from 'typebox';
import { auditModule } from '../audit/index.ts';
import { eventsModule } from '../events/index.ts';
import { bindFilePurposes, filesModule } from '../files/index.ts';
import { grantBuiltinPermission, identityModule } from '../identity/index.ts';
import { registerJobRoutes, JOBS_ADMIN_PERMISSION } from '../jobs/index.ts';
import { registerDevMailRoutes } from '../mail/index.ts';
import { bindChannels, realtimeModule } from '../realtime/index.ts';
import { flagsModule } from '../flags/index.ts';
import { storageModule } from '../storage/index.ts';
import { webhooksModule } from '../webhooks/index.ts';
import { defineModule, orderModules, type AnyModule, type Platform } from '../modules/index.ts';
import type { Config } from '../config/index.ts';

/** `GET /api/v1/jobs/:id` and the admin API over queues and dead letters. */
export const jobsModule = defineModule({
  name: 'jobs',
  description: 'Status of background jobs, and the admin API over queues and dead letters.',
  // The permission check of its admin routes is identity's.
  dependsOn: ['identity'],
  tags: [{ name: 'jobs', description: 'Status of background jobs.' }],
  permissions: [
    {
      name: JOBS_ADMIN_PERMISSION,
      description: 'Read queue counts; list, show, replay and delete dead letters.',
      roles: ['admin'],
    },
  ],
  routes: (app, { platform }) =>
    registerJobRoutes(app, {
      jobs: platform.jobs,
      cursorSecret: platform.config.secrets.appSecret,
    }),
});

/** Development only (`APP_ENV=development`): the mailbox and template previews under `/dev`. */
export const devMailModule = defineModule({
  name: 'dev-mail',
  description: 'Development only: mailbox, mail previews.',
  tags: [{ name: 'development', description: 'Development only: mailbox, mail previews.' }],
  prefix: '',
  enabled: (config) => config.env === 'development',
  routes: (app, { platform }) => registerDevMailRoutes(app, { mailer: platform.mail }),
});

const PermissionSchema = Type.Object({
  name: Type.String({ description: '`resource:action`' }),
  description: Type.String(),
  module: Type.String({ description: 'The module that declares it.' }),
  defaultRoles: Type.Array(Type.String(), {
    description: 'Built-in roles that get it by default.',
  }),
});

/** The permission that reads the catalogue (the same as reading roles). */
const ROLES_READ = 'roles:read';

/** `GET /api/v1/admin/permissions`: every permission the enabled modules declare. */
export function permissionsModule(modules: readonly AnyModule[]): AnyModule {
  const items = modules
    .flatMap((m) =>
      (m.permissions ?? []).map((p) => ({
        name: p.name,
        description: p.description,
        module: m.name,
        defaultRoles: [...(p.roles ?? [])],
      })),
    )
    .sort((a, b) => a.name.localeCompare(b.name));
  return defineModule({
    name: 'permissions',
    description: 'The catalogue of permissions the modules declare.',
    dependsOn: ['identity'],
    tags: [],
    async routes(app) {
      app.get(
        '/admin/permissions',
        {
          config: { permission: ROLES_READ },
          schema: {
            tags: ['admin'],
            summary: 'Permissions the enabled modules declare',
            description:
              'Each `resource:action` permission, the module that declares it and the built-in roles that get it by default. Needs `roles:read`.',
            security: [{ bearerAuth: [] }],
            response: { 200: Type.Object({ items: Type.Array(PermissionSchema) }) },
          },
        },
        () => Promise.resolve({ items }),
      );
    },
  });
}

/**
 * Grants each declared permission to its default built-in roles that lack it (one statement
 * per permission and role, a no-op once applied). Runs when the app is ready.
 */
export async function applyPermissions(
  platform: Platform,
  modules: readonly AnyModule[],
): Promise<void> {
  let changed = false;
  for (const m of modules) {
    for (const p of m.permissions ?? []) {
      for (const role of p.roles ?? []) {
        if (await grantBuiltinPermission(platform.database.db, role, p.name)) changed = true;
      }
    }
  }
  if (changed) await platform.access.invalidateRoles();
}

/** The platform's own modules (before the apps): identity, the jobs API, the development mailbox. */
export const platformModules: readonly AnyModule[] = [
  identityModule,
  jobsModule,
  devMailModule,
  defineModule(eventsModule),
  auditModule,
  webhooksModule,
  filesModule,
  defineModule(storageModule),
  realtimeModule,
  flagsModule,
];

/**
 * Every module of this configuration, in registration order: the platform's (those enabled
 * here), the apps, and the permission catalogue of them all. Unknown dependencies and cycles throw.
 */
export function enabledModules(config: Config, apps: readonly AnyModule[]): AnyModule[] {
  const modules = [...platformModules, ...apps].filter((m) => m.enabled?.(config) ?? true);
  bindFilePurposes(config, modules); // file purposes: unique across modules, else no start
  bindChannels(config, modules); // realtime channels: the same
  return orderModules([...modules, permissionsModule(modules)]);
}

import { ConfigError } from '../config/index.ts';
import { defineModule } from '../modules/index.ts';
import { fileFailed, fileReady, FILES_ADMIN } from './events.ts';
import { fileJobs } from './jobs.ts';
import { filesImagePurpose } from './purposes.ts';
import { registerFileRoutes } from './routes.ts';
import { filesRuntime } from './runtime.ts';
import { FilesService } from './service.ts';
import { checkFilesConfig, FilesConfig, filesSettings } from './settings.ts';

/**
 * Files: uploads (multipart streamed to storage, or presigned straight to it), type by content,
 * per-purpose limits and per-user quota, image processing in a job (stripped original, variants,
 * blurhash), signed or streamed reads, soft deletion and the purge of orphans.
 */
export const filesModule = defineModule({
  name: 'files',
  description:
    'File uploads (multipart or presigned direct to storage), image processing into variants, downloads and deletion.',
  // identity: authentication of its routes and the admin permission; events: file.ready/failed.
  dependsOn: ['identity', 'events'],
  config: FilesConfig,
  checkConfig: (values) => checkFilesConfig(values),
  permissions: [
    {
      name: FILES_ADMIN,
      description: 'Read and delete every owner’s files; receive every file event.',
      roles: ['admin'],
    },
  ],
  events: [fileReady, fileFailed],
  filePurposes: [filesImagePurpose],
  jobs: ({ config }) => fileJobs(filesSettings(config).processingConcurrency),
  routes: async (app, { platform }) => {
    const runtime = filesRuntime(platform);
    const fallback = runtime.settings.defaultPurpose;
    if (!runtime.purposes.has(fallback))
      throw new ConfigError([
        { key: 'FILES_DEFAULT_PURPOSE', message: `no enabled module declares ${fallback}` },
      ]);
    const largest = Math.max(...[...runtime.purposes.values()].map((p) => p.maxBytes), 1);
    await registerFileRoutes(app, new FilesService(platform), runtime.settings, largest);
  },
});

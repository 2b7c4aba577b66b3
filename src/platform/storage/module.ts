import type { Config } from '../config/index.ts';
import { registerStorageRoutes, type StorageApp } from './routes.ts';
import { UrlSigner } from './signed-urls.ts';
import type { Storage } from './types.ts';

/**
 * The storage area on the module shape: the local driver's signed URLs (`/api/v1/storage/...`),
 * mounted only with `STORAGE_DRIVER=local` (S3's presigned URLs point at the bucket). A plain
 * object, since this area comes before the modules area: the runtime lists it through
 * `defineModule`.
 */
export const storageModule = {
  name: 'storage',
  description: 'Signed download and upload URLs of the local object storage.',
  tags: [
    {
      name: 'storage',
      description:
        'Signed URLs of the local storage driver (made by the server, valid for minutes).',
    },
  ],
  enabled: (config: Config): boolean => config.storage.driver === 'local',
  routes: (
    app: StorageApp,
    { platform }: { platform: { readonly storage: Storage; readonly config: Config } },
  ): Promise<void> =>
    registerStorageRoutes(app, {
      storage: platform.storage,
      signer: new UrlSigner(platform.config.secrets.appSecret),
      // Node's REQUEST_TIMEOUT_MS bounds the arrival of the body anyway.
      uploadTimeoutMs: Math.max(
        platform.config.http.handlerTimeoutMs,
        platform.config.http.requestTimeoutMs,
      ),
    }),
};

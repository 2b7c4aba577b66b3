import type { Registry } from 'prom-client';
import type { Config } from '../config/index.ts';
import { LocalStorage } from './local.ts';
import { meteredStorage } from './metrics.ts';
import { S3Storage } from './s3.ts';
import { UrlSigner } from './signed-urls.ts';
import type { Storage } from './types.ts';

/**
 * The storage of this configuration (`STORAGE_DRIVER`): opens nothing (the local folder is made
 * at the first write, the S3 client connects at its first request), counted in `metrics`.
 */
export function createStorage(config: Config, options: { metrics?: Registry } = {}): Storage {
  const settings = config.storage;
  const storage =
    settings.driver === 's3'
      ? new S3Storage(settings.s3)
      : new LocalStorage({
          root: settings.localDir,
          publicUrl: config.mail.publicUrl,
          signer: new UrlSigner(config.secrets.appSecret),
        });
  return options.metrics ? meteredStorage(storage, options.metrics) : storage;
}

import type { Platform } from '../modules/index.ts';
import { fileMetrics, type FileMetrics } from './metrics.ts';
import { filePurposesOf, filesImagePurpose, type PurposeRegistry } from './purposes.ts';
import { filesSettings, type FilesSettings } from './settings.ts';

/** What the files area keeps per platform: settings, purposes, metrics. */
export interface FilesRuntime {
  readonly settings: FilesSettings;
  readonly purposes: PurposeRegistry;
  readonly metrics: FileMetrics;
}

const runtimes = new WeakMap<Platform, FilesRuntime>();

/** The files runtime of a platform, made at first use. */
export function filesRuntime(platform: Platform): FilesRuntime {
  const existing = runtimes.get(platform);
  if (existing) return existing;
  const runtime: FilesRuntime = {
    settings: filesSettings(platform.config.modules.files),
    purposes: filePurposesOf(platform.config, [filesImagePurpose]),
    metrics: fileMetrics(platform.metrics, platform.live ? platform.database.db : undefined),
  };
  runtimes.set(platform, runtime);
  return runtime;
}

export { filesModule } from './module.ts';
export { FileCodes } from './errors.ts';
export { fileFailed, fileReady, FILES_ADMIN } from './events.ts';
export {
  bindFilePurposes,
  defineFilePurpose,
  filePurposeRegistry,
  filesImagePurpose,
  IMAGE_TYPES,
  SCRIPTABLE_TYPES,
} from './purposes.ts';
export type { PurposeRegistry } from './purposes.ts';
export { processFileJob, purgeFilesJob } from './jobs.ts';
export { purgeFiles } from './purge.ts';
export { FilesConfig, filesSettings } from './settings.ts';
export type { FilesSettings } from './settings.ts';
export { contentDisposition, sanitizeFilename } from './detect.ts';
export { fileContentPath, lookupFiles, openFile, signedFileUrl } from './references.ts';
export type { FileInfo, FileLookup, FileVariantInfo } from './references.ts';
export type { FileStatus } from './tables.ts';

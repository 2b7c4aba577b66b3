export type {
  ByteRange,
  ObjectStream,
  PresignedPut,
  PresignPutOptions,
  PutOptions,
  SignedGetOptions,
  Storage,
  StoredObject,
} from './types.ts';
export { ObjectMismatchError, ObjectTooLargeError } from './types.ts';
export {
  assertObjectKey,
  InvalidObjectKeyError,
  isKeyPrefix,
  isObjectKey,
  KEY_MAX_LENGTH,
  KEY_MAX_SEGMENTS,
  objectKey,
  objectKeyProblem,
} from './keys.ts';
export { isMediaType } from './media-type.ts';
export { contentDisposition, safeDisposition, UrlSigner } from './signed-urls.ts';
export { StorageCodes, StorageUnavailableError } from './errors.ts';
export { LocalStorage, LOCAL_OBJECTS_PATH } from './local.ts';
export type { LocalStorageOptions } from './local.ts';
export { S3Storage } from './s3.ts';
export type { S3StorageOptions } from './s3.ts';
export { createStorage } from './create.ts';
export { meteredStorage } from './metrics.ts';
export { storageModule } from './module.ts';
export { matchesEtag, parseRange } from './routes.ts';

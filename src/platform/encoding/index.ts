export { decodeBase64url, isCanonicalBase64url } from './base64url.ts';
export { SealedBox } from './sealed-box.ts';

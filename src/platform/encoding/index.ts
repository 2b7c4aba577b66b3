export { decodeBase64url, isCanonicalBase64url } from './base64url.ts';

/** A media type (`image/jpeg`, `text/plain; charset=utf-8`): the only shape stored or echoed. */
const MEDIA_TYPE =
  // eslint-disable-next-line security/detect-unsafe-regex -- every repetition is bounded and parameters start with ';': linear
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;\s*[A-Za-z0-9!#$&^_.+-]{1,64}=("[\u0020-\u0021\u0023-\u005b\u005d-\u007e]{0,128}"|[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}))*$/;

/** Whether `value` is a media type safe to store and send back as `Content-Type`. */
export function isMediaType(value: string): boolean {
  return value.length <= 255 && MEDIA_TYPE.test(value);
}

/** Throws unless `value` is a media type (the platform chooses it; a bad one is a bug). */
export function assertMediaType(value: string): void {
  if (!isMediaType(value))
    throw new Error(`invalid content type: ${JSON.stringify(value.slice(0, 100))}`);
}

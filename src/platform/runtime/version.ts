import { readFileSync } from 'node:fs';

let cachedVersion: string | undefined;
/** The package version, read once. */
export function packageVersion(): string {
  cachedVersion ??= (
    JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;
  return cachedVersion;
}

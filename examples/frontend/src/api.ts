// The API client of the frontend: the generated client, typed with the routes it uses.
// (In an app of its own: `import { createGroundworkClient } from '@groundwork/client'`.)
import {
  createGroundworkClient,
  type GroundworkClient,
  type paths,
} from '../../../clients/ts/src/index.ts';
/** The API's routes, as generated from its OpenAPI document (`npm run sdk`). */
export type ApiPaths = paths;
export type Api = GroundworkClient<ApiPaths>;

/** A client of the API at `baseUrl` (the frontend reads it from `VITE_API_BASE_URL`). */
export function createApi(
  baseUrl: string,
  options: { fetch?: (r: Request) => Promise<Response> } = {},
): Api {
  return createGroundworkClient<ApiPaths>({
    baseUrl,
    // A public page needs no cookies: the answers stay cacheable by the browser and CDNs.
    credentials: 'omit',
    // A browser tab waits a little for a rate limit, not a minute.
    retry: { retries: 2, maxDelayMs: 5_000 },
    ...options,
  });
}

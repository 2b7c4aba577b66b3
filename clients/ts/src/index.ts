// @groundwork/client: the generated types of the API (schema.ts, `npm run sdk`) behind a thin
// wrapper over openapi-fetch: methods that return the data or throw a typed `ApiError`, retries
// of 429/503 honouring `Retry-After`, and async iterators over keyset pages.
import createFetchClient, {
  type Client,
  type FetchResponse,
  type MaybeOptionalInit,
} from 'openapi-fetch';
import type { HttpMethod, MediaType, PathsWithMethod } from 'openapi-typescript-helpers';
import { ApiError } from './errors.ts';
import { retryingFetch, type RetryOptions } from './retry.ts';
import type { paths } from './schema.ts';

export { ApiError, NetworkError, isApiError, retryAfterMs } from './errors.ts';
export type { Problem, ProblemCode } from './errors.ts';
export { retryable, retryingFetch } from './retry.ts';
export type { RetryOptions } from './retry.ts';
export type { components, operations, paths } from './schema.ts';

export interface GroundworkClientOptions {
  /** The API's origin, e.g. `https://api.example.com` (from the frontend's environment). */
  baseUrl: string;
  /** The access token to send as `Authorization: Bearer`, read before each request. */
  accessToken?: () => string | undefined | Promise<string | undefined>;
  /** A partner API key, sent as `X-API-Key` (public-data: higher limits than anonymous). */
  apiKey?: string;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** Retries of 429 and 503 (`retries: 0` turns them off). */
  retry?: RetryOptions;
  /** The fetch to use (default: the global one). */
  fetch?: (request: Request) => Promise<Response>;
  /** Cookies across origins (`include`) for the browser refresh-token flow; default `same-origin`. */
  credentials?: 'include' | 'same-origin' | 'omit';
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- openapi-fetch's own bound
type Paths = {};

/** The operation object of `Path` with `Method`. */
type OperationOf<P, Path, Method extends HttpMethod> = Path extends keyof P
  ? P[Path] extends Record<Method, infer O>
    ? O
    : never
  : never;

/** openapi-fetch's trailing init parameter: optional when nothing in it is required. */
type InitParam<Init> = [keyof Init] extends [never]
  ? [Init?]
  : RequiredKeys<Init> extends never
    ? [(Init & { [key: string]: unknown })?]
    : [Init & { [key: string]: unknown }];
type RequiredKeys<T> = {
  [K in keyof T]-?: Record<never, never> extends Pick<T, K> ? never : K;
}[keyof T];

/** The data of a successful answer of `Path` with `Method`. */
export type ResponseData<
  P extends Paths,
  Method extends HttpMethod,
  Path extends keyof P,
  Init = object,
> = NonNullable<
  FetchResponse<
    OperationOf<P, Path, Method> & Record<string | number, unknown>,
    Init,
    MediaType
  >['data']
>;

/** A method that resolves with the data and throws `ApiError` (or `NetworkError`) otherwise. */
export type DataMethod<P extends Paths, Method extends HttpMethod> = <
  Path extends PathsWithMethod<P, Method>,
  Init extends MaybeOptionalInit<P[Path] & Record<HttpMethod, unknown>, Method>,
>(
  url: Path,
  ...init: InitParam<Init>
) => Promise<ResponseData<P, Method, Path, Init>>;

/** A list answer of the API: `items` and a keyset `page`. */
interface KeysetPage<Item> {
  items: Item[];
  page: { nextCursor: string | null; hasMore?: boolean };
}

/** The GET paths whose answer is a keyset page (`items` + `page.nextCursor`). */
export type PagedPath<P extends Paths> = {
  [Path in PathsWithMethod<P, 'get'>]: ResponseData<P, 'get', Path> extends KeysetPage<unknown>
    ? Path
    : never;
}[PathsWithMethod<P, 'get'>];

type ItemOf<Data> = Data extends KeysetPage<infer Item> ? Item : never;

export interface GroundworkClient<P extends Paths = paths> {
  /** openapi-fetch itself: `{ data, error, response }`, nothing thrown for error answers. */
  raw: Client<P>;
  GET: DataMethod<P, 'get'>;
  POST: DataMethod<P, 'post'>;
  PUT: DataMethod<P, 'put'>;
  PATCH: DataMethod<P, 'patch'>;
  DELETE: DataMethod<P, 'delete'>;
  /**
   * The pages of a keyset list, following `page.nextCursor` from the query given (its `cursor`
   * included, to resume) until the last. Stops with an error if the server repeats a cursor.
   */
  pages<
    Path extends PagedPath<P>,
    Init extends MaybeOptionalInit<P[Path] & Record<HttpMethod, unknown>, 'get'>,
  >(
    url: Path,
    ...init: InitParam<Init>
  ): AsyncGenerator<ResponseData<P, 'get', Path, Init>, void, undefined>;
  /** Every item of a keyset list, page after page (`break` stops fetching). */
  paginate<
    Path extends PagedPath<P>,
    Init extends MaybeOptionalInit<P[Path] & Record<HttpMethod, unknown>, 'get'>,
  >(
    url: Path,
    ...init: InitParam<Init>
  ): AsyncGenerator<ItemOf<ResponseData<P, 'get', Path, Init>>, void, undefined>;
}

/** The data of an openapi-fetch result, or its error as an `ApiError`. */
function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok) return result.data as T;
  throw new ApiError(result.response, result.error);
}

/**
 * The client. `P` defaults to the API's generated `paths`; a frontend may pass a wider type while
 * a route it uses is not yet in the generated file.
 */
export function createGroundworkClient<P extends Paths = paths>(
  options: GroundworkClientOptions,
): GroundworkClient<P> {
  const base = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const raw = createFetchClient<P>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    fetch: retryingFetch(base, options.retry),
    headers: options.headers,
    credentials: options.credentials,
  });
  raw.use({
    async onRequest({ request }) {
      const token = await options.accessToken?.();
      if (token) request.headers.set('authorization', `Bearer ${token}`);
      if (options.apiKey) request.headers.set('x-api-key', options.apiKey);
      return request;
    },
  });
  // The methods forward their arguments untouched: openapi-fetch's own types check them.
  type Call = (url: string, init?: Record<string, unknown>) => Promise<never>;
  const call =
    (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'): Call =>
    async (url, init) =>
      unwrap(
        await (raw[method] as unknown as (u: string, i?: unknown) => Promise<never>)(url, init),
      );
  const GET = call('GET');

  async function* pages(url: string, init?: Record<string, unknown>) {
    const params = (init?.params ?? {}) as { query?: Record<string, unknown> };
    let cursor = params.query?.cursor as string | undefined;
    const seen = new Set<string>();
    for (;;) {
      const query = { ...params.query, ...(cursor === undefined ? {} : { cursor }) };
      const page = (await GET(url, {
        ...init,
        params: { ...params, query },
      })) as KeysetPage<unknown>;
      yield page;
      const next = page.page.nextCursor;
      if (next === null || next === undefined || page.page.hasMore === false) return;
      if (seen.has(next)) throw new Error(`${url}: the server repeated the cursor ${next}`);
      seen.add(next);
      cursor = next;
    }
  }
  async function* paginate(url: string, init?: Record<string, unknown>) {
    for await (const page of pages(url, init)) yield* page.items;
  }

  return {
    raw,
    GET,
    POST: call('POST'),
    PUT: call('PUT'),
    PATCH: call('PATCH'),
    DELETE: call('DELETE'),
    pages,
    paginate,
  } as unknown as GroundworkClient<P>;
}

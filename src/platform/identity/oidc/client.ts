import * as client from 'openid-client';
import type { OidcProviderConfig } from './providers-config.ts';

/** What a provider asserts about the person who signed in there. */
export interface ProviderProfile {
  /** The provider's stable id of the user (`sub`, GitHub's numeric id). */
  subject: string;
  /** As the provider gave it (not normalised); null when it gave none. */
  email: string | null;
  /** True only when the provider says it verified that address. */
  emailVerified: boolean;
  /** A preferred user name to derive ours from (`preferred_username`, GitHub's `login`). */
  usernameHint: string | null;
}

/** The provider flow failed; `reason` is for the log only, never for the client. */
export class ProviderLoginError extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'ProviderLoginError';
  }
}

/** The provider cannot be reached to start a flow (discovery failed). */
export class ProviderUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('sign-in provider unavailable', options);
    this.name = 'ProviderUnavailableError';
  }
}

/** What one authorization request carries, kept server side until its callback. */
export interface FlowSecrets {
  state: string;
  nonce: string;
  codeVerifier: string;
}

const GITHUB_API_HEADERS = {
  accept: 'application/vnd.github+json',
  'x-github-api-version': '2022-11-28',
  'user-agent': 'groundwork',
};

/**
 * The configured providers behind openid-client: discovery (cached; retried after a failure),
 * the authorization URL (code flow, PKCE S256, state, nonce), and the callback's code exchange
 * with the ID token checks (issuer, audience, signature, nonce) done by the library. GitHub is
 * plain OAuth 2 (no ID token): its REST API gives the user and the verified primary address.
 */
export class OidcProviders {
  readonly #providers: ReadonlyMap<string, OidcProviderConfig>;
  readonly #configs = new Map<string, Promise<client.Configuration>>();
  readonly #callbackBase: string;
  readonly #timeoutS: number;

  constructor(
    providers: readonly OidcProviderConfig[],
    options: { callbackBase: string; timeoutMs: number },
  ) {
    this.#providers = new Map(providers.map((p) => [p.id, p]));
    this.#callbackBase = options.callbackBase.replace(/\/+$/, '');
    this.#timeoutS = Math.max(1, Math.ceil(options.timeoutMs / 1_000));
  }

  /** The provider with this id, if configured. */
  get(id: string): OidcProviderConfig | undefined {
    return this.#providers.get(id);
  }

  /** The redirect URI registered at the provider. */
  redirectUri(id: string): string {
    return `${this.#callbackBase}/${encodeURIComponent(id)}/callback`;
  }

  #config(p: OidcProviderConfig): Promise<client.Configuration> {
    let pending = this.#configs.get(p.id);
    if (!pending) {
      pending = this.#build(p);
      this.#configs.set(p.id, pending);
      // A failed discovery is not cached: the next request tries again.
      pending.catch(() => this.#configs.delete(p.id));
    }
    return pending;
  }

  async #build(p: OidcProviderConfig): Promise<client.Configuration> {
    const insecure = (url: string) => url.startsWith('http://');
    let config: client.Configuration;
    if (p.kind === 'oidc') {
      const execute = insecure(p.issuer) ? [client.allowInsecureRequests] : [];
      try {
        config = await client.discovery(
          new URL(p.issuer),
          p.clientId,
          undefined,
          client.ClientSecretBasic(p.clientSecret),
          { execute, timeout: this.#timeoutS },
        );
      } catch (error) {
        throw new ProviderUnavailableError({ cause: error });
      }
      // Basic is the OpenID default; some issuers (Apple) accept only the secret in the body.
      const methods = config.serverMetadata().token_endpoint_auth_methods_supported;
      if (
        methods &&
        !methods.includes('client_secret_basic') &&
        methods.includes('client_secret_post')
      ) {
        config = new client.Configuration(
          config.serverMetadata(),
          p.clientId,
          undefined,
          client.ClientSecretPost(p.clientSecret),
        );
        if (insecure(p.issuer)) client.allowInsecureRequests(config);
      }
    } else {
      config = new client.Configuration(
        {
          issuer: new URL(p.authorizeUrl).origin,
          authorization_endpoint: p.authorizeUrl,
          token_endpoint: p.tokenUrl,
        },
        p.clientId,
        undefined,
        // GitHub reads the client credentials from the form body.
        client.ClientSecretPost(p.clientSecret),
      );
      if ([p.authorizeUrl, p.tokenUrl, p.apiUrl].some(insecure))
        client.allowInsecureRequests(config);
    }
    config.timeout = this.#timeoutS;
    return config;
  }

  /** The provider URL to send the browser to. */
  async authorizationUrl(p: OidcProviderConfig, secrets: FlowSecrets): Promise<URL> {
    const config = await this.#config(p);
    const params: Record<string, string> = {
      response_type: 'code',
      redirect_uri: this.redirectUri(p.id),
      scope: p.scopes.join(' '),
      state: secrets.state,
      code_challenge: await client.calculatePKCECodeChallenge(secrets.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (p.kind === 'oidc') {
      params.nonce = secrets.nonce;
      if (p.responseMode === 'form_post') params.response_mode = 'form_post';
    }
    return client.buildAuthorizationUrl(config, params);
  }

  /**
   * Completes a callback: the provider's error parameters, the state (again, by the library),
   * the code exchange with the PKCE verifier and, for OpenID Connect, the ID token and its nonce.
   * Any failure is a `ProviderLoginError`.
   */
  async complete(
    p: OidcProviderConfig,
    query: Readonly<Record<string, string | undefined>>,
    secrets: FlowSecrets,
  ): Promise<ProviderProfile> {
    let config: client.Configuration;
    try {
      config = await this.#config(p);
    } catch (error) {
      throw new ProviderLoginError('provider unavailable', { cause: error });
    }
    const current = new URL(this.redirectUri(p.id));
    for (const [k, v] of Object.entries(query)) if (v !== undefined) current.searchParams.set(k, v);
    try {
      if (p.kind === 'oidc') {
        const tokens = await client.authorizationCodeGrant(config, current, {
          pkceCodeVerifier: secrets.codeVerifier,
          expectedState: secrets.state,
          expectedNonce: secrets.nonce,
          idTokenExpected: true,
        });
        const idClaims = tokens.claims();
        if (!idClaims) throw new ProviderLoginError('no ID token');
        let claims: Record<string, unknown> = idClaims;
        // Some issuers put scope claims (email) in the UserInfo answer only, not the ID token.
        if (idClaims.email === undefined && config.serverMetadata().userinfo_endpoint)
          claims = {
            ...(await client.fetchUserInfo(config, tokens.access_token, idClaims.sub)),
            ...idClaims,
          };
        const verified = claims.email_verified;
        return {
          subject: idClaims.sub,
          email: typeof claims.email === 'string' ? claims.email : null,
          // Some issuers (Apple) send the flag as a string.
          emailVerified: verified === true || verified === 'true',
          usernameHint:
            typeof claims.preferred_username === 'string' ? claims.preferred_username : null,
        };
      }
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: secrets.codeVerifier,
        expectedState: secrets.state,
      });
      return await this.#githubProfile(config, p, tokens.access_token);
    } catch (error) {
      if (error instanceof ProviderLoginError) throw error;
      throw new ProviderLoginError(describe(error), { cause: error });
    }
  }

  async #githubProfile(
    config: client.Configuration,
    p: Extract<OidcProviderConfig, { kind: 'github' }>,
    accessToken: string,
  ): Promise<ProviderProfile> {
    const api = p.apiUrl.replace(/\/+$/, '');
    const get = async (path: string): Promise<unknown> => {
      const res = await client.fetchProtectedResource(
        config,
        accessToken,
        new URL(`${api}${path}`),
        'GET',
        undefined,
        new Headers(GITHUB_API_HEADERS),
      );
      if (!res.ok) throw new ProviderLoginError(`GitHub ${path} answered ${res.status}`);
      return res.json();
    };
    const user = (await get('/user')) as { id?: unknown; login?: unknown };
    if (typeof user.id !== 'number' && typeof user.id !== 'string')
      throw new ProviderLoginError('GitHub /user has no id');
    // `/user` shows only the public address: the verified primary one is in `/user/emails`.
    const emails = await get('/user/emails');
    const list = Array.isArray(emails) ? (emails as Record<string, unknown>[]) : [];
    const primary = list.find((e) => e.primary === true && typeof e.email === 'string');
    return {
      subject: String(user.id),
      email: primary ? (primary.email as string) : null,
      emailVerified: primary?.verified === true,
      usernameHint: typeof user.login === 'string' ? user.login : null,
    };
  }
}

/** A log line for a library error: its class and code, not the provider's text verbatim. */
function describe(error: unknown): string {
  if (error instanceof client.AuthorizationResponseError)
    return `provider answered error=${error.error}`;
  if (error instanceof client.ResponseBodyError) return `token endpoint error=${error.error}`;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`;
  }
  return 'unknown error';
}

import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** What the test user "types in" at a provider: who signs in, or a refusal. */
export interface ProviderAccount {
  sub: string;
  email?: string;
  email_verified?: boolean;
  preferred_username?: string;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/**
 * A real OpenID Provider (`oidc-provider`) on a loopback port with one confidential client. Its
 * login and consent interactions are completed by this server itself (no HTML forms): whoever
 * `signInAs` names signs in and consents, or, after `refuseNext`, the user refuses
 * (`access_denied`). The interaction cookies are real, so a driver must carry them.
 */
export class TestOpenIdProvider {
  readonly clientId = 'groundwork-test';
  readonly clientSecret = randomBytes(24).toString('base64url');
  #server: Server | null = null;
  #provider: Provider | null = null;
  #callback: ((req: IncomingMessage, res: ServerResponse) => unknown) | null = null;
  #accounts = new Map<string, ProviderAccount>();
  #next: ProviderAccount | null = null;
  #refuse = false;
  issuer = '';

  /** Starts it; `redirectUri` is the one registered for the client. */
  async start(redirectUris: string[]): Promise<void> {
    const server = createServer((req, res) => this.#handle(req, res));
    const port = await listen(server);
    this.#server = server;
    this.issuer = `http://127.0.0.1:${port}`;
    const accounts = this.#accounts;
    this.#provider = new Provider(this.issuer, {
      clients: [
        {
          client_id: this.clientId,
          client_secret: this.clientSecret,
          redirect_uris: redirectUris,
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      cookies: { keys: [randomBytes(16).toString('hex')] },
      claims: {
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['preferred_username'],
      },
      features: { devInteractions: { enabled: false } },
      pkce: { required: () => true },
      findAccount: (_ctx, sub) => {
        const account = accounts.get(sub);
        if (!account) return undefined;
        return { accountId: sub, claims: () => ({ ...account }) };
      },
    });
    this.#callback = this.#provider.callback();
  }

  /** The next interaction signs in as this account (and consents). */
  signInAs(account: ProviderAccount): void {
    this.#accounts.set(account.sub, account);
    this.#next = account;
    this.#refuse = false;
  }

  /** The next interaction ends with the user refusing (`error=access_denied`). */
  refuseNext(): void {
    this.#refuse = true;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const provider = this.#provider;
    const callback = this.#callback;
    if (!provider || !callback) {
      res.statusCode = 503;
      res.end();
      return;
    }
    if (req.url?.startsWith('/interaction/')) {
      this.#interact(provider, req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    void callback(req, res);
  }

  async #interact(provider: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (this.#refuse) {
      this.#refuse = false;
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User aborted interaction' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const account = this.#next;
    if (!account) throw new Error('no account to sign in as: call signInAs first');
    if (details.prompt.name === 'login') {
      await provider.interactionFinished(req, res, { login: { accountId: account.sub } });
      return;
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: account.sub, clientId: String(details.params.client_id) });
    if (!grant) throw new Error('grant not found');
    grant.addOIDCScope(String(details.params.scope));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } });
  }

  async stop(): Promise<void> {
    if (this.#server) await close(this.#server);
    this.#server = null;
  }
}

/**
 * Follows a provider's redirects like a browser (cookies included) from `url` until one leaves
 * for `stopAt` (our callback); returns that URL. Throws on a non-redirect answer.
 */
export async function followToCallback(url: string, stopAt: string): Promise<URL> {
  return follow<never>(url, stopAt);
}

/**
 * Like `followToCallback` for a `form_post` response: follows the redirects to the provider's
 * auto-submitting page and returns what the browser would post, and where.
 */
export async function followToFormPost(
  url: string,
): Promise<{ action: URL; fields: Record<string, string> }> {
  const decode = (v: string) =>
    v
      .replaceAll('&quot;', '"')
      .replaceAll('&#39;', "'")
      .replaceAll('&lt;', '<')
      .replaceAll('&gt;', '>')
      .replaceAll('&amp;', '&');
  const out = await follow(url, '\u0000', (html) => {
    const action = /<form[^>]*action="([^"]+)"/i.exec(html)?.[1];
    if (!action) return undefined;
    const fields: Record<string, string> = {};
    for (const m of html.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/gi))
      fields[decode(m[1] ?? '')] = decode(m[2] ?? '');
    return { action: new URL(decode(action)), fields };
  });
  if (out instanceof URL) throw new Error('expected a form_post page, got a redirect');
  return out;
}

async function follow<T>(
  url: string,
  stopAt: string,
  onPage?: (html: string) => T | undefined,
): Promise<URL | T> {
  const jar = new Map<string, string>();
  let current = new URL(url);
  for (let hop = 0; hop < 20; hop += 1) {
    if (current.href.startsWith(stopAt)) return current;
    const res = await fetch(current, {
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location');
    if (res.status === 200 && onPage) {
      const page = onPage(await res.text());
      if (page) return page;
      throw new Error(`unexpected page at ${current.href}`);
    }
    if (res.status < 300 || res.status >= 400 || !location)
      throw new Error(`provider answered ${res.status} at ${current.href}: ${await res.text()}`);
    await res.body?.cancel();
    current = new URL(location, current);
  }
  throw new Error('too many redirects');
}

export interface GitHubUser {
  id: number;
  login: string;
  /** The public address on the profile (null when the user keeps it private). */
  email: string | null;
  emails: { email: string; primary: boolean; verified: boolean }[];
}

const GITHUB_DOCS = 'https://docs.github.com/rest';

/**
 * A local stand-in for GitHub's OAuth app endpoints and REST user API, answering as GitHub does:
 * `/login/oauth/authorize` approves at once (or refuses with `access_denied`);
 * `/login/oauth/access_token` checks the client secret, redirect URI, single-use code and PKCE
 * verifier and answers JSON, with HTTP 200 and an `error` member on failure like GitHub;
 * `/user` and `/user/emails` need the bearer token.
 */
export class FakeGitHub {
  readonly clientId = 'Iv1.fakegithubclient';
  readonly clientSecret = randomBytes(20).toString('hex');
  base = '';
  #server: Server | null = null;
  #next: GitHubUser | null = null;
  #refuse = false;
  #codes = new Map<
    string,
    { user: GitHubUser; redirectUri: string; challenge: string | null; used: boolean }
  >();
  #tokens = new Map<string, GitHubUser>();
  /** Token requests received (for assertions). */
  readonly tokenRequests: URLSearchParams[] = [];

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
    const port = await listen(server);
    this.#server = server;
    this.base = `http://127.0.0.1:${port}`;
  }

  signInAs(user: GitHubUser): void {
    this.#next = user;
    this.#refuse = false;
  }

  refuseNext(): void {
    this.#refuse = true;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.base);
    const json = (status: number, body: unknown) => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const redirect = new URL(url.searchParams.get('redirect_uri') ?? '');
      const state = url.searchParams.get('state');
      if (url.searchParams.get('client_id') !== this.clientId) return json(404, {});
      if (this.#refuse || !this.#next) {
        this.#refuse = false;
        redirect.searchParams.set('error', 'access_denied');
        redirect.searchParams.set(
          'error_description',
          'The user has denied your application access.',
        );
        redirect.searchParams.set(
          'error_uri',
          'https://docs.github.com/apps/troubleshooting-authorization-request-errors#access-denied',
        );
      } else {
        const code = randomBytes(10).toString('hex');
        const method = url.searchParams.get('code_challenge_method');
        this.#codes.set(code, {
          user: this.#next,
          redirectUri: redirect.href,
          challenge: method === 'S256' ? url.searchParams.get('code_challenge') : null,
          used: false,
        });
        redirect.searchParams.set('code', code);
      }
      if (state !== null) redirect.searchParams.set('state', state);
      res.statusCode = 302;
      res.setHeader('location', redirect.href);
      res.end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      this.tokenRequests.push(form);
      const fail = (error: string, description: string) =>
        json(200, { error, error_description: description, error_uri: GITHUB_DOCS });
      if (
        form.get('client_id') !== this.clientId ||
        form.get('client_secret') !== this.clientSecret
      )
        return fail(
          'incorrect_client_credentials',
          'The client_id and/or client_secret passed are incorrect.',
        );
      const grant = this.#codes.get(form.get('code') ?? '');
      if (!grant || grant.used)
        return fail('bad_verification_code', 'The code passed is incorrect or expired.');
      grant.used = true;
      if (form.get('redirect_uri') !== null && form.get('redirect_uri') !== grant.redirectUri)
        return fail(
          'redirect_uri_mismatch',
          'The redirect_uri MUST match the registered callback URL for this application.',
        );
      if (grant.challenge !== null) {
        const verifier = form.get('code_verifier') ?? '';
        const computed = createHash('sha256').update(verifier).digest('base64url');
        if (computed !== grant.challenge)
          return fail('bad_verification_code', 'The code passed is incorrect or expired.');
      }
      const token = `gho_${randomBytes(18).toString('base64url')}`;
      this.#tokens.set(token, grant.user);
      return json(200, {
        access_token: token,
        token_type: 'bearer',
        scope: 'read:user,user:email',
      });
    }
    if (req.method === 'GET' && (url.pathname === '/user' || url.pathname === '/user/emails')) {
      const auth = req.headers.authorization ?? '';
      const user = this.#tokens.get(auth.replace(/^(Bearer|token) /i, ''));
      if (!user)
        return json(401, {
          message: 'Bad credentials',
          documentation_url: GITHUB_DOCS,
          status: '401',
        });
      if (url.pathname === '/user')
        return json(200, {
          login: user.login,
          id: user.id,
          node_id: `U_${user.id}`,
          type: 'User',
          name: null,
          email: user.email,
        });
      return json(
        200,
        user.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null })),
      );
    }
    json(404, { message: 'Not Found', documentation_url: GITHUB_DOCS, status: '404' });
  }

  async stop(): Promise<void> {
    if (this.#server) await close(this.#server);
    this.#server = null;
  }
}

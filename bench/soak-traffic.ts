/**
 * The soak benchmark's traffic: virtual users, the operation mix, and an open-loop scheduler that
 * starts operations at a constant rate whatever the answers take (latency counts from the moment
 * an operation was due, so a slow server cannot slow the load down and hide its own delay).
 *
 * Every virtual user has its own client address (`X-Forwarded-For`, the server trusts loopback as
 * its proxy), so the production rate limits apply per user as they would to real clients; each
 * operation that a limit caps per account (sign-in, the reset mail, a user name change) picks its
 * users in a rotation of its own, which spaces one user's turns by (users / that kind's rate).
 * A virtual user runs one operation at a time (a refresh rotates the tokens the others use).
 */
import { performance } from 'node:perf_hooks';
import { Pool, errors as undiciErrors } from 'undici';
import { SOAK_JOBS_PATH } from './soak-server.ts';
import type { ErrorCounts } from './soak-stats.ts';

export const SOAK_PASSWORD = 'violet-Harbor-83-quantum-Mosaic';
const AGENT = 'groundwork-soak/1';
const API = '/api/v1';
const REQUEST_TIMEOUT_MS = 10_000;
/** Every `OPERATOR_EVERY`-th virtual user holds the operator role (the admin API's callers). */
export const OPERATOR_EVERY = 5;
/** Virtual users per request/s of the rate: keeps every per-user limit at under half its cap. */
export const USERS_PER_RPS = 3;

/** Operations and their share of the arrivals (they sum to 1). */
export const MIX = {
  // Sign-ins: expensive (argon2id), so a small share; each ends the user's session first.
  login: 0.005,
  refresh: 0.12,
  // Listings, as a user.
  me: 0.15,
  sessions: 0.12,
  'login-history': 0.075,
  // Listings, as an operator (the admin API).
  'admin-users': 0.06,
  'admin-audit': 0.04,
  'admin-roles': 0.02,
  // Writes: role assignments and roles (audited), a user name change.
  'grant-role': 0.03,
  'role-create': 0.007,
  'role-delete': 0.007,
  rename: 0.0015,
  // Job enqueues and their status; mail (a job each) from registration and the reset link.
  enqueue: 0.2,
  'job-status': 0.1625,
  register: 0.001,
  forgot: 0.001,
} as const;
export type OpKind = keyof typeof MIX;
/** Kinds only operators do (the admin API); the others rotate over every virtual user. */
const OPERATOR_KINDS: ReadonlySet<OpKind> = new Set([
  'admin-users',
  'admin-audit',
  'admin-roles',
  'grant-role',
  'role-create',
  'role-delete',
]);

export interface VirtualUser {
  index: number;
  id: string;
  email: string;
  username: string;
  ip: string;
  operator: boolean;
  accessToken: string;
  refreshToken: string;
  busy: boolean;
  renames: number;
  moderator: boolean;
  jobs: string[];
}

/** One request's outcome, for the recorder. */
export interface Outcome {
  route: string;
  status: number;
  latencyMs: number;
  error: keyof ErrorCounts | null;
}

interface Pair {
  accessToken: string;
  refreshToken: string;
}

/** `10.a.b.c` for user `i`: one client address per virtual user. */
export function userIp(i: number): string {
  return `10.${String((i >> 16) & 255)}.${String((i >> 8) & 255)}.${String(i & 255)}`;
}

/** A seeded generator (mulberry32): the same mix order on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled deck of 2,000 kinds in the mix's proportions, dealt in a cycle. */
function deck(): OpKind[] {
  const cards: OpKind[] = [];
  for (const [kind, share] of Object.entries(MIX) as [OpKind, number][])
    for (let i = 0; i < Math.round(share * 2_000); i++) cards.push(kind);
  const next = random(12);
  for (let i = cards.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [cards[i], cards[j]] = [cards[j] as OpKind, cards[i] as OpKind];
  }
  return cards;
}

class Rotation {
  #next = 0;
  readonly #pool: readonly VirtualUser[];
  constructor(pool: readonly VirtualUser[]) {
    this.#pool = pool;
  }
  /** The next idle user in turn (a busy one misses this turn), or undefined when all are busy. */
  take(): VirtualUser | undefined {
    for (let tries = 0; tries < this.#pool.length; tries++) {
      const user = this.#pool[this.#next % this.#pool.length];
      this.#next++;
      if (user && !user.busy) return user;
    }
    return undefined;
  }
}

export interface TrafficOptions {
  base: string;
  users: VirtualUser[];
  record: (outcome: Outcome) => void;
  /** Called when an operation could not start (no idle user). */
  notSent: (kind: OpKind) => void;
}

/** The load: runs operations through one connection pool, each recorded as it completes. */
export class Traffic {
  readonly #pool: Pool;
  readonly #options: TrafficOptions;
  readonly #rotations = new Map<OpKind, Rotation>();
  readonly #deck = deck();
  #dealt = 0;
  #serial = 0;
  readonly #roles: { id: string; operator: VirtualUser }[] = [];
  readonly #inFlight = new Set<Promise<void>>();

  constructor(options: TrafficOptions) {
    this.#options = options;
    this.#pool = new Pool(options.base, {
      connections: 32,
      pipelining: 1,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    const operators = options.users.filter((u) => u.operator);
    for (const kind of Object.keys(MIX) as OpKind[])
      this.#rotations.set(kind, new Rotation(OPERATOR_KINDS.has(kind) ? operators : options.users));
  }

  /** Signs every virtual user in (a few at a time: argon2id is the cost). */
  async signInAll(concurrency = 8): Promise<void> {
    let next = 0;
    const users = this.#options.users;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < users.length) {
          const user = users[next++] as VirtualUser;
          const res = await this.#call(user, 'POST', '/auth/login', {
            body: { login: user.email, password: SOAK_PASSWORD },
          });
          if (res.status !== 200) throw new Error(`sign-in of ${user.email}: ${res.text}`);
          this.#keep(user, JSON.parse(res.text) as Pair);
        }
      }),
    );
  }

  /**
   * Starts operations at `rate` per second for `seconds`, each due at `start + i / rate`; resolves
   * when the last one is due (answers may still be coming: see `drain`). `due` gets each due time.
   */
  async run(rate: number, seconds: number, start = performance.now()): Promise<void> {
    const total = Math.floor(rate * seconds);
    let i = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        while (i < total && start + (i * 1000) / rate <= now) {
          this.#launch(start + (i * 1000) / rate);
          i++;
        }
        if (i >= total) resolve();
        else setTimeout(tick, Math.max(0, Math.min(5, start + (i * 1000) / rate - now)));
      };
      tick();
    });
  }

  /** Waits for the operations still in flight. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  #launch(due: number): void {
    const kind = this.#deck[this.#dealt++ % this.#deck.length] as OpKind;
    const user = this.#rotations.get(kind)?.take();
    if (user === undefined) {
      this.#options.notSent(kind);
      return;
    }
    user.busy = true;
    const op = this.#operate(kind, user, due)
      .catch((error: unknown) => {
        // Outcomes are recorded per request; this is a bug in the generator itself.
        process.stderr.write(`soak: ${kind}: ${String(error)}\n`);
        this.#options.record({ route: kind, status: 0, latencyMs: 0, error: 'unexpected' });
      })
      .finally(() => {
        user.busy = false;
        this.#inFlight.delete(op);
      });
    this.#inFlight.add(op);
  }

  async #operate(kind: OpKind, user: VirtualUser, due: number): Promise<void> {
    const serial = ++this.#serial;
    switch (kind) {
      case 'login': {
        await this.#expect(user, due, 'POST', '/auth/logout', 204, { auth: true });
        const res = await this.#expect(user, performance.now(), 'POST', '/auth/login', 200, {
          body: { login: user.email, password: SOAK_PASSWORD },
        });
        if (res) this.#keep(user, JSON.parse(res) as Pair);
        return;
      }
      case 'refresh': {
        const res = await this.#expect(user, due, 'POST', '/auth/refresh', 200, {
          body: { refreshToken: user.refreshToken },
        });
        if (res) this.#keep(user, JSON.parse(res) as Pair);
        return;
      }
      case 'me':
        await this.#expect(user, due, 'GET', '/users/me', 200, { auth: true });
        return;
      case 'sessions':
        await this.#expect(user, due, 'GET', '/auth/sessions', 200, { auth: true });
        return;
      case 'login-history':
        await this.#expect(user, due, 'GET', '/auth/login-history?limit=20', 200, {
          auth: true,
          route: '/auth/login-history',
        });
        return;
      case 'admin-users':
        await this.#expect(user, due, 'GET', '/admin/users?limit=20', 200, {
          auth: true,
          route: '/admin/users',
        });
        return;
      case 'admin-audit':
        await this.#expect(user, due, 'GET', '/admin/audit-events?limit=20', 200, {
          auth: true,
          route: '/admin/audit-events',
        });
        return;
      case 'admin-roles':
        await this.#expect(user, due, 'GET', '/admin/roles', 200, { auth: true });
        return;
      case 'grant-role': {
        // Toggles `moderator` on a regular user (audited; drops that user's cached grants).
        const users = this.#options.users;
        const target = users[(serial * 7919) % users.length] as VirtualUser;
        if (target.operator) return this.#operate('admin-roles', user, due);
        target.moderator = !target.moderator;
        await this.#expect(user, due, 'PATCH', `/admin/users/${target.id}`, 200, {
          auth: true,
          route: '/admin/users/:id',
          body: { roles: target.moderator ? ['user', 'moderator'] : ['user'] },
        });
        return;
      }
      case 'role-create': {
        const res = await this.#expect(user, due, 'POST', '/admin/roles', 201, {
          auth: true,
          body: {
            name: `soak-${String(serial)}`,
            description: 'Made and removed by the soak benchmark',
            permissions: ['users:read'],
          },
        });
        if (res) this.#roles.push({ id: (JSON.parse(res) as { id: string }).id, operator: user });
        return;
      }
      case 'role-delete': {
        const role = this.#roles.shift();
        if (role === undefined) return this.#operate('role-create', user, due);
        await this.#expect(user, due, 'DELETE', `/admin/roles/${role.id}`, 204, {
          auth: true,
          route: '/admin/roles/:id',
        });
        return;
      }
      case 'rename':
        user.renames++;
        await this.#expect(user, due, 'PATCH', '/users/me', 200, {
          auth: true,
          body: { username: `${user.username}_r${String(user.renames)}` },
        });
        return;
      case 'enqueue': {
        const res = await this.#expect(user, due, 'POST', SOAK_JOBS_PATH.slice(API.length), 202, {
          auth: true,
          body: { n: serial },
        });
        if (res) {
          user.jobs.push((JSON.parse(res) as { id: string }).id);
          if (user.jobs.length > 5) user.jobs.shift();
        }
        return;
      }
      case 'job-status': {
        const id = user.jobs[serial % Math.max(1, user.jobs.length)];
        if (id === undefined) return this.#operate('enqueue', user, due);
        await this.#expect(user, due, 'GET', `/jobs/${id}`, 200, {
          auth: true,
          route: '/jobs/:id',
        });
        return;
      }
      case 'register':
        // A new account each time, from a new address (the register limit is per address).
        await this.#expect(user, due, 'POST', '/auth/register', 202, {
          ip: `10.200.${String((serial >> 8) & 255)}.${String(serial & 255)}`,
          body: {
            email: `soak-new-${String(serial)}@example.test`,
            username: `soak_new_${String(serial)}`,
            password: SOAK_PASSWORD,
          },
        });
        return;
      case 'forgot':
        await this.#expect(user, due, 'POST', '/auth/password/forgot', 202, {
          body: { email: user.email },
        });
        return;
    }
  }

  #keep(user: VirtualUser, pair: Pair): void {
    user.accessToken = pair.accessToken;
    user.refreshToken = pair.refreshToken;
  }

  /** One request, recorded; its body when the status is the expected one, else undefined. */
  async #expect(
    user: VirtualUser,
    due: number,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    expected: number,
    options: { auth?: boolean; body?: unknown; route?: string; ip?: string } = {},
  ): Promise<string | undefined> {
    const route = `${method} ${options.route ?? path}`;
    let res: { status: number; text: string };
    try {
      res = await this.#call(user, method, path, options);
    } catch (error) {
      const timeout =
        error instanceof undiciErrors.HeadersTimeoutError ||
        error instanceof undiciErrors.BodyTimeoutError;
      this.#options.record({
        route,
        status: 0,
        latencyMs: performance.now() - due,
        error: timeout ? 'timeouts' : 'connection',
      });
      return undefined;
    }
    const error =
      res.status >= 500 ? 'serverErrors' : res.status !== expected ? 'unexpected' : null;
    if (error === 'unexpected' && process.env.BENCH_SOAK_DEBUG)
      process.stderr.write(`soak: ${route}: ${String(res.status)} ${res.text.slice(0, 300)}\n`);
    this.#options.record({ route, status: res.status, latencyMs: performance.now() - due, error });
    return error === null ? res.text : undefined;
  }

  async #call(
    user: VirtualUser,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    options: { auth?: boolean; body?: unknown; ip?: string },
  ): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = {
      'user-agent': AGENT,
      'x-forwarded-for': options.ip ?? user.ip,
    };
    if (options.auth) headers.authorization = `Bearer ${user.accessToken}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.#pool.request({
      method,
      path: `${API}${path}`,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    return { status: res.statusCode, text: await res.body.text() };
  }
}

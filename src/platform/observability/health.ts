/** The result of one readiness check. */
export interface CheckResult {
  status: 'up' | 'down';
  latencyMs: number;
  error?: string;
}

/** A readiness check: resolves when the dependency answers, throws (or times out) when it does not. */
export type HealthCheck = (signal: AbortSignal) => Promise<unknown>;

interface Registered {
  check: HealthCheck;
  timeoutMs: number;
}

/** Registry of readiness checks; later areas register database, redis, queue. */
export class HealthChecks {
  readonly #checks = new Map<string, Registered>();

  /** Adds a named check run by `GET /health/ready`, with its own timeout (default 2 s). */
  register(name: string, check: HealthCheck, options: { timeoutMs?: number } = {}): void {
    if (this.#checks.has(name)) throw new Error(`health check ${name} is already registered`);
    this.#checks.set(name, { check, timeoutMs: options.timeoutMs ?? 2_000 });
  }

  names(): string[] {
    return [...this.#checks.keys()];
  }

  /** Runs every check in parallel, each bounded by its timeout. */
  async run(): Promise<{ ok: boolean; checks: Record<string, CheckResult> }> {
    const entries = await Promise.all(
      [...this.#checks.entries()].map(async ([name, reg]) => [name, await runOne(reg)] as const),
    );
    return { ok: entries.every(([, r]) => r.status === 'up'), checks: Object.fromEntries(entries) };
  }
}

async function runOne({ check, timeoutMs }: Registered): Promise<CheckResult> {
  const started = performance.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    await Promise.race([check(controller.signal), timeout]);
    return { status: 'up', latencyMs: elapsed(started) };
  } catch (error) {
    // The message names the failure kind only; checks must not put secrets in their errors.
    return {
      status: 'down',
      latencyMs: elapsed(started),
      error: error instanceof Error ? error.message : String(error),
    };
  } finally {
    clearTimeout(timer);
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

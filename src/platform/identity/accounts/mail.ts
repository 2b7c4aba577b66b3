import { MailLimitedError, type Mailer } from '../../mail/index.ts';
import type { Logger } from '../../observability/index.ts';

/**
 * The mail side of the account flows, shared by `AccountService` and `ProfileService`: sends
 * that must not reveal a send limit, and work run after the answer so that the answer does not
 * depend on whether an address has an account.
 */
export class AccountMail {
  readonly #mail: Mailer | null;
  readonly #log: Logger;
  readonly #pending = new Set<Promise<void>>();

  constructor(mail: Mailer | null, logger: Logger) {
    this.#mail = mail;
    this.#log = logger;
  }

  get mailer(): Mailer {
    if (!this.#mail) throw new Error('the identity area needs the mailer');
    return this.#mail;
  }

  /** Sends mail, except past a send limit, which must look like a send (no enumeration). */
  async quietly(send: (mailer: Mailer) => Promise<unknown>): Promise<void> {
    try {
      await send(this.mailer);
    } catch (error) {
      if (!(error instanceof MailLimitedError)) throw error;
      this.#log.info({ limit: error.limit }, 'identity mail not sent: send limit reached');
    }
  }

  /**
   * Runs `work` once the current answer is on its way (a process crash in between loses it: the
   * user asks again). Failures are logged; `drain()` awaits what is still running.
   */
  later(what: string, work: () => Promise<void>): void {
    const run = new Promise<void>((resolve) => setImmediate(resolve))
      .then(work)
      .catch((error: unknown) => this.#log.error({ err: error }, `identity ${what} failed`))
      .finally(() => this.#pending.delete(run));
    this.#pending.add(run);
  }

  /** Waits for the work still running (at shutdown, and in tests). */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }
}

import type { Logger } from '../../observability/index.ts';

/** One SMS to send. */
export interface SmsMessage {
  /** E.164. */
  to: string;
  body: string;
}

/** Where SMS codes go: a provider's API, or the log in development. */
export interface SmsSender {
  readonly name: string;
  /** Resolves once the provider accepted the message; rejects with `SmsDeliveryError`. */
  send(message: SmsMessage): Promise<void>;
}

/** The provider refused or could not be reached; `code` is the provider's, never the message. */
export class SmsDeliveryError extends Error {
  readonly status: number | null;
  readonly code: string | null;
  constructor(message: string, options: { status?: number | null; code?: string | null } = {}) {
    super(message);
    this.name = 'SmsDeliveryError';
    this.status = options.status ?? null;
    this.code = options.code ?? null;
  }
}

/**
 * Development and test: the message goes to the log (code included), so a developer signs in
 * without a provider. The settings refuse it in staging and production, so a code never reaches
 * a production log.
 */
export class ConsoleSmsSender implements SmsSender {
  readonly name = 'console';
  readonly #log: Logger;
  /** The messages sent, newest last (a development aid; bounded). */
  readonly sent: SmsMessage[] = [];

  constructor(logger: Logger) {
    this.#log = logger;
  }

  send(message: SmsMessage): Promise<void> {
    this.sent.push(message);
    if (this.sent.length > 100) this.sent.shift();
    this.#log.info({ to: message.to, body: message.body }, 'SMS (console provider, development)');
    return Promise.resolve();
  }
}

import type { TwilioSettings } from '../mfa/factor-config.ts';
import { SmsDeliveryError, type SmsMessage, type SmsSender } from './provider.ts';

/**
 * Twilio's Messages API: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, a form
 * body (`To`, `Body`, and `From` or `MessagingServiceSid`), HTTP Basic authentication with the
 * account SID and auth token. 201 with the message resource on success; errors are JSON
 * `{code, message, more_info, status}`. Through Node's fetch (undici), with a timeout.
 */
export class TwilioSmsSender implements SmsSender {
  readonly name = 'twilio';
  readonly #settings: TwilioSettings;
  readonly #timeoutMs: number;

  constructor(settings: TwilioSettings, options: { timeoutMs: number }) {
    this.#settings = settings;
    this.#timeoutMs = options.timeoutMs;
  }

  async send(message: SmsMessage): Promise<void> {
    const s = this.#settings;
    const form = new URLSearchParams({ To: message.to, Body: message.body });
    if (s.messagingServiceSid !== null) form.set('MessagingServiceSid', s.messagingServiceSid);
    else if (s.from !== null) form.set('From', s.from);
    const url = `${s.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(s.accountSid)}/Messages.json`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${s.accountSid}:${s.authToken}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: form.toString(),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw new SmsDeliveryError(
        `Twilio unreachable: ${error instanceof Error ? error.name : 'error'}`,
      );
    }
    if (res.status === 201 || res.status === 200) {
      await res.body?.cancel();
      return;
    }
    let code: string | null = null;
    try {
      const body = (await res.json()) as { code?: unknown };
      if (typeof body.code === 'number' || typeof body.code === 'string') code = String(body.code);
    } catch {
      code = null;
    }
    throw new SmsDeliveryError(`Twilio refused the message (HTTP ${String(res.status)})`, {
      status: res.status,
      code,
    });
  }
}

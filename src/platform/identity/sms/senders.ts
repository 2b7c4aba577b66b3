import type { Logger } from '../../observability/index.ts';
import type { FactorSettings } from '../mfa/factor-config.ts';
import { ConsoleSmsSender, type SmsSender } from './provider.ts';
import { TwilioSmsSender } from './twilio.ts';

/** The sender the settings choose; null when SMS is off. */
export function smsSenderFor(
  settings: FactorSettings['sms'],
  options: { logger: Logger; timeoutMs: number },
): SmsSender | null {
  if (settings.provider === 'twilio' && settings.twilio)
    return new TwilioSmsSender(settings.twilio, { timeoutMs: options.timeoutMs });
  if (settings.provider === 'console') return new ConsoleSmsSender(options.logger);
  return null;
}

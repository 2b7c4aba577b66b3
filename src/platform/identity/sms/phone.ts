import { parsePhoneNumberWithError, ParseError, type CountryCode } from 'libphonenumber-js/max';

/** What a typed phone number may hold: digits, a leading `+`, spaces, dots, dashes, brackets. */
const TYPED = /^\+?[0-9 .()-]{1,31}$/;

export type PhoneProblem =
  'letters' | 'no-country' | 'too-short' | 'too-long' | 'invalid' | 'premium-rate' | 'shared-cost';

const DETAIL: Record<PhoneProblem, string> = {
  letters: 'A phone number holds digits only (with `+`, spaces, dots, dashes or brackets).',
  'no-country': 'Start the number with `+` and its country code (`+44 7911 123456`).',
  'too-short': 'The number is too short.',
  'too-long': 'The number is too long.',
  invalid: 'This is not a valid phone number for its country.',
  'premium-rate': 'Premium-rate numbers are not accepted.',
  'shared-cost': 'Shared-cost numbers are not accepted.',
};

export const phoneProblemDetail = (problem: PhoneProblem): string => DETAIL[problem];

/**
 * A typed phone number in E.164 (`+447911123456`), or why it is refused. libphonenumber-js's
 * full metadata (`/max`) validates the number for its country and tells its type, so that
 * premium-rate and shared-cost numbers (the targets of SMS pumping fraud) can be refused.
 * Letters are refused before parsing: the library would read `1-800-FLOWERS` as digits.
 */
export function parsePhone(
  input: string,
  options: { defaultRegion: string | null; refusePremium: boolean },
): { e164: string } | { problem: PhoneProblem } {
  const typed = input.trim();
  if (!TYPED.test(typed)) return { problem: /[^\s0-9+.()-]/.test(typed) ? 'letters' : 'invalid' };
  if (!typed.startsWith('+') && options.defaultRegion === null) return { problem: 'no-country' };
  let parsed;
  try {
    parsed = parsePhoneNumberWithError(typed, {
      defaultCountry: (options.defaultRegion ?? undefined) as CountryCode | undefined,
    });
  } catch (error) {
    if (error instanceof ParseError) {
      if (error.message === 'TOO_SHORT') return { problem: 'too-short' };
      if (error.message === 'TOO_LONG') return { problem: 'too-long' };
      if (error.message === 'INVALID_COUNTRY') return { problem: 'no-country' };
    }
    return { problem: 'invalid' };
  }
  if (!parsed.isValid()) {
    const length = parsed.nationalNumber.length;
    return { problem: length < 6 ? 'too-short' : 'invalid' };
  }
  if (options.refusePremium) {
    const type = parsed.getType();
    if (type === 'PREMIUM_RATE') return { problem: 'premium-rate' };
    if (type === 'SHARED_COST') return { problem: 'shared-cost' };
  }
  return { e164: parsed.number };
}

/** A number shown masked, for status answers: `+44 •••• ••3456` → `+44******3456`. */
export function maskPhone(e164: string): string {
  return `${e164.slice(0, 3)}${'•'.repeat(Math.max(0, e164.length - 7))}${e164.slice(-4)}`;
}

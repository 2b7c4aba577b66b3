import { Type } from 'typebox';

/** A mailed token: 32 random bytes in base64url. */
const TOKEN = '^[A-Za-z0-9_-]{43}$';

/** The inline style of a mail's main link (mail clients drop style sheets). */
export const BUTTON_STYLE =
  'display:inline-block;padding:12px 20px;background:#2563eb;color:#ffffff;text-decoration:none;border-radius:4px;';

/** A sample token for previews and tests. */
const SAMPLE_TOKEN = 'c2FtcGxlLXRva2VuLTAxMjM0NTY3ODktYWJjZGVmZ2g';

/**
 * What a mail carrying a single-use link gets, and its sample: the user name, the token and how
 * long the link works (in `minutes` or `hours`); per recipient at most 5 such mails an hour.
 */
export function tokenLinkMail<Unit extends 'minutes' | 'hours'>(unit: Unit, sampleLife: number) {
  return {
    vars: Type.Object(
      {
        username: Type.String({ minLength: 3, maxLength: 32 }),
        token: Type.String({ pattern: TOKEN }),
        [unit]: Type.Integer({ minimum: 1 }),
      } as {
        username: ReturnType<typeof Type.String>;
        token: ReturnType<typeof Type.String>;
      } & Record<Unit, ReturnType<typeof Type.Integer>>,
      { additionalProperties: false },
    ),
    sample: { username: 'ada', token: SAMPLE_TOKEN, [unit]: sampleLife } as {
      username: string;
      token: string;
    } & Record<Unit, number>,
    limits: { perRecipient: { max: 5, windowSeconds: 3_600 } },
  };
}

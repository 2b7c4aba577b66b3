import { Type, type TSchema, type TString } from 'typebox';

type PlatformKey<P extends string> =
  `PUBLISHING_${P}_${'CLIENT_ID' | 'CLIENT_SECRET' | 'API_URL' | 'AUTH_URL' | 'TOKEN_URL'}`;

const url = (description: string, value: string) =>
  Type.String({ default: value, format: 'uri', maxLength: 2048, description });

/** One platform's app registration and endpoints: `PUBLISHING_<PLATFORM>_*`. */
function platformSettings<P extends 'INSTAGRAM' | 'FACEBOOK' | 'YOUTUBE'>(
  prefix: P,
  name: string,
  urls: { api: string; auth: string; token: string },
) {
  return {
    [`PUBLISHING_${prefix}_CLIENT_ID`]: Type.String({
      default: '',
      maxLength: 512,
      description: `${name}: the OAuth client (app) id. The platform is enabled when it is set.`,
    }),
    [`PUBLISHING_${prefix}_CLIENT_SECRET`]: Type.String({
      default: '',
      maxLength: 512,
      description: `${name}: the OAuth client secret.`,
      'x-config': { secret: true },
    }),
    [`PUBLISHING_${prefix}_API_URL`]: url(`${name}: the API's base URL.`, urls.api),
    [`PUBLISHING_${prefix}_AUTH_URL`]: url(`${name}: the OAuth consent page.`, urls.auth),
    [`PUBLISHING_${prefix}_TOKEN_URL`]: url(`${name}: the OAuth token endpoint.`, urls.token),
  } as Record<PlatformKey<P>, TString>;
}

const GRAPH = 'https://graph.facebook.com/v21.0';
const FB_DIALOG = 'https://www.facebook.com/v21.0/dialog/oauth';

/** The accounts half's settings (platform apps, OAuth endpoints, token keys): `PUBLISHING_*`. */
export const accountsConfig = {
  ...platformSettings('INSTAGRAM', 'Instagram (Graph API through Facebook Login)', {
    api: GRAPH,
    auth: FB_DIALOG,
    token: `${GRAPH}/oauth/access_token`,
  }),
  ...platformSettings('FACEBOOK', 'Facebook Pages', {
    api: GRAPH,
    auth: FB_DIALOG,
    token: `${GRAPH}/oauth/access_token`,
  }),
  ...platformSettings('YOUTUBE', 'YouTube (Google OAuth)', {
    api: 'https://www.googleapis.com',
    auth: 'https://accounts.google.com/o/oauth2/v2/auth',
    token: 'https://oauth2.googleapis.com/token',
  }),
  PUBLISHING_TOKEN_KEYS: Type.String({
    default: '',
    maxLength: 8192,
    pattern:
      '^$|^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/_=-]{43,44}(,[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/_=-]{43,44}){0,15}$',
    description:
      'Keys sealing stored platform tokens (AES-256-GCM): `kid:base64key,...`, 32-byte keys, the first seals, all open. Empty: one key derived from `APP_SECRET`. Rotate by putting a new key first; the rotation job re-seals old rows.',
    'x-config': { secret: true },
  }),
  PUBLISHING_CONNECT_RETURN_URL: Type.String({
    default: '',
    maxLength: 2048,
    pattern: '^$|^https?://',
    description:
      'Where the OAuth callback sends the browser back (the web app), with `status=connected&accounts=<ids>` or `status=error&code=<code>`. Empty: the callback answers JSON.',
  }),
  PUBLISHING_OAUTH_STATE_TTL_S: Type.Integer({
    default: 600,
    minimum: 60,
    maximum: 3600,
    description: 'How long a connect link (its OAuth state) stays usable, in seconds.',
  }),
  PUBLISHING_REFRESH_MARGIN_S: Type.Integer({
    default: 900,
    minimum: 60,
    maximum: 604_800,
    description:
      'Tokens expiring within this many seconds are renewed (by the refresh job, or before use).',
  }),
  PUBLISHING_REFRESH_CRON: Type.String({
    default: '*/5 * * * *',
    maxLength: 64,
    description: 'When the token refresh job runs (cron, UTC).',
  }),
  PUBLISHING_HTTP_TIMEOUT_MS: Type.Integer({
    default: 15_000,
    minimum: 100,
    maximum: 300_000,
    description: 'Time limit of one call to a platform API (connect to last byte).',
  }),
  PUBLISHING_UPLOAD_TIMEOUT_MS: Type.Integer({
    default: 600_000,
    minimum: 100,
    maximum: 3_600_000,
    description: 'Time limit of one media upload to a platform (YouTube video bytes).',
  }),
  PUBLISHING_CONTAINER_POLL_MS: Type.Integer({
    default: 2_000,
    minimum: 10,
    maximum: 60_000,
    description: 'Instagram: the wait between two status checks of a media container.',
  }),
  PUBLISHING_CONTAINER_POLL_LIMIT: Type.Integer({
    default: 60,
    minimum: 1,
    maximum: 1_000,
    description:
      'Instagram: status checks of a media container before the attempt gives up (retryable).',
  }),
} satisfies Record<string, TSchema>;

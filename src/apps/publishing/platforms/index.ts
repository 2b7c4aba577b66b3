import type { Agent } from 'undici';
import type { PublishingSettings } from '../settings.ts';
import { createFacebook } from './facebook.ts';
import { PlatformHttp } from './http.ts';
import { createInstagram } from './instagram.ts';
import type { ConnectableAdapter, PlatformEndpoints } from './oauth.ts';
import type { PlatformId } from './types.ts';
import { createYoutube } from './youtube.ts';

export type { ConnectableAdapter, ConnectedIdentity, OAuthProvider, TokenSet } from './oauth.ts';
export { PlatformHttp } from './http.ts';

const FACTORIES: Record<
  PlatformId,
  (http: PlatformHttp, ep: PlatformEndpoints) => ConnectableAdapter
> = {
  instagram: createInstagram,
  facebook: createFacebook,
  youtube: createYoutube,
};

/** One platform's endpoints from the settings (`PUBLISHING_<PLATFORM>_*`). */
export function endpointsOf(settings: PublishingSettings, id: PlatformId): PlatformEndpoints {
  const s = settings as unknown as Record<string, string>;
  const P = `PUBLISHING_${id.toUpperCase()}`;
  const trim = (u: string) => u.replace(/\/+$/, '');
  return {
    clientId: s[`${P}_CLIENT_ID`] ?? '',
    clientSecret: s[`${P}_CLIENT_SECRET`] ?? '',
    apiUrl: trim(s[`${P}_API_URL`] ?? ''),
    authUrl: s[`${P}_AUTH_URL`] ?? '',
    tokenUrl: s[`${P}_TOKEN_URL`] ?? '',
    timeoutMs: settings.PUBLISHING_HTTP_TIMEOUT_MS,
    uploadTimeoutMs: settings.PUBLISHING_UPLOAD_TIMEOUT_MS,
    pollMs: settings.PUBLISHING_CONTAINER_POLL_MS,
    pollLimit: settings.PUBLISHING_CONTAINER_POLL_LIMIT,
  };
}

/** The adapters of the platforms whose client id is set, sharing one connection agent. */
export function buildAdapters(
  settings: PublishingSettings,
  agent: Agent = PlatformHttp.agent(),
): Map<PlatformId, ConnectableAdapter> {
  const adapters = new Map<PlatformId, ConnectableAdapter>();
  for (const id of Object.keys(FACTORIES) as PlatformId[]) {
    const ep = endpointsOf(settings, id);
    if (ep.clientId === '') continue;
    adapters.set(id, FACTORIES[id](new PlatformHttp(id, agent), ep));
  }
  return adapters;
}

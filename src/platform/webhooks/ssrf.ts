import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Resolves a host name to every address it has (the default uses the system resolver). */
export interface Resolver {
  lookup(hostname: string): Promise<{ address: string; family: 4 | 6 }[]>;
}

/** What webhook URLs may point at. */
export interface UrlPolicy {
  /**
   * Allow loopback, private, unique-local and CGNAT addresses (tests and development only).
   * Cloud metadata, link-local, multicast, broadcast and unspecified addresses stay refused.
   */
  allowPrivateNetworks: boolean;
  /** Only `https:` URLs. */
  requireHttps: boolean;
  /** Longest URL accepted, in characters (default 2048). */
  maxUrlLength?: number;
}

/** Why a URL was refused, as `AttemptResult.errorClass` names it. */
export type UrlFailureClass = 'invalid-url' | 'dns' | 'blocked-address';

export type UrlCheck =
  | { ok: true; url: URL; addresses: { address: string; family: 4 | 6 }[] }
  | {
      ok: false;
      /** Safe to show the endpoint's owner. */
      reason: string;
      errorClass: UrlFailureClass;
    };

/**
 * How an address may be used: `public` anywhere; `private` only with `allowPrivateNetworks`;
 * `never` under any setting (metadata services, link-local, multicast, unspecified...).
 */
export type AddressClass = 'public' | 'private' | 'never';

/** Longest webhook URL accepted when the policy names no limit. */
export const DEFAULT_MAX_URL_LENGTH = 2048;

/** The system resolver, every address in the order the system gives them. */
export const systemResolver: Resolver = {
  async lookup(hostname) {
    const answers = await lookup(hostname, { all: true, order: 'verbatim' });
    return answers.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
  },
};

// Ranges from the IANA IPv4/IPv6 special-purpose address registries (RFC 6890 and updates).
// net.BlockList does the prefix matching; the lists are ours because no registry package is in
// the dependency tree, and they are short enough to read against the registries.
const NEVER_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 reaches the local host on Linux
  ['169.254.0.0', 16], // link-local, where the cloud metadata services live (169.254.169.254)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
  ['100.100.100.200', 32], // Alibaba Cloud metadata
  ['168.63.129.16', 32], // Azure host services (wire server)
];
const PRIVATE_V4: [string, number][] = [
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8], // loopback
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation (TEST-NET-1)
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation (TEST-NET-2)
  ['203.0.113.0', 24], // documentation (TEST-NET-3)
];
const NEVER_V6: [string, number][] = [
  ['::', 128], // unspecified
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['fd00:ec2::254', 128], // AWS metadata over IPv6
];
const PRIVATE_V6: [string, number][] = [
  ['::1', 128], // loopback
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, AS112...)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
  ['5f00::', 16], // SRv6 SIDs
  ['fc00::', 7], // unique-local
  ['fec0::', 10], // site-local (deprecated)
];

function blockList(v4: [string, number][], v6: [string, number][]): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of v4) list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of v6) list.addSubnet(net, prefix, 'ipv6');
  return list;
}
const NEVER = blockList(NEVER_V4, NEVER_V6);
const PRIVATE = blockList(PRIVATE_V4, PRIVATE_V6);

/**
 * Classifies an IP address for webhook delivery. Not an IP address at all: `never`. IPv6 forms
 * that carry an IPv4 address (IPv4-mapped and -compatible, NAT64 64:ff9b::/96, 6to4 2002::/16)
 * are judged by the IPv4 address they carry; IPv6 outside global unicast 2000::/3 is refused.
 */
export function classifyAddress(raw: string): AddressClass {
  const address = stripBrackets(raw).replace(/%.*$/, ''); // a zone id never makes it routable
  const family = isIP(address);
  if (family === 4) {
    if (NEVER.check(address, 'ipv4')) return 'never';
    return PRIVATE.check(address, 'ipv4') ? 'private' : 'public';
  }
  if (family !== 6) return 'never';
  if (NEVER.check(address, 'ipv6')) return 'never';
  const bytes = ipv6Bytes(address);
  if (!bytes) return 'never';
  const embedded = embeddedIPv4(bytes);
  if (embedded !== undefined) return classifyAddress(embedded);
  if (PRIVATE.check(address, 'ipv6')) return 'private';
  // Outside 2000::/3 everything is reserved or special (the list above names the used ones).
  if ((bytes[0]! & 0xe0) !== 0x20) return 'private';
  return 'public';
}

/**
 * True for every address a webhook must not reach from production: loopback, private,
 * link-local, unique-local, CGNAT, multicast, broadcast, reserved and documentation ranges, cloud
 * metadata, and IPv6 forms embedding such an IPv4 address. Anything not an IP address is forbidden.
 */
export function isForbiddenAddress(address: string): boolean {
  return classifyAddress(address) !== 'public';
}

/** Whether the policy lets a delivery connect to this address. */
export function isAllowedAddress(address: string, policy: Pick<UrlPolicy, 'allowPrivateNetworks'>) {
  const kind = classifyAddress(address);
  return kind === 'public' || (kind === 'private' && policy.allowPrivateNetworks);
}

/**
 * Checks a webhook URL and resolves its host, checking every address. Call it when an endpoint
 * is saved and again before each attempt (`attemptDelivery` does), then connect only to one of
 * the returned addresses. The returned URL has no fragment (never sent).
 */
export async function checkWebhookUrl(
  raw: string,
  policy: UrlPolicy,
  resolver: Resolver = systemResolver,
): Promise<UrlCheck> {
  const invalid = (reason: string): UrlCheck => ({ ok: false, reason, errorClass: 'invalid-url' });
  const maxLength = policy.maxUrlLength ?? DEFAULT_MAX_URL_LENGTH;
  if (raw.length > maxLength) return invalid(`URL is longer than ${maxLength} characters`);
  const url = URL.parse(raw);
  if (!url) return invalid('not a valid URL');
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return invalid('URL scheme must be http or https');
  if (policy.requireHttps && url.protocol !== 'https:') return invalid('URL must use https');
  if (url.username || url.password) return invalid('URL must not contain credentials');
  if (!url.hostname) return invalid('URL has no host');
  url.hash = '';

  const host = stripBrackets(url.hostname);
  let addresses: { address: string; family: 4 | 6 }[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await resolver.lookup(host);
    } catch {
      return { ok: false, reason: 'host name could not be resolved', errorClass: 'dns' };
    }
    if (addresses.length === 0)
      return { ok: false, reason: 'host name has no address', errorClass: 'dns' };
  }
  for (const { address } of addresses) {
    const kind = classifyAddress(address);
    if (kind === 'never' || (kind === 'private' && !policy.allowPrivateNetworks))
      return {
        ok: false,
        reason:
          kind === 'never' ? 'resolves to a forbidden address' : 'resolves to a private address',
        errorClass: 'blocked-address',
      };
  }
  return {
    ok: true,
    url,
    addresses: addresses.map(({ address }) => ({
      address,
      family: isIP(address) === 6 ? 6 : 4,
    })),
  };
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** The 16 bytes of a valid IPv6 address (dotted IPv4 tail allowed), or undefined. */
export function ipv6Bytes(address: string): Uint8Array | undefined {
  if (isIP(address) !== 6) return undefined;
  let text = address.toLowerCase();
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail[1]!.split('.').map(Number);
    text = `${text.slice(0, -tail[1]!.length)}${((a! << 8) | b!).toString(16)}:${((c! << 8) | d!).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = rest === undefined ? [] : rest ? rest.split(':') : [];
  const fill = rest === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(fill).fill('0'), ...right];
  if (groups.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = Number.parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

/** The IPv4 address an IPv6 address carries by a standard embedding, if any. */
function embeddedIPv4(b: Uint8Array): string | undefined {
  const v4 = (at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated); :: and ::1 are listed above.
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(12);
  if (zero(0, 12) && !(zero(12, 15) && (b[15] === 0 || b[15] === 1))) return v4(12);
  // 64:ff9b::a.b.c.d (NAT64 well-known prefix, RFC 6052)
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return v4(12);
  // 2002:aabb:ccdd::/48 (6to4)
  if (b[0] === 0x20 && b[1] === 0x02) return v4(2);
  return undefined;
}

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkWebhookUrl,
  classifyAddress,
  isForbiddenAddress,
  type Resolver,
  type UrlPolicy,
} from '../../src/platform/webhooks/transport.ts';

/** Production-like, but http allowed so the address checks are reached. */
const PUBLIC_ONLY: UrlPolicy = { allowPrivateNetworks: false, requireHttps: false };
const PRODUCTION: UrlPolicy = { allowPrivateNetworks: false, requireHttps: true };
const DEVELOPMENT: UrlPolicy = { allowPrivateNetworks: true, requireHttps: false };

/** A resolver answering from a table, counting its calls. */
function resolver(table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    lookup(hostname) {
      calls.push(hostname);
      const answers = table[hostname];
      if (!answers)
        return Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }));
      return Promise.resolve(
        answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }) as const),
      );
    },
  };
}
const noDns: Resolver = {
  lookup: () => Promise.reject(new Error('the resolver must not be called for an IP literal')),
};

describe('isForbiddenAddress', () => {
  const forbidden = [
    // loopback, "this network", unspecified
    '127.0.0.1',
    '127.255.255.254',
    '0.0.0.0',
    '0.1.2.3',
    '::1',
    '::',
    // private, CGNAT, link-local, cloud metadata
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.1',
    '100.64.0.1',
    '100.127.255.255',
    '169.254.0.1',
    '169.254.169.254',
    '100.100.100.200',
    '168.63.129.16',
    'fe80::1',
    'febf::1',
    'fc00::1',
    'fd12:3456:789a::1',
    'fd00:ec2::254',
    'fec0::1',
    // multicast, broadcast, reserved, documentation, benchmarking
    '224.0.0.1',
    '239.255.255.250',
    'ff02::1',
    '255.255.255.255',
    '240.0.0.1',
    '192.0.0.8',
    '192.0.2.1',
    '198.51.100.7',
    '203.0.113.9',
    '198.18.0.1',
    '192.88.99.1',
    '2001:db8::1',
    '3fff::1',
    '100::1',
    '2001::1', // Teredo
    '5f00::1',
    '4000::1', // outside global unicast 2000::/3
    // IPv6 carrying a forbidden IPv4 address
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:169.254.169.254',
    '::ffff:10.0.0.1',
    '::127.0.0.1', // IPv4-compatible (deprecated)
    '::a9fe:a9fe',
    '64:ff9b::127.0.0.1', // NAT64
    '64:ff9b::a9fe:a9fe',
    '64:ff9b:1::1', // local-use NAT64
    '2002:7f00:1::1', // 6to4 of 127.0.0.1
    '2002:c0a8:101::1', // 6to4 of 192.168.1.1
    '2002:a9fe:a9fe::', // 6to4 of 169.254.169.254
    // not IP addresses, or with a zone
    '',
    'localhost',
    'example.com',
    '2130706433',
    '0x7f000001',
    '0177.0.0.1',
    '127.1',
    '1.2.3.4.5',
    'fe80::1%eth0',
    '[::1]',
  ];
  for (const address of forbidden)
    test(`refuses ${JSON.stringify(address)}`, () =>
      assert.equal(isForbiddenAddress(address), true));

  const allowed = [
    '8.8.8.8',
    '1.1.1.1',
    '93.184.216.34',
    '11.0.0.1',
    '100.63.255.255',
    '100.128.0.1',
    '169.253.255.255',
    '172.15.255.255',
    '172.32.0.1',
    '192.167.255.255',
    '223.255.255.255',
    '2606:4700:4700::1111',
    '2a00:1450:4001:82b::200e',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ];
  for (const address of allowed)
    test(`accepts ${address}`, () => assert.equal(isForbiddenAddress(address), false));

  test('with private networks allowed, metadata, link-local and multicast stay refused', () => {
    for (const address of [
      '127.0.0.1',
      '::1',
      '10.0.0.1',
      '192.168.1.1',
      'fd12::1',
      '::ffff:127.0.0.1',
    ])
      assert.equal(classifyAddress(address), 'private', address);
    for (const address of [
      '169.254.169.254',
      '::ffff:169.254.169.254',
      '64:ff9b::a9fe:a9fe',
      'fd00:ec2::254',
      'fe80::1',
      '0.0.0.0',
      '::',
      '224.0.0.1',
      '255.255.255.255',
      '100.100.100.200',
    ])
      assert.equal(classifyAddress(address), 'never', address);
  });
});

describe('checkWebhookUrl', () => {
  const refused = async (
    raw: string,
    errorClass: string,
    policy: UrlPolicy = PUBLIC_ONLY,
    dns: Resolver = noDns,
  ) => {
    const check = await checkWebhookUrl(raw, policy, dns);
    assert.equal(check.ok, false, raw);
    if (!check.ok) assert.equal(check.errorClass, errorClass, `${raw}: ${check.reason}`);
    return check;
  };

  test('the bad URLs of issue 14, IP spellings normalised by URL parsing then checked', async () => {
    for (const raw of [
      'http://127.0.0.1',
      'http://[::1]',
      'http://0x7f000001',
      'http://2130706433',
      'http://0177.0.0.1',
      'http://127.1',
      'http://%31%32%37.0.0.1/',
      'http://169.254.169.254/latest/meta-data',
      'http://[::ffff:127.0.0.1]',
      'http://[::ffff:a9fe:a9fe]/latest/meta-data',
      'http://0/',
      'http://10.0.0.1:8080/hook',
    ])
      await refused(raw, 'blocked-address');
  });

  test('the reason is safe to show: it names no address', async () => {
    const check = await refused('http://10.1.2.3/', 'blocked-address');
    assert.ok(!check.ok && check.reason === 'resolves to a private address');
    const metadata = await refused('http://169.254.169.254/', 'blocked-address', DEVELOPMENT);
    assert.ok(!metadata.ok && metadata.reason === 'resolves to a forbidden address');
  });

  test('cloud metadata is refused even with private networks allowed; loopback is not', async () => {
    await refused('http://169.254.169.254/latest/meta-data', 'blocked-address', DEVELOPMENT);
    await refused('http://[fd00:ec2::254]/', 'blocked-address', DEVELOPMENT);
    const dns = resolver({ 'metadata.internal': ['169.254.169.254'] });
    await refused('http://metadata.internal/', 'blocked-address', DEVELOPMENT, dns);
    const loopback = await checkWebhookUrl('http://127.0.0.1:8080/hook', DEVELOPMENT, noDns);
    assert.equal(loopback.ok, true);
  });

  test('schemes other than http(s), and http when https is required', async () => {
    for (const raw of [
      'file:///etc/passwd',
      'gopher://example.com:70/_GET',
      'ftp://example.com/',
      'javascript:alert(1)',
      'data:text/plain,hello',
      'ws://example.com/',
      'dict://example.com:11211/',
    ])
      await refused(raw, 'invalid-url', DEVELOPMENT);
    const check = await refused('http://example.com/hook', 'invalid-url', PRODUCTION);
    assert.ok(!check.ok && check.reason === 'URL must use https');
  });

  test('userinfo in the URL is refused', async () => {
    for (const raw of [
      'https://user:pass@example.com/hook',
      'https://user@example.com/hook',
      'https://:pass@example.com/hook',
      'https://example.com@127.0.0.1/',
    ])
      await refused(raw, 'invalid-url', PRODUCTION);
  });

  test('a 10 KB URL is refused before any parsing or resolution; the cap is configurable', async () => {
    await refused(`https://example.com/${'a'.repeat(10 * 1024)}`, 'invalid-url', PRODUCTION);
    const dns = resolver({ 'example.com': ['93.184.216.34'] });
    const long = `https://example.com/${'a'.repeat(3000)}`;
    assert.equal((await checkWebhookUrl(long, PRODUCTION, dns)).ok, false);
    assert.equal(
      (await checkWebhookUrl(long, { ...PRODUCTION, maxUrlLength: 4096 }, dns)).ok,
      true,
    );
  });

  test('not a URL, or no host', async () => {
    for (const raw of ['', 'example.com/hook', 'https://', 'http://[::1', 'https://exa mple.com/'])
      await refused(raw, 'invalid-url');
  });

  test('a host name resolving to a private address is refused', async () => {
    const dns = resolver({ 'internal.example': ['10.0.0.5'], 'v6.example': ['fd00::5'] });
    await refused('https://internal.example/hook', 'blocked-address', PRODUCTION, dns);
    await refused('https://v6.example/hook', 'blocked-address', PRODUCTION, dns);
    assert.deepEqual(dns.calls, ['internal.example', 'v6.example']);
  });

  test('every address is checked: one private address among public ones is enough to refuse', async () => {
    const dns = resolver({ 'mixed.example': ['93.184.216.34', '2606:4700::1', '127.0.0.1'] });
    await refused('https://mixed.example/', 'blocked-address', PRODUCTION, dns);
  });

  test('a name that does not resolve, or has no address: dns', async () => {
    await refused('https://nowhere.example/', 'dns', PRODUCTION, resolver({}));
    await refused('https://empty.example/', 'dns', PRODUCTION, resolver({ 'empty.example': [] }));
  });

  test('an address the resolver made up (not an IP) is refused', async () => {
    const dns = resolver({ 'odd.example': ['not-an-ip'] });
    await refused('https://odd.example/', 'blocked-address', PRODUCTION, dns);
  });

  test('public at creation, private at delivery: the second check refuses', async () => {
    let answer = '93.184.216.34';
    const dns: Resolver = {
      lookup: () => Promise.resolve([{ address: answer, family: 4 }]),
    };
    assert.equal((await checkWebhookUrl('https://rebind.example/', PRODUCTION, dns)).ok, true);
    answer = '127.0.0.1';
    await refused('https://rebind.example/', 'blocked-address', PRODUCTION, dns);
  });

  test('accepted: the URL without its fragment, and every checked address', async () => {
    const dns = resolver({ 'hooks.example.com': ['93.184.216.34', '2606:2800:220:1::1'] });
    const check = await checkWebhookUrl(
      'https://hooks.example.com:8443/in?x=1#secret-fragment',
      PRODUCTION,
      dns,
    );
    assert.ok(check.ok);
    assert.equal(check.url.href, 'https://hooks.example.com:8443/in?x=1');
    assert.deepEqual(check.addresses, [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
  });

  test('an IP literal is not resolved', async () => {
    const check = await checkWebhookUrl('https://[2606:4700:4700::1111]/', PRODUCTION, noDns);
    assert.ok(check.ok);
    assert.deepEqual(check.addresses, [{ address: '2606:4700:4700::1111', family: 6 }]);
  });
});

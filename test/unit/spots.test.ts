// The spots app's pure rules: coordinates and boxes as clients send them, tags, the prefix form
// of a search, and the cache tags of viewports.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import {
  boxTags,
  invalidateSpot,
  pointTags,
  REINVALIDATE_MS,
  spotTag,
} from '../../src/apps/spots/spots.cache.ts';
import { cacheKey, createCache } from '../../src/platform/cache/index.ts';
import {
  normalizeTags,
  parseBbox,
  parseNear,
  prefixQuery,
} from '../../src/apps/spots/spots.service.ts';
import { HttpError } from '../../src/platform/http/index.ts';

const refused = (fn: () => unknown) =>
  assert.throws(fn, (e: unknown) => e instanceof HttpError && e.code === 'INVALID_LOCATION');

describe('spots: near and bbox', () => {
  test('plain decimals within range', () => {
    assert.deepEqual(parseNear('48.8584,2.2945'), { lat: 48.8584, lng: 2.2945 });
    assert.deepEqual(parseNear(' -90 , 180 '), { lat: -90, lng: 180 });
    for (const bad of [
      '91,0',
      '0,180.0000001',
      'NaN,0',
      '1e309,0',
      'Infinity,1',
      '0x1,1',
      '1,',
      '1,2,3',
      '',
      '--1,1',
      '1.,1',
    ])
      refused(() => parseNear(bad));
  });

  test('a box crossing the antimeridian splits in two; an inverted one is refused', () => {
    assert.deepEqual(parseBbox('2.25,48.81,2.42,48.9'), [
      { minLng: 2.25, minLat: 48.81, maxLng: 2.42, maxLat: 48.9 },
    ]);
    assert.deepEqual(parseBbox('170,-20,-170,-10'), [
      { minLng: 170, minLat: -20, maxLng: 180, maxLat: -10 },
      { minLng: -180, minLat: -20, maxLng: -170, maxLat: -10 },
    ]);
    refused(() => parseBbox('0,10,1,5'));
    refused(() => parseBbox('0,0,1'));
    refused(() => parseBbox('0,-91,1,0'));
  });
});

describe('spots: tags and search text', () => {
  test('tags: lower-case, trimmed, NFKC, duplicates in any case once', () => {
    assert.deepEqual(
      normalizeTags(['Sunset', 'SUNSET ', ' sunset', 'Ｂｒｉｄｇｅ', 'bridge', '  ', 'two  words']),
      ['sunset', 'bridge', 'two words'],
    );
  });

  test('the prefix form holds only letters, digits, & and the final :*', () => {
    assert.equal(prefixQuery('Pont des Ar'), 'pont & des & ar:*');
    assert.equal(prefixQuery("&|!:*() 'x' <-> café"), 'x & café:*');
    assert.equal(prefixQuery('!!! ((( ***'), null);
    assert.equal(prefixQuery('a\u0000b'), 'a & b:*');
    assert.equal(prefixQuery('w '.repeat(50))?.split('&').length, 8);
  });
});

describe('spots: viewport cache tags', () => {
  test('small boxes by 1° cell, larger by 10°, the world past that; a point invalidates all three', () => {
    assert.deepEqual(boxTags([{ minLng: 2.2, minLat: 48.8, maxLng: 2.4, maxLat: 48.9 }]), [
      'spots:t1:2:48',
    ]);
    assert.equal(
      boxTags([{ minLng: 0, minLat: 0, maxLng: 20, maxLat: 20 }]).every((t) =>
        t.startsWith('spots:t10:'),
      ),
      true,
    );
    assert.deepEqual(boxTags([{ minLng: -180, minLat: -90, maxLng: 180, maxLat: 90 }]), [
      'spots:world',
    ]);
    const tags = pointTags(48.85, 2.35);
    assert.deepEqual(tags, ['spots:t1:2:48', 'spots:t10:0:4', 'spots:world']);
    // Every viewport containing the point shares a tag with it.
    for (const box of [
      { minLng: 2, minLat: 48, maxLng: 3, maxLat: 49 },
      { minLng: -10, minLat: 40, maxLng: 15, maxLat: 55 },
      { minLng: -180, minLat: -90, maxLng: 180, maxLat: 90 },
    ])
      assert.ok(
        boxTags([box]).some((t) => tags.includes(t)),
        JSON.stringify(box),
      );
  });
});

describe('spots: invalidation', () => {
  test('a value stored just after the invalidation (a read that began before it) is dropped a second later', async () => {
    const cache = createCache({ redis: null, logger: pino({ level: 'silent' }) });
    const key = cacheKey('spots', 'spot', 'x');
    await cache.set(key, 'old', { ttlSeconds: 60, tags: [spotTag('x')] });
    await invalidateSpot(cache, 'x', [{ lat: 1, lng: 1 }]);
    assert.equal(await cache.get(key), undefined);
    // The racing read stores what it loaded before the change.
    await cache.set(key, 'old', { ttlSeconds: 60, tags: [spotTag('x')] });
    assert.equal(await cache.get(key), 'old');
    await new Promise((resolve) => setTimeout(resolve, REINVALIDATE_MS + 200));
    assert.equal(await cache.get(key), undefined);
  });
});

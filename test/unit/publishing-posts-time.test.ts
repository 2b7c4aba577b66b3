// The posts' time rules (src/apps/publishing/posts/posts.time.ts) and the retry backoff: pure.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HttpError } from '../../src/platform/http/index.ts';
import {
  dayRange,
  localDay,
  localIso,
  parseScheduledAt,
} from '../../src/apps/publishing/posts/posts.time.ts';
import { backoffMs } from '../../src/apps/publishing/posts/publish.ts';

const NOW = new Date('2026-12-06T12:00:00Z');
const YEAR = 365 * 86_400_000;
const parse = (raw: string, zone = 'Europe/Berlin') => parseScheduledAt(raw, zone, NOW, YEAR);
const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof HttpError, String(error));
    return error.code;
  }
  return 'none';
};

describe('publishing posts: scheduledAt', () => {
  test('an offset is required: a bare local time, a date, garbage are refused', () => {
    for (const raw of [
      '2027-03-01T10:00:00',
      '2027-03-01',
      '2027-03-01 10:00',
      'tomorrow',
      '',
      '2027-02-30T10:00:00Z',
    ])
      assert.equal(
        code(() => parse(raw)),
        'POST_SCHEDULED_AT_NO_OFFSET',
        raw,
      );
  });

  test('stored as the instant named, `Z` or the zone’s own offset; fractions kept', () => {
    assert.equal(parse('2027-03-01T10:00:00+01:00').toISOString(), '2027-03-01T09:00:00.000Z');
    assert.equal(parse('2027-03-01T09:00:00Z').toISOString(), '2027-03-01T09:00:00.000Z');
    assert.equal(parse('2027-07-01T10:00:00.250+02:00').toISOString(), '2027-07-01T08:00:00.250Z');
    // `Z` names an instant: accepted whatever the author's zone.
    assert.equal(
      parse('2027-07-01T10:00:00Z', 'America/New_York').toISOString(),
      '2027-07-01T10:00:00.000Z',
    );
  });

  test('a local time skipped by DST is refused in its zone (Berlin, New York, Lord Howe’s half hour)', () => {
    assert.equal(
      code(() => parse('2027-03-28T02:30:00+01:00')),
      'POST_SCHEDULED_AT_NONEXISTENT',
    );
    assert.equal(
      code(() => parse('2027-03-28T02:00:00+02:00')),
      'POST_SCHEDULED_AT_NONEXISTENT',
    );
    assert.equal(
      code(() => parse('2027-03-14T02:15:00-05:00', 'America/New_York')),
      'POST_SCHEDULED_AT_NONEXISTENT',
    );
    assert.equal(
      code(() => parse('2027-10-03T02:10:00+10:30', 'Australia/Lord_Howe')),
      'POST_SCHEDULED_AT_NONEXISTENT',
    );
    // Just outside the gap: fine.
    assert.equal(parse('2027-03-28T01:59:00+01:00').toISOString(), '2027-03-28T00:59:00.000Z');
    assert.equal(parse('2027-03-28T03:00:00+02:00').toISOString(), '2027-03-28T01:00:00.000Z');
  });

  test('the repeated hour at the end of DST: both offsets valid, another refused', () => {
    assert.equal(parse('2027-10-31T02:30:00+02:00').toISOString(), '2027-10-31T00:30:00.000Z');
    assert.equal(parse('2027-10-31T02:30:00+01:00').toISOString(), '2027-10-31T01:30:00.000Z');
    assert.equal(
      code(() => parse('2027-10-31T02:30:00+03:00')),
      'POST_SCHEDULED_AT_OFFSET_MISMATCH',
    );
    assert.equal(
      code(() => parse('2027-07-01T10:00:00+01:00')),
      'POST_SCHEDULED_AT_OFFSET_MISMATCH',
    );
  });

  test('past, now and beyond the horizon are refused; the horizon itself is accepted', () => {
    assert.equal(
      code(() => parse('2026-12-06T12:00:00Z')),
      'POST_SCHEDULED_AT_PAST',
    );
    assert.equal(
      code(() => parse('2026-12-06T11:59:59Z')),
      'POST_SCHEDULED_AT_PAST',
    );
    assert.equal(parse('2026-12-06T12:00:01Z').toISOString(), '2026-12-06T12:00:01.000Z');
    assert.equal(parse('2027-12-06T12:00:00Z').toISOString(), '2027-12-06T12:00:00.000Z');
    assert.equal(
      code(() => parse('2027-12-06T12:00:01Z')),
      'POST_SCHEDULED_AT_TOO_FAR',
    );
    assert.equal(
      code(() => parse('2036-12-06T12:00:00Z')),
      'POST_SCHEDULED_AT_TOO_FAR',
    );
  });
});

describe('publishing posts: days in a zone', () => {
  test('a DST day is 23 or 25 hours long; local days and offsets follow the zone', () => {
    const spring = dayRange('2027-03-28', '2027-03-28', 'Europe/Berlin');
    assert.equal(spring.start.toISOString(), '2027-03-27T23:00:00.000Z');
    assert.equal(spring.end.getTime() - spring.start.getTime(), 23 * 3_600_000);
    const autumn = dayRange('2027-10-31', '2027-10-31', 'Europe/Berlin');
    assert.equal(autumn.end.getTime() - autumn.start.getTime(), 25 * 3_600_000);
    assert.equal(localDay(new Date('2027-03-27T23:30:00Z'), 'Europe/Berlin'), '2027-03-28');
    assert.equal(localDay(new Date('2027-03-27T23:30:00Z'), 'UTC'), '2027-03-27');
    assert.equal(
      localIso(new Date('2027-07-01T07:30:00Z'), 'Europe/Berlin'),
      '2027-07-01T09:30:00+02:00',
    );
  });

  test('a reversed, too long or malformed range is refused', () => {
    assert.equal(
      code(() => dayRange('2027-03-02', '2027-03-01', 'UTC')),
      'POST_CALENDAR_RANGE_INVALID',
    );
    assert.equal(
      code(() => dayRange('2027-01-01', '2027-03-05', 'UTC')),
      'POST_CALENDAR_RANGE_INVALID',
    );
    assert.equal(
      code(() => dayRange('2027-13-01', '2027-13-02', 'UTC')),
      'POST_CALENDAR_RANGE_INVALID',
    );
    assert.doesNotThrow(() => dayRange('2027-01-01', '2027-03-03', 'UTC')); // 62 days
  });
});

describe('publishing posts: retry backoff', () => {
  test('exponential from the first delay, capped, with ±50 % jitter', () => {
    for (let i = 0; i < 200; i++) {
      const first = backoffMs(1, 10_000, 1_800_000);
      assert.ok(first >= 5_000 && first <= 15_000, String(first));
      const third = backoffMs(3, 10_000, 1_800_000);
      assert.ok(third >= 20_000 && third <= 60_000, String(third));
      const capped = backoffMs(30, 10_000, 1_800_000);
      assert.ok(capped >= 900_000 && capped <= 2_700_000, String(capped));
    }
    const spread = new Set(Array.from({ length: 50 }, () => backoffMs(2, 10_000, 1_800_000)));
    assert.ok(spread.size > 10, 'jittered');
  });
});

import { DateTime, IANAZone } from 'luxon';
import { HttpError } from '../../../platform/http/index.ts';
import { PostCodes } from './posts.errors.ts';

/** RFC 3339 date-time: the wall time (kept for the DST checks) and the offset, required. */
const RFC3339 =
  // eslint-disable-next-line security/detect-unsafe-regex -- every quantifier is bounded: linear
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?$/;

/** Whether `zone` is an IANA zone name luxon (ICU) knows. */
export function isValidZone(zone: string): boolean {
  return zone.length <= 64 && IANAZone.isValidZone(zone);
}

export function assertZone(zone: string): void {
  if (!isValidZone(zone))
    throw new HttpError(PostCodes.POST_TIME_ZONE_INVALID, {
      detail: `${JSON.stringify(zone)} is not an IANA time zone (such as Europe/Berlin).`,
    });
}

/**
 * The instant `raw` names, checked against the author's zone: an offset is required (a bare local
 * time is ambiguous); with a numeric offset the local time must exist in `zone` (not in a DST gap)
 * and the offset must be the zone's at that instant (so what the author saw is what happens). `Z`
 * names an instant as is.
 */
export function parseScheduledAt(raw: string, zone: string, now: Date, maxAheadMs: number): Date {
  const m = RFC3339.exec(raw);
  if (!m || m[8] === undefined)
    throw new HttpError(PostCodes.POST_SCHEDULED_AT_NO_OFFSET, {
      detail: `scheduledAt ${JSON.stringify(raw.slice(0, 64))} needs an offset: 2027-03-28T09:00:00+02:00 or …Z.`,
    });
  const at = DateTime.fromISO(raw, { setZone: true });
  if (!at.isValid)
    throw new HttpError(PostCodes.POST_SCHEDULED_AT_NO_OFFSET, {
      detail: `scheduledAt ${JSON.stringify(raw.slice(0, 64))} is not a valid RFC 3339 date-time.`,
    });
  const offset = m[8];
  if (offset !== 'Z' && offset !== 'z') {
    const wall = {
      year: Number(m[1]),
      month: Number(m[2]),
      day: Number(m[3]),
      hour: Number(m[4]),
      minute: Number(m[5]),
      second: Number(m[6]),
    };
    // luxon moves a local time in a DST gap forward: if the wall time changed, it never existed.
    const local = DateTime.fromObject(wall, { zone });
    if (local.hour !== wall.hour || local.minute !== wall.minute || local.day !== wall.day)
      throw new HttpError(PostCodes.POST_SCHEDULED_AT_NONEXISTENT, {
        detail: `${raw.slice(0, 10)} ${m[4]}:${m[5]} does not exist in ${zone} (clocks skip it for daylight saving).`,
      });
    const zoneOffset = at.setZone(zone).offset;
    if (zoneOffset !== at.offset)
      throw new HttpError(PostCodes.POST_SCHEDULED_AT_OFFSET_MISMATCH, {
        detail: `${zone} is at UTC${at.setZone(zone).toFormat('ZZ')} then, not ${offset}.`,
      });
  }
  const instant = at.toJSDate();
  if (instant.getTime() <= now.getTime())
    throw new HttpError(PostCodes.POST_SCHEDULED_AT_PAST, {
      detail: `scheduledAt ${at.toUTC().toISO()} is not in the future.`,
    });
  if (instant.getTime() - now.getTime() > maxAheadMs)
    throw new HttpError(PostCodes.POST_SCHEDULED_AT_TOO_FAR, {
      detail: `scheduledAt may be at most ${Math.round(maxAheadMs / 86_400_000)} days ahead.`,
    });
  return instant;
}

/** `[start, end)` in UTC of the local days `from` to `to` (YYYY-MM-DD) in `zone`: DST-correct. */
export function dayRange(from: string, to: string, zone: string): { start: Date; end: Date } {
  const start = DateTime.fromISO(from, { zone }).startOf('day');
  const last = DateTime.fromISO(to, { zone }).startOf('day');
  if (!start.isValid || !last.isValid || last < start || last.diff(start, 'days').days > 61)
    throw new HttpError(PostCodes.POST_CALENDAR_RANGE_INVALID, {
      detail: 'from and to are dates (YYYY-MM-DD), from ≤ to, at most 62 days.',
    });
  // The next local midnight, whatever the day's length (23 or 25 hours across a DST change).
  const end = last.plus({ days: 1 }).startOf('day');
  return { start: start.toJSDate(), end: end.toJSDate() };
}

/** The local day (YYYY-MM-DD) of `at` in `zone`. */
export function localDay(at: Date, zone: string): string {
  return DateTime.fromJSDate(at, { zone }).toISODate() ?? '';
}

/** `at` as RFC 3339 with `zone`'s offset then (how the author reads it). */
export function localIso(at: Date, zone: string): string {
  return (
    DateTime.fromJSDate(at, { zone }).toISO({ suppressMilliseconds: true }) ?? at.toISOString()
  );
}

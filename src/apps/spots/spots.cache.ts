import type { Cache } from '../../platform/cache/index.ts';
import type { Box } from './spots.repository.ts';

/**
 * Cache tags of the spots app. A spot's public detail is tagged with its id; a cached viewport
 * (bbox listing) with the grid cells it covers, so a change invalidates exactly the viewports
 * that could show the spot (its old and new cell): 1° cells for small boxes, 10° cells for large
 * ones, and one world tag past that (a value carries at most 32 tags).
 */
export const spotTag = (id: string) => `spots:spot:${id}`;
const WORLD = 'spots:world';
const MAX_TAGS = 32;

function cell(size: number, lng: number, lat: number): string {
  return `spots:t${String(size)}:${String(Math.floor(lng / size))}:${String(Math.floor(lat / size))}`;
}

function cellsOf(size: number, boxes: readonly Box[]): string[] | null {
  const tags = new Set<string>();
  for (const b of boxes) {
    const x0 = Math.floor(b.minLng / size);
    const x1 = Math.floor(b.maxLng / size);
    const y0 = Math.floor(b.minLat / size);
    const y1 = Math.floor(b.maxLat / size);
    if ((x1 - x0 + 1) * (y1 - y0 + 1) > MAX_TAGS) return null;
    for (let x = x0; x <= x1; x++)
      for (let y = y0; y <= y1; y++) tags.add(`spots:t${String(size)}:${String(x)}:${String(y)}`);
  }
  return tags.size > MAX_TAGS ? null : [...tags];
}

/** The tags of a cached viewport listing. */
export function boxTags(boxes: readonly Box[]): string[] {
  return cellsOf(1, boxes) ?? cellsOf(10, boxes) ?? [WORLD];
}

/** The tags a change at this point invalidates (every viewport size that can include it). */
export function pointTags(lat: number, lng: number): string[] {
  return [cell(1, lng, lat), cell(10, lng, lat), WORLD];
}

/**
 * A second invalidation this long after the first. A read that loaded the spot before the change
 * committed can store its old value just after the first invalidation (cache-aside's race); the
 * second one drops it, so such a value lives a second, not `SPOTS_CACHE_TTL_S`.
 */
export const REINVALIDATE_MS = 1_000;

/** After a committed change to a spot: its detail and the viewports at its old and new places. */
export async function invalidateSpot(
  cache: Cache,
  id: string,
  places: readonly { lat: number; lng: number }[],
): Promise<void> {
  const tags = new Set([spotTag(id)]);
  for (const p of places) for (const t of pointTags(p.lat, p.lng)) tags.add(t);
  await cache.invalidateTags([...tags]);
  setTimeout(() => {
    cache.invalidateTags([...tags]).catch(() => undefined);
  }, REINVALIDATE_MS).unref();
}

// Spots' pictures through the files area: an upload of purpose spots.picture attached to the
// owner's spot appears (variants, dimensions, blurhash) once processed, with spots.picture.ready;
// GPS never reaches what is served; another user's file, another purpose's, an unknown id are
// refused; a picture failing processing never appears and its uploader gets a mail.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { settled } from '../fixtures/files/harness.ts';
import { hasGpsPointer, jpeg, jpegWithGps, png } from '../fixtures/files/samples.ts';
import { eventually } from '../helpers/jobs-harness.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  startSpotsHarness,
  type PictureJson,
  type SpotJson,
  type SpotsHarness,
  type SpotsUser,
} from '../helpers/spots.ts';

let h: SpotsHarness;
let alice: SpotsUser;
let bob: SpotsUser;
let spot: SpotJson;

before(async () => {
  h = await startSpotsHarness();
  alice = await h.user();
  bob = await h.user();
  spot = await h.spot(alice, { name: 'Harbour lights', location: { lat: 59.91, lng: 10.75 } });
});
after(() => h?.close());

const attach = (who: SpotsUser, spotId: string, payload: Record<string, unknown>) =>
  h.app.inject({
    method: 'POST',
    url: `/api/v1/spots/${spotId}/pictures`,
    headers: who.headers,
    payload,
  });
const detail = async (id: string, headers: Record<string, string> = {}) => {
  const res = await h.app.inject({ method: 'GET', url: `/api/v1/spots/${id}`, headers });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<SpotJson>();
};

describe('spots: pictures', () => {
  let picture: PictureJson;
  let fileId: string;

  test('an uploaded picture appears once processed, with variants, dimensions and blurhash', async () => {
    fileId = await h.upload(alice, await jpegWithGps());
    const res = await attach(alice, spot.id, { fileId, caption: 'From the pier' });
    assert.equal(res.statusCode, 201, res.body);
    picture = res.json<PictureJson>();
    assert.equal(picture.fileId, fileId);
    assert.equal(picture.caption, 'From the pier');
    const shown = await eventually(
      'the picture in the public detail',
      async () => {
        const body = await detail(spot.id);
        return body.pictures?.find((p) => p.id === picture.id);
      },
      60_000,
    );
    assert.equal(shown.status, 'ready');
    // Auto-oriented (EXIF orientation 6): 600 × 800.
    assert.equal(shown.width, 600);
    assert.equal(shown.height, 800);
    assert.ok(shown.blurhash && shown.blurhash.length > 5);
    assert.equal(shown.path, `/api/v1/files/${fileId}/content`);
    assert.deepEqual(shown.variants.map((v) => v.id).sort(), [
      'w1024.jpeg',
      'w1024.webp',
      'w256.jpeg',
      'w256.webp',
    ]);
    const w256 = shown.variants.find((v) => v.id === 'w256.jpeg');
    assert.equal(w256?.width, 256);
    assert.equal(w256?.path, `/api/v1/files/${fileId}/content?variant=w256.jpeg`);
    // Public: anyone fetches the bytes, and no GPS is left in them.
    for (const path of [shown.path, w256?.path ?? '']) {
      const bytes = await h.app.inject({ method: 'GET', url: path });
      assert.equal(bytes.statusCode, 200);
      assert.equal(hasGpsPointer(bytes.rawPayload), false, path);
    }
    // The list's cover is the same picture.
    const list = await h.list('near=59.91,10.75&radiusM=100');
    assert.equal(list.items.find((s) => s.id === spot.id)?.cover?.id, picture.id);
    const { rows } = await h.tdb.database.pool.query<{ data: unknown }>(
      `select data from gw_event where type = 'spots.picture.ready' and subject_id = $1`,
      [spot.id],
    );
    assert.deepEqual(
      rows.map((r) => r.data),
      [{ spotId: spot.id, pictureId: picture.id, fileId }],
    );
  });

  test('an already processed upload is ready at once; it becomes the cover when chosen', async () => {
    const id = await h.upload(alice, await png(320, 200));
    const file = await settled(h.app, id, alice.headers);
    assert.equal(file.status, 'ready');
    const res = await attach(alice, spot.id, { fileId: id });
    assert.equal(res.statusCode, 201, res.body);
    const second = res.json<PictureJson>();
    assert.equal(second.status, 'ready');
    assert.equal(second.width, 320);
    const patch = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/spots/${spot.id}`,
      headers: alice.headers,
      payload: { coverPictureId: second.id },
    });
    assert.equal(patch.statusCode, 200, patch.body);
    const body = await detail(spot.id);
    assert.equal(body.coverPictureId, second.id);
    assert.equal(body.cover?.id, second.id);
    assert.equal(
      (await h.list('near=59.91,10.75&radiusM=100')).items.find((s) => s.id === spot.id)?.cover?.id,
      second.id,
    );
    // Removing it clears the cover.
    const del = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/spots/${spot.id}/pictures/${second.id}`,
      headers: alice.headers,
    });
    assert.equal(del.statusCode, 204);
    const after = await detail(spot.id);
    assert.equal(after.coverPictureId, null);
    assert.ok(!after.pictures?.some((p) => p.id === second.id));
    assert.equal(after.cover?.id, picture.id);
  });

  test('another user’s file, another purpose, an unknown id, a reused file: refused', async () => {
    const bobs = await h.upload(bob, await png(64, 64));
    assertProblem(await attach(alice, spot.id, { fileId: bobs }), 422, 'PICTURE_FILE_INVALID');
    const other = await h.upload(alice, await png(64, 64), 'files.image');
    assertProblem(await attach(alice, spot.id, { fileId: other }), 422, 'PICTURE_FILE_INVALID');
    assertProblem(
      await attach(alice, spot.id, { fileId: '0190a5c4-7b7e-7000-8000-0000000000aa' }),
      422,
      'PICTURE_FILE_INVALID',
    );
    assertProblem(await attach(alice, spot.id, { fileId }), 422, 'PICTURE_FILE_INVALID');
    assertProblem(await attach(alice, spot.id, { fileId: 'x' }), 422, 'VALIDATION_FAILED');
    // Bob cannot add even his own file to Alice's spot.
    assertProblem(await attach(bob, spot.id, { fileId: bobs }), 403, 'SPOT_NOT_OWNER');
    const { rows } = await h.tdb.database.pool.query<{ n: number }>(
      `select count(*)::int as n from spots_picture where file_id = any($1::uuid[])`,
      [[bobs, other]],
    );
    assert.equal(rows[0]?.n, 0);
    // A cover that is not one of this spot's ready pictures.
    const patch = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/spots/${spot.id}`,
      headers: alice.headers,
      payload: { coverPictureId: bobs },
    });
    assertProblem(patch, 422, 'COVER_NOT_READY');
  });

  test('a picture failing processing never appears, and its uploader gets a mail', async () => {
    const whole = await jpeg(640, 480);
    const broken = whole.subarray(0, Math.floor(whole.length / 3));
    const id = await h.upload(alice, broken);
    const res = await attach(alice, spot.id, { fileId: id });
    // Processing may already have failed (422) or not yet (201, then failed).
    if (res.statusCode === 201) {
      const pic = res.json<PictureJson>();
      await eventually(
        'the picture marked failed',
        async () => {
          const own = await h.app.inject({
            method: 'GET',
            url: `/api/v1/spots/${spot.id}/pictures`,
            headers: alice.headers,
          });
          return (
            own.json<{ items: PictureJson[] }>().items.find((p) => p.id === pic.id)?.status ===
            'failed'
          );
        },
        60_000,
      );
      await eventually('the failure mail', async () => {
        const { rows } = await h.tdb.database.pool.query<{ n: number }>(
          `select count(*)::int as n from gw_mail_delivery where template = 'spots.picture-failed' and recipient = $1`,
          [alice.user.email],
        );
        return rows[0]?.n === 1;
      });
      const publicList = await h.app.inject({
        method: 'GET',
        url: `/api/v1/spots/${spot.id}/pictures`,
      });
      assert.ok(!publicList.json<{ items: PictureJson[] }>().items.some((p) => p.id === pic.id));
      assert.ok(!(await detail(spot.id)).pictures?.some((p) => p.id === pic.id));
    } else {
      assertProblem(res, 422, 'PICTURE_FILE_INVALID');
    }
  });

  test('pictures of a hidden spot are 404 to others', async () => {
    const mod = await h.user('moderator');
    const hide = await h.app.inject({
      method: 'POST',
      url: `/api/v1/spots/${spot.id}/hide`,
      headers: mod.headers,
      payload: { reason: 'review' },
    });
    assert.equal(hide.statusCode, 200);
    const res = await h.app.inject({ method: 'GET', url: `/api/v1/spots/${spot.id}/pictures` });
    assertProblem(res, 404, 'SPOT_NOT_FOUND');
    const own = await h.app.inject({
      method: 'GET',
      url: `/api/v1/spots/${spot.id}/pictures`,
      headers: alice.headers,
    });
    assert.equal(own.statusCode, 200);
  });
});

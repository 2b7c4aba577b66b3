import { withTransaction } from '../../platform/db/index.ts';
import { defineSubscriber } from '../../platform/events/index.ts';
import { accountContact } from '../../platform/identity/index.ts';
import { invalidateSpot } from './spots.cache.ts';
import { pictureReady } from './spots.events.ts';
import { spotPicture } from './spots.files.ts';
import { pictureFailedTemplate } from './spots.mail.ts';
import { findSpot, lockFile, setPictureStatusByFile } from './spots.repository.ts';

interface FileEventData {
  fileId: string;
  purpose: string;
  reason?: string;
}

/** `file.ready` of a spot's picture: the picture appears, `spots.picture.ready` is published. */
export const pictureReadySubscriber = defineSubscriber({
  name: 'spots.picture-ready',
  events: ['file.ready'],
  async handle(event, ctx) {
    const data = event.data as FileEventData;
    if (data.purpose !== spotPicture.name) return;
    const { database, events, cache } = ctx.platform;
    const changed = await withTransaction(database.db, async (trx) => {
      await lockFile(trx, data.fileId);
      const pictures = await setPictureStatusByFile(trx, data.fileId, 'ready');
      for (const p of pictures)
        await events.publish(trx, pictureReady, {
          data: { spotId: p.spotId, pictureId: p.id, fileId: p.fileId },
          subject: { type: 'spot', id: p.spotId },
          ownerId: p.uploaderId,
          actorId: null,
        });
      return pictures;
    });
    // The detail and the viewports showing the spot (their covers) change.
    for (const p of changed) {
      const spot = await findSpot(database.db, p.spotId);
      await invalidateSpot(cache, p.spotId, spot ? [spot] : []);
    }
  },
});

/** `file.failed` of a spot's picture: it never appears, and its uploader is told by mail. */
export const pictureFailedSubscriber = defineSubscriber({
  name: 'spots.picture-failed',
  events: ['file.failed'],
  async handle(event, ctx) {
    const data = event.data as FileEventData;
    if (data.purpose !== spotPicture.name) return;
    const { database, mail } = ctx.platform;
    await withTransaction(database.db, async (trx) => {
      await lockFile(trx, data.fileId);
      for (const p of await setPictureStatusByFile(trx, data.fileId, 'failed')) {
        const contact = await accountContact(trx, p.uploaderId);
        const spot = await findSpot(trx, p.spotId);
        if (!contact || !spot) continue;
        // In the transaction: the mail exists exactly when the picture was marked failed, so a
        // handler retried after a crash neither loses nor repeats it.
        await mail.send(
          {
            template: pictureFailedTemplate,
            to: contact.email,
            vars: {
              username: contact.username,
              spotName: spot.name,
              reason: data.reason ?? 'PROCESSING_ERROR',
            },
            userId: p.uploaderId,
          },
          { trx },
        );
      }
    });
  },
});

import { Type } from 'typebox';
import { defineMailTemplate } from '../../platform/mail/index.ts';

/** To the uploader of a spot's picture that could not be processed. */
export const pictureFailedTemplate = defineMailTemplate({
  name: 'spots.picture-failed',
  description: 'A picture added to a spot could not be processed; it will not be shown.',
  vars: Type.Object({ username: Type.String(), spotName: Type.String(), reason: Type.String() }),
  sample: { username: 'ada', spotName: 'Pont des Arts', reason: 'CORRUPT' },
  locales: {
    en: {
      subject: 'Your picture of {{spotName}} could not be processed',
      html: '<p>Hello {{username}},</p>\n<p>The picture you added to <b>{{spotName}}</b> could not be processed ({{reason}}) and will not be shown. Please upload it again, as a JPEG, PNG or WebP image.</p>',
      text: 'Hello {{username}},\n\nThe picture you added to {{spotName}} could not be processed ({{reason}}) and will not be shown. Please upload it again, as a JPEG, PNG or WebP image.',
    },
  },
});

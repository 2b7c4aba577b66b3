import { defineErrorCodes } from '../../platform/http/index.ts';

export const AuthorsCodes = defineErrorCodes('authors', {
  AUTHOR_AVATAR_NOT_FOUND: {
    kind: 'Invalid',
    title: 'Avatar not found',
    description:
      '`avatarFileId` is not an `authors.avatar` file uploaded by the caller (or it failed processing).',
  },
  AUTHOR_BIRTH_DATE_INVALID: {
    kind: 'Invalid',
    title: 'Birth date invalid',
    description: '`birthDate` is not a real calendar date, or it is in the future.',
  },
});

import { Type } from 'typebox';
import { defineEvent } from '../../platform/events/index.ts';
import { AuthorResponse } from './authors.schemas.ts';

const example = {
  id: '0190a5d2-7c3e-7000-8000-000000000001',
  name: 'Ursula K. Le Guin',
  bio: null,
  birthDate: '1929-10-21',
  links: [],
  avatarFileId: null,
  createdAt: '2026-12-07T12:00:00.000Z',
  updatedAt: '2026-12-07T12:00:00.000Z',
};

export const authorCreated = defineEvent({
  type: 'authors.author.created',
  description: 'An author was created (the author as `GET /authors/:id` shows it).',
  payload: Type.Object({ author: AuthorResponse }),
  example: { author: example },
  visibility: { permission: 'authors:read', ownerVisible: false },
});

export const authorUpdated = defineEvent({
  type: 'authors.author.updated',
  description: 'An author was changed: the author after the change, and the fields changed.',
  payload: Type.Object({ author: AuthorResponse, changed: Type.Array(Type.String()) }),
  example: { author: example, changed: ['bio'] },
  visibility: { permission: 'authors:read', ownerVisible: false },
});

export const authorDeleted = defineEvent({
  type: 'authors.author.deleted',
  description: 'An author was deleted.',
  payload: Type.Object({ authorId: Type.String({ format: 'uuid' }) }),
  example: { authorId: example.id },
  visibility: { permission: 'authors:read', ownerVisible: false },
});

export const authorEvents = [authorCreated, authorUpdated, authorDeleted];

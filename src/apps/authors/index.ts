import { defineFilePurpose } from '../../platform/files/index.ts';
import { API_PREFIX } from '../../platform/http/index.ts';
import { defineModule } from '../../platform/modules/index.ts';
import { defineChannel, realtime, realtimeEvents } from '../../platform/realtime/index.ts';
import { authorsCommands } from './authors.commands.ts';
import { authorEvents } from './authors.events.ts';
import {
  AUTHORS_DELETE,
  AUTHORS_READ,
  AUTHORS_WRITE,
  registerAuthorsRoutes,
} from './authors.routes.ts';
import { AuthorsService, AVATAR_PURPOSE } from './authors.service.ts';
import {
  AuthorPageSchema,
  AuthorSchema,
  CreateAuthorSchema,
} from './gen/groundwork/authors/v1/authors_pb.ts';
import * as createAuthors from './migrations/202612071200_authors_create.ts';

/**
 * Authors (seed 003): one service behind HTTP (`/api/v1/authors`, JSON or Protobuf) and
 * WebSocket commands (`authors.*`); every change audited and emitted to the `authors` channel.
 */
export const authorsApp = defineModule({
  name: 'authors',
  description: 'Authors: name, bio, birth date, links and avatar, over HTTP and WebSocket.',
  dependsOn: ['identity', 'realtime', 'files'],
  prefix: `${API_PREFIX}/authors`,
  migrations: { '202612071200_authors_create': createAuthors },
  permissions: [
    {
      name: AUTHORS_READ,
      description: 'List and read authors; subscribe to the `authors` channel.',
      roles: ['user', 'moderator', 'admin'],
    },
    {
      name: AUTHORS_WRITE,
      description: 'Create and change authors.',
      roles: ['moderator', 'admin'],
    },
    { name: AUTHORS_DELETE, description: 'Delete authors.', roles: ['admin'] },
  ],
  events: authorEvents,
  subscribers: [
    realtimeEvents({ name: 'authors.realtime', events: authorEvents, channels: () => ['authors'] }),
  ],
  channels: [
    defineChannel({
      name: 'authors',
      description: 'Every change to authors (`authors.author.created|updated|deleted`).',
      permission: AUTHORS_READ,
    }),
  ],
  filePurposes: [
    defineFilePurpose({
      name: AVATAR_PURPOSE,
      description: 'An author’s picture: read by anyone, two widths.',
      kind: 'image',
      maxBytes: 10 * 1024 * 1024,
      contentTypes: ['image/jpeg', 'image/png', 'image/webp', 'image/avif'],
      read: 'public',
      image: {
        maxPixels: 40_000_000,
        maxFrames: 1,
        variants: [
          { name: 'w128', width: 128, formats: ['webp', 'jpeg'] },
          { name: 'w512', width: 512, formats: ['webp', 'jpeg'] },
        ],
      },
    }),
  ],
  async routes(app, { platform }) {
    const authors = new AuthorsService({
      database: platform.database,
      events: platform.events,
      cache: platform.cache,
      paging: {
        secret: platform.config.secrets.appSecret,
        estimateAbove: platform.config.database.estimateAbove,
      },
    });
    const hub = realtime(platform);
    for (const command of authorsCommands(authors)) hub.addCommand(command);
    await registerAuthorsRoutes(app, authors, {
      author: AuthorSchema,
      page: AuthorPageSchema,
      create: CreateAuthorSchema,
    });
  },
});

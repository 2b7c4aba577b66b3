/**
 * Preload of the realtime benchmark's server processes (`node --import bench/realtime-preload.ts
 * src/main.ts all`): the authors app (until src/apps/index.ts lists it) and a bench module with
 * two public channels clients may publish on: `bench.broadcast` and `bench.user:*`.
 */
import { allApps } from '../src/apps/index.ts';
import { authorsApp } from '../src/apps/authors/index.ts';
import { defineModule, type AnyModule } from '../src/platform/modules/index.ts';
import { defineChannel } from '../src/platform/realtime/index.ts';

const benchModule = defineModule({
  name: 'rt-bench',
  description: 'Realtime benchmark channels.',
  dependsOn: ['realtime'],
  channels: [
    defineChannel({
      name: 'bench.broadcast',
      description: 'One channel, many subscribers.',
      public: true,
      canPublish: () => true,
    }),
    defineChannel({
      name: 'bench.user:*',
      description: 'Personal channels.',
      public: true,
      canPublish: () => true,
    }),
  ],
});

const list = allApps as AnyModule[];
for (const m of [authorsApp, benchModule]) if (!list.some((x) => x.name === m.name)) list.push(m);

// A module shared by the events crash test and the child process it kills (test/helpers/events-child.ts).
import { Type } from 'typebox';
import { defineEvent, defineSubscriber } from '../../src/platform/events/index.ts';
import { defineModule } from '../../src/platform/modules/index.ts';

export const crashEvent = defineEvent({
  type: 'evcrash.thing.happened',
  description: 'Something happened (crash test).',
  payload: Type.Object({ n: Type.Integer() }, { additionalProperties: false }),
  example: { n: 1 },
  visibility: { permission: 'evcrash:read' },
});

/** What this process's subscriber saw; `hang`: its handler never returns (the child's). */
export const crashState = {
  hang: false,
  handled: [] as { id: string; attempt: number }[],
  onHandle: undefined as ((id: string) => void) | undefined,
};

export const crashModule = defineModule({
  name: 'evcrash',
  description: 'Events crash test.',
  events: [crashEvent],
  subscribers: [
    defineSubscriber({
      name: 'evcrash.recorder',
      events: ['evcrash.thing.happened'],
      handle: async (event, ctx) => {
        crashState.handled.push({ id: event.id, attempt: ctx.attempt });
        crashState.onHandle?.(event.id);
        if (crashState.hang) await new Promise<never>(() => undefined);
      },
    }),
  ],
});

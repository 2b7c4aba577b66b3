export type {
  DomainEvent,
  EventPayload,
  EventPlatform,
  EventSubscriber,
  EventType,
  Events,
  NewEvent,
  PayloadOf,
  SubscriberContext,
} from './types.ts';
export {
  defineEvent,
  defineSubscriber,
  eventCatalog,
  eventPayloadErrors,
  EVENT_TYPE_PATTERN,
  InvalidEventPayloadError,
  subscribes,
} from './define.ts';
export {
  EventBus,
  eventRegistry,
  EVENTS_CHANNEL,
  mirrorEventWrite,
  subscribersOf,
  writeEvent,
} from './outbox.ts';
export type { EventDeclarations, EventRegistry } from './outbox.ts';
export { DISPATCHER_DEFAULTS, EventDispatcher, retryDelayMs } from './dispatcher.ts';
export type { DispatcherOptions, DispatcherSettings } from './dispatcher.ts';
export {
  dispatcherSettings,
  eventsModule,
  eventsSettings,
  EventsSettingsSchema,
  purgeEventsJob,
} from './module.ts';
export type { EventsSettings } from './module.ts';
export type { EventDeliveryState, EventsTables } from './tables.ts';

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface RealtimeMetrics {
  connections: Gauge<'protocol'>;
  subscriptions: Gauge;
  messagesIn: Counter<'type'>;
  messagesOut: Counter<'type'>;
  slowConsumers: Counter;
  refused: Counter<'reason'>;
  fanoutLag: Histogram;
}

const made = new WeakMap<Registry, RealtimeMetrics>();

/** The realtime metrics of a registry (one set per registry: one hub per platform). */
export function realtimeMetrics(registry: Registry): RealtimeMetrics {
  const existing = made.get(registry);
  if (existing) return existing;
  const metrics: RealtimeMetrics = {
    connections: new Gauge({
      name: 'realtime_connections',
      help: 'Open WebSocket connections, by subprotocol.',
      labelNames: ['protocol'],
      registers: [registry],
    }),
    subscriptions: new Gauge({
      name: 'realtime_subscriptions',
      help: 'Channel subscriptions held by the open connections.',
      registers: [registry],
    }),
    messagesIn: new Counter({
      name: 'realtime_messages_in_total',
      help: 'Frames received, by type (`invalid` for frames that could not be decoded).',
      labelNames: ['type'],
      registers: [registry],
    }),
    messagesOut: new Counter({
      name: 'realtime_messages_out_total',
      help: 'Frames sent, by type.',
      labelNames: ['type'],
      registers: [registry],
    }),
    slowConsumers: new Counter({
      name: 'realtime_slow_consumers_dropped_total',
      help: 'Connections closed (1013) because their unsent data passed REALTIME_MAX_BUFFERED_BYTES.',
      registers: [registry],
    }),
    refused: new Counter({
      name: 'realtime_connections_closed_total',
      help: 'Connections refused or closed by the server, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    fanoutLag: new Histogram({
      name: 'realtime_fanout_lag_seconds',
      help: 'From an event’s publish to its hand-over to this process’s sockets.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
  for (const t of [
    'auth',
    'subscribe',
    'unsubscribe',
    'publish',
    'command',
    'ping',
    'pong',
    'invalid',
  ])
    metrics.messagesIn.inc({ type: t }, 0);
  metrics.slowConsumers.inc(0);
  made.set(registry, metrics);
  return metrics;
}

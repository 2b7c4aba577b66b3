/** The servers under test, and the paths, bodies and response schemas they all share. */
import { Type, type Static } from 'typebox';

export const SERVER_KINDS = ['node:http', 'fastify', 'groundwork'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

export const HEALTH_PATH = '/health/live';
export const ITEMS_PATH = '/api/v1/bench/items';

export const HealthSchema = Type.Object({ status: Type.Literal('ok') });

export const ItemSchema = Type.Object({
  id: Type.Integer(),
  sku: Type.String(),
  name: Type.String(),
  priceCents: Type.Integer(),
  inStock: Type.Boolean(),
  updatedAt: Type.String(),
});
export const ItemsSchema = Type.Array(ItemSchema);

export const HEALTH: Static<typeof HealthSchema> = { status: 'ok' };

export const ITEMS: Static<typeof ItemsSchema> = Array.from({ length: 20 }, (_, i) => ({
  id: i + 1,
  sku: `SKU-${String(1000 + i)}`,
  name: `Item number ${String(i + 1)}`,
  priceCents: 199 + i * 250,
  inStock: i % 3 !== 0,
  updatedAt: new Date(Date.UTC(2025, 0, 1 + i, 12)).toISOString(),
}));

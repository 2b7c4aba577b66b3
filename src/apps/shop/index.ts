import { Type } from 'typebox';
import { defineSubscriber } from '../../platform/events/index.ts';
import { defineFilePurpose } from '../../platform/files/index.ts';
import { API_PREFIX } from '../../platform/http/index.ts';
import { defineModule, type AppModule } from '../../platform/modules/index.ts';
import { CatalogService, ITEM_IMAGE_PURPOSE } from './catalog.service.ts';
import * as catalogMigration from './migrations/202612071100_shop_catalog.ts';
import * as ordersMigration from './migrations/202612071101_shop_orders.ts';
import * as listingMigration from './migrations/202612080500_shop_item_listing.ts';
import { OrdersService } from './orders.service.ts';
import { ORDERS_MANAGE, SHOP_MANAGE, shopEvents } from './shop.events.ts';
import { shopMailTemplates } from './shop.mail.ts';
import {
  FakePaymentProvider,
  ManualPaymentProvider,
  type PaymentProvider,
} from './shop.payments.ts';
import { registerShopRoutes } from './shop.routes.ts';

export { FakePaymentProvider, ManualPaymentProvider, PaymentDeclined } from './shop.payments.ts';
export type { PaymentProvider } from './shop.payments.ts';

/** Item pictures: public (a catalog is public), processed into list and page widths. */
export const itemImagePurpose = defineFilePurpose({
  name: ITEM_IMAGE_PURPOSE,
  description: 'A picture of a shop item.',
  kind: 'image',
  maxBytes: 15 * 1024 * 1024,
  contentTypes: ['image/jpeg', 'image/png', 'image/webp'],
  read: 'public',
  image: {
    maxPixels: 40_000_000,
    maxFrames: 1,
    variants: [
      { name: 'w320', width: 320, formats: ['webp', 'jpeg'] },
      { name: 'w1024', width: 1024, formats: ['webp', 'jpeg'] },
    ],
  },
});

const config = Type.Object({
  SHOP_TAX_RATE_BP: Type.Integer({
    default: 2000,
    minimum: 0,
    maximum: 10_000,
    description:
      'Tax on subtotal plus shipping, in basis points (2000 = 20 %), rounded half away from zero once per order.',
  }),
  SHOP_SHIPPING_FLAT: Type.Integer({
    default: 500,
    minimum: 0,
    maximum: 1_000_000,
    description: 'Shipping fee per order, in minor units of the order’s currency.',
  }),
  SHOP_FREE_SHIPPING_OVER: Type.Integer({
    default: 5000,
    minimum: 0,
    maximum: 1_000_000_000_000,
    description: 'Subtotal (minor units) from which shipping is free; 0: never free.',
  }),
  SHOP_LOW_STOCK_THRESHOLD: Type.Integer({
    default: 5,
    minimum: 0,
    maximum: 1_000_000,
    description: 'An order leaving an item at or below this stock publishes `shop.item.low_stock`.',
  }),
  SHOP_ATTRIBUTES_MAX_BYTES: Type.Integer({
    default: 16_384,
    minimum: 256,
    maximum: 262_144,
    description: 'Largest attributes JSON of an item, in bytes.',
  }),
  SHOP_ATTRIBUTES_MAX_DEPTH: Type.Integer({
    default: 8,
    minimum: 1,
    maximum: 32,
    description: 'Deepest nesting of an item’s attributes JSON.',
  }),
  SHOP_CACHE_TTL_S: Type.Integer({
    default: 300,
    minimum: 1,
    maximum: 86_400,
    description:
      'Seconds the category tree and item details stay cached (changes invalidate them at once).',
  }),
  SHOP_PAYMENT_PROVIDER: Type.Union([Type.Literal('manual'), Type.Literal('fake')], {
    default: 'manual',
    description:
      '`manual`: the admin records the reference of a payment made outside; `fake`: a stand-in that accepts every payment (tests, demos).',
  }),
});

export interface ShopOptions {
  /** The payment provider (default: from `SHOP_PAYMENT_PROVIDER`). */
  payments?: PaymentProvider;
}

/** The shop app, with its payment provider chosen by the caller (tests pass a fake one). */
export function createShopApp(options: ShopOptions = {}): AppModule {
  // The subscriber needs the catalog, which exists once the routes are built.
  let catalogRef: CatalogService | undefined;
  const module = defineModule({
    name: 'shop',
    description:
      'Shop: a category tree, items with images, customers, carts, and orders that never oversell.',
    dependsOn: ['identity', 'events', 'files'],
    prefix: `${API_PREFIX}/shop`,
    tags: [{ name: 'shop', description: 'Catalog, customers, carts and orders.' }],
    config,
    migrations: {
      '202612071100_shop_catalog': catalogMigration,
      '202612071101_shop_orders': ordersMigration,
      '202612080500_shop_item_listing': listingMigration,
    },
    permissions: [
      { name: SHOP_MANAGE, description: 'Manage the catalog.', roles: ['admin'] },
      {
        name: ORDERS_MANAGE,
        description: 'Pay, ship, deliver and refund orders.',
        roles: ['admin'],
      },
    ],
    mailTemplates: shopMailTemplates,
    events: shopEvents,
    filePurposes: [itemImagePurpose],
    subscribers: [
      defineSubscriber({
        name: 'shop.item-images',
        events: ['file.ready', 'file.failed'],
        async handle(event, ctx) {
          const data = event.data as { fileId: string; purpose: string };
          if (data.purpose !== ITEM_IMAGE_PURPOSE) return;
          const catalog =
            catalogRef ??
            new CatalogService(ctx.platform, {
              attributesMaxBytes: 0,
              attributesMaxDepth: 0,
              cacheTtlSeconds: 1,
              secret: ctx.platform.config.secrets.appSecret,
            });
          // Idempotent: it copies the file's current state onto the items showing it.
          await catalog.fileProcessed(data.fileId);
        },
      }),
    ],
    routes: (app, { platform, config: settings }) => {
      const catalog = new CatalogService(platform, {
        attributesMaxBytes: settings.SHOP_ATTRIBUTES_MAX_BYTES,
        attributesMaxDepth: settings.SHOP_ATTRIBUTES_MAX_DEPTH,
        cacheTtlSeconds: settings.SHOP_CACHE_TTL_S,
        secret: platform.config.secrets.appSecret,
      });
      catalogRef = catalog;
      const payments =
        options.payments ??
        (settings.SHOP_PAYMENT_PROVIDER === 'fake'
          ? new FakePaymentProvider()
          : new ManualPaymentProvider());
      const orders = new OrdersService(
        platform,
        {
          shippingFlat: settings.SHOP_SHIPPING_FLAT,
          freeShippingOver: settings.SHOP_FREE_SHIPPING_OVER,
          taxBp: settings.SHOP_TAX_RATE_BP,
          lowStockThreshold: settings.SHOP_LOW_STOCK_THRESHOLD,
          paging: {
            secret: platform.config.secrets.appSecret,
            estimateAbove: platform.config.database.estimateAbove,
          },
        },
        payments,
        catalog,
      );
      return registerShopRoutes(app, catalog, orders);
    },
  });
  return module;
}

/** The shop as `src/apps/index.ts` lists it. */
export const shopApp = createShopApp();

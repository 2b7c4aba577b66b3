import { randomUUID } from 'node:crypto';

/** What the shop asks a payment provider (Stripe, Adyen, a bank transfer reconciled by hand). */
export interface PaymentProvider {
  readonly name: string;
  /**
   * Takes (or confirms) the payment of an order. `reference` is what the admin recorded (a
   * transfer id, a provider's charge id); the provider may require it or make its own.
   * Throws `PaymentDeclined` when the money cannot be taken.
   */
  charge(input: {
    orderId: string;
    amount: number;
    currency: string;
    reference?: string | undefined;
  }): Promise<{ reference: string }>;
  /** Gives money back on a charge. */
  refund(input: {
    orderId: string;
    reference: string;
    amount: number;
    currency: string;
  }): Promise<{ reference: string }>;
}

type ChargeInput = Parameters<PaymentProvider['charge']>[0];
type RefundInput = Parameters<PaymentProvider['refund']>[0];

export class PaymentDeclined extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PaymentDeclined';
  }
}

/**
 * `manual` (the default): payments happen outside (a transfer, a terminal) and the admin records
 * their reference, which is required; refunds are likewise made outside and only recorded.
 */
export class ManualPaymentProvider implements PaymentProvider {
  readonly name = 'manual';
  charge(input: ChargeInput): Promise<{ reference: string }> {
    if (!input.reference)
      return Promise.reject(new PaymentDeclined('a payment reference is required'));
    return Promise.resolve({ reference: input.reference });
  }
  refund(input: RefundInput): Promise<{ reference: string }> {
    return Promise.resolve({ reference: `refund:${input.reference}` });
  }
}

/**
 * A provider for tests and demos: charges succeed with a made-up reference unless the amount is
 * in `declineAmounts`; every call is recorded in `calls`.
 */
export class FakePaymentProvider implements PaymentProvider {
  readonly name = 'fake';
  readonly calls: { op: 'charge' | 'refund'; orderId: string; amount: number }[] = [];
  readonly declineAmounts = new Set<number>();
  charge(input: ChargeInput): Promise<{ reference: string }> {
    this.calls.push({ op: 'charge', orderId: input.orderId, amount: input.amount });
    if (this.declineAmounts.has(input.amount))
      return Promise.reject(new PaymentDeclined('card declined'));
    return Promise.resolve({ reference: input.reference ?? `fake_ch_${randomUUID()}` });
  }
  refund(input: RefundInput): Promise<{ reference: string }> {
    this.calls.push({ op: 'refund', orderId: input.orderId, amount: input.amount });
    return Promise.resolve({ reference: `fake_re_${randomUUID()}` });
  }
}

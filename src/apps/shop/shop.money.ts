/**
 * Money rules, written once: amounts are integers in minor units (cents), one ISO 4217 currency
 * per amount, computed with BigInt so that no intermediate product loses a unit, and bounded by
 * MAX_MONEY so that every amount stays exact as a JSON number.
 */

/** The largest amount anything in the shop may hold: 10^12 minor units (10 billion in cents). */
export const MAX_MONEY = 1_000_000_000_000;

/** ISO 4217 codes the runtime knows (Node's ICU list, 160-odd active currencies). */
const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

export function isCurrency(code: string): boolean {
  return CURRENCIES.has(code);
}

/** Whether `amount` is an exact, non-negative amount within MAX_MONEY. */
export function isMoney(amount: number): boolean {
  return Number.isSafeInteger(amount) && amount >= 0 && amount <= MAX_MONEY;
}

/**
 * The one rounding rule: `amount × bp / 10,000`, rounded half away from zero to a whole minor
 * unit (a tax of 20 % on 0.05 is 0.01; on 0.02 it is 0.00). Basis points, so 19.6 % is 1960.
 */
export function percentOf(amount: bigint, basisPoints: number): bigint {
  if (!Number.isInteger(basisPoints) || basisPoints < 0) throw new RangeError('bad basis points');
  const product = amount * BigInt(basisPoints);
  const sign = product < 0n ? -1n : 1n;
  const abs = product * sign;
  return sign * ((abs + 5_000n) / 10_000n);
}

export interface Totals {
  subtotal: bigint;
  shipping: bigint;
  tax: bigint;
  total: bigint;
}

/**
 * An order's totals from its lines: shipping is a flat fee waived from `freeOver` up, and tax is
 * `taxBp` of subtotal plus shipping, rounded once on the sum (never per line, so a total does not
 * depend on how the lines were split).
 */
export function orderTotals(
  lines: readonly { unitPrice: bigint; quantity: number }[],
  rules: { shippingFlat: number; freeShippingOver: number; taxBp: number },
): Totals {
  let subtotal = 0n;
  for (const line of lines) subtotal += line.unitPrice * BigInt(line.quantity);
  const shipping =
    subtotal === 0n || (rules.freeShippingOver > 0 && subtotal >= BigInt(rules.freeShippingOver))
      ? 0n
      : BigInt(rules.shippingFlat);
  const tax = percentOf(subtotal + shipping, rules.taxBp);
  return { subtotal, shipping, tax, total: subtotal + shipping + tax };
}

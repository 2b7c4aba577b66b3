import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** `000` to `fff`: the 12-bit counter of an id, formatted once. */
const COUNTER_HEX = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, '0'));

let prefixMs = Number.NaN;
let prefix = '';
let tail = '';
let counter = 0;

/**
 * A fresh request id: a UUID v7 (48-bit millisecond time, then a 12-bit counter and 62 random
 * bits, RFC 9562 §6.2 method 1), so logs sort by it and ids of one millisecond keep their order.
 * The time part is formatted and the random part drawn once per millisecond (and again if 4,096
 * ids are made in one): a new UUID per request was a measured cost of every request in
 * bench/http, and the `uuid` package's v7 several times more. Request ids are correlation keys,
 * not secrets, so ids of one millisecond sharing their random bits costs nothing.
 */
export function newRequestId(): string {
  const now = Date.now();
  if (now !== prefixMs || counter === COUNTER_HEX.length) {
    if (now !== prefixMs) {
      prefixMs = now;
      const ms = now.toString(16).padStart(12, '0');
      prefix = `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7`;
    }
    // "-yxxx-xxxxxxxxxxxx" of a random UUID: the RFC variant bits, then 62 random bits.
    tail = randomUUID().slice(18);
    counter = 0;
  }
  return `${prefix}${COUNTER_HEX[counter++] as string}${tail}`;
}

/** Keeps a client's `X-Request-Id` only when it is short and safe to echo; otherwise makes one. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : newRequestId();
}

export function genReqId(req: IncomingMessage): string {
  return requestIdFrom(req.headers['x-request-id']);
}

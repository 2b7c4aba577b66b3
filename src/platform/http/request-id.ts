import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

let prefixMs = Number.NaN;
let prefix = '';

/**
 * A fresh request id: a UUID v7 (48-bit millisecond time, then random bits), so logs sort by it.
 * Made from `randomUUID()` rather than the `uuid` package's v7, which costs several times more on
 * every request (bench/http), with the time part formatted once per millisecond; ids within one
 * millisecond need no order among themselves.
 */
export function newRequestId(): string {
  const now = Date.now();
  if (now !== prefixMs) {
    prefixMs = now;
    const ms = now.toString(16).padStart(12, '0');
    prefix = `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7`;
  }
  return prefix + randomUUID().slice(15);
}

/** Keeps a client's `X-Request-Id` only when it is short and safe to echo; otherwise makes one. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : newRequestId();
}

export function genReqId(req: IncomingMessage): string {
  return requestIdFrom(req.headers['x-request-id']);
}

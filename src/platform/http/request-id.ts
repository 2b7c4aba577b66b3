import type { IncomingMessage } from 'node:http';
import { v7 as uuidv7 } from 'uuid';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A fresh request id (UUID v7: time-ordered, so logs sort by it). */
export function newRequestId(): string {
  return uuidv7();
}

/** Keeps a client's `X-Request-Id` only when it is short and safe to echo; otherwise makes one. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : newRequestId();
}

export function genReqId(req: IncomingMessage): string {
  return requestIdFrom(req.headers['x-request-id']);
}

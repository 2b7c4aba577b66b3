import { create, fromBinary, fromJson, toBinary, toJson, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema, type Value } from '@bufbuild/protobuf/wkt';
import type { ProblemBody } from '../http/index.ts';
import { FrameSchema, type Frame } from './gen/groundwork/realtime/v1/realtime_pb.ts';
import { ProblemSchema } from './gen/groundwork/problem/v1/problem_pb.ts';

export const JSON_PROTOCOL = 'groundwork.v1.json';
export const PROTOBUF_PROTOCOL = 'groundwork.v1.protobuf';
export type Protocol = typeof JSON_PROTOCOL | typeof PROTOBUF_PROTOCOL;

/** What a client sends, decoded (either subprotocol). */
export type ClientFrame =
  | { type: 'auth'; token?: string }
  | { type: 'subscribe'; channel: string; offset?: number; id?: string }
  | { type: 'unsubscribe'; channel: string; id?: string }
  | { type: 'publish'; channel: string; data: unknown; id?: string }
  | { type: 'command'; id: string; name: string; payload: unknown }
  | { type: 'ping' }
  | { type: 'pong' };

/** What the server sends. */
export type ServerFrame =
  | { type: 'ready'; userId: string | null }
  | { type: 'subscribed'; channel: string; offset: number; id?: string }
  | { type: 'unsubscribed'; channel: string; id?: string }
  | { type: 'event'; channel: string; event: string; data: unknown; offset: number }
  | { type: 'reset'; channel: string; offset: number }
  | { type: 'result'; id: string; payload: unknown }
  | { type: 'error'; id?: string; channel?: string; problem: ProblemBody }
  | { type: 'ping' }
  | { type: 'pong' };

/** Why a frame could not be decoded: `unknown` type, or `malformed`. */
export class FrameError extends Error {
  readonly reason: 'malformed' | 'unknown-type';
  readonly id: string | undefined;
  constructor(reason: 'malformed' | 'unknown-type', message: string, id?: string) {
    super(message);
    this.reason = reason;
    this.id = id;
  }
}

const ID_MAX = 64;
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

function optionalId(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (!str(v, ID_MAX) || v.length === 0)
    throw new FrameError('malformed', '`id`: 1 to 64 characters');
  return v;
}

function channelOf(v: unknown): string {
  if (!str(v, 256) || v.length === 0)
    throw new FrameError('malformed', '`channel`: a string of 1 to 256 characters');
  return v;
}

/** Checks a decoded JSON value into a client frame (the JSON subprotocol's shape). */
export function checkClientFrame(value: unknown): ClientFrame {
  if (!isObject(value)) throw new FrameError('malformed', 'a frame is a JSON object');
  const id = typeof value.id === 'string' ? value.id.slice(0, ID_MAX) : undefined;
  try {
    switch (value.type) {
      case 'auth':
        if (value.token !== undefined && !str(value.token, 8_192))
          throw new FrameError('malformed', '`token`: a string');
        return value.token === undefined ? { type: 'auth' } : { type: 'auth', token: value.token };
      case 'subscribe': {
        const offset = value.offset;
        if (
          offset !== undefined &&
          (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
        )
          throw new FrameError('malformed', '`offset`: a non-negative integer');
        const frame: ClientFrame = { type: 'subscribe', channel: channelOf(value.channel) };
        if (offset !== undefined) frame.offset = offset;
        const fid = optionalId(value.id);
        if (fid !== undefined) frame.id = fid;
        return frame;
      }
      case 'unsubscribe': {
        const frame: ClientFrame = { type: 'unsubscribe', channel: channelOf(value.channel) };
        const fid = optionalId(value.id);
        if (fid !== undefined) frame.id = fid;
        return frame;
      }
      case 'publish': {
        const frame: ClientFrame = {
          type: 'publish',
          channel: channelOf(value.channel),
          data: value.data ?? null,
        };
        const fid = optionalId(value.id);
        if (fid !== undefined) frame.id = fid;
        return frame;
      }
      case 'command': {
        const cid = optionalId(value.id);
        if (cid === undefined) throw new FrameError('malformed', 'a command needs an `id`');
        if (!str(value.name, 128) || value.name.length === 0)
          throw new FrameError('malformed', '`name`: the command’s name', cid);
        return { type: 'command', id: cid, name: value.name, payload: value.payload ?? {} };
      }
      case 'ping':
        return { type: 'ping' };
      case 'pong':
        return { type: 'pong' };
      default:
        throw new FrameError(
          typeof value.type === 'string' ? 'unknown-type' : 'malformed',
          typeof value.type === 'string'
            ? `unknown frame type "${value.type.slice(0, 32)}"`
            : 'a frame needs a `type`',
        );
    }
  } catch (error) {
    if (error instanceof FrameError && error.id === undefined && id !== undefined)
      throw new FrameError(error.reason, error.message, id);
    throw error;
  }
}

/** The JSON subprotocol: text frames. */
export function decodeJson(data: Buffer | string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    throw new FrameError('malformed', 'the frame is not JSON');
  }
  return checkClientFrame(value);
}

export function encodeJson(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

const toValue = (v: unknown): Value => fromJson(ValueSchema, (v ?? null) as JsonValue);
const fromValue = (v: Value | undefined): unknown => (v ? toJson(ValueSchema, v) : null);

/** The Protobuf subprotocol: binary `Frame` messages. */
export function decodeProtobuf(data: Buffer): ClientFrame {
  let frame: Frame;
  try {
    frame = fromBinary(FrameSchema, data);
  } catch {
    throw new FrameError('malformed', 'the frame is not a groundwork.realtime.v1.Frame');
  }
  const kind = frame.kind;
  switch (kind.case) {
    case 'auth':
      return checkClientFrame({ type: 'auth', token: kind.value.token });
    case 'subscribe':
      return checkClientFrame({
        type: 'subscribe',
        channel: kind.value.channel,
        offset: kind.value.offset === undefined ? undefined : Number(kind.value.offset),
        id: kind.value.id,
      });
    case 'unsubscribe':
      return checkClientFrame({
        type: 'unsubscribe',
        channel: kind.value.channel,
        id: kind.value.id,
      });
    case 'publish':
      return checkClientFrame({
        type: 'publish',
        channel: kind.value.channel,
        data: fromValue(kind.value.data),
        id: kind.value.id,
      });
    case 'command':
      return checkClientFrame({
        type: 'command',
        id: kind.value.id || undefined,
        name: kind.value.name,
        payload: kind.value.payload ? fromValue(kind.value.payload) : {},
      });
    case 'ping':
      return { type: 'ping' };
    case 'pong':
      return { type: 'pong' };
    case undefined:
      throw new FrameError('malformed', 'the frame carries no known kind');
    case 'ready':
    case 'subscribed':
    case 'unsubscribed':
    case 'event':
    case 'reset':
    case 'result':
    case 'error':
      throw new FrameError('unknown-type', `a client does not send ${kind.case} frames`);
  }
}

function protoProblem(problem: ProblemBody) {
  return create(ProblemSchema, {
    type: problem.type,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
    requestId: problem.requestId,
    errors: (problem.errors ?? []).map((e) => ({ path: e.path, message: e.message })),
  });
}

export function encodeProtobuf(frame: ServerFrame): Uint8Array {
  let kind: Frame['kind'];
  switch (frame.type) {
    case 'ready':
      kind = { case: 'ready', value: { userId: frame.userId ?? undefined } as never };
      break;
    case 'subscribed':
      kind = {
        case: 'subscribed',
        value: { channel: frame.channel, offset: BigInt(frame.offset), id: frame.id } as never,
      };
      break;
    case 'unsubscribed':
      kind = { case: 'unsubscribed', value: { channel: frame.channel, id: frame.id } as never };
      break;
    case 'event':
      kind = {
        case: 'event',
        value: {
          channel: frame.channel,
          event: frame.event,
          data: toValue(frame.data),
          offset: BigInt(frame.offset),
        } as never,
      };
      break;
    case 'reset':
      kind = {
        case: 'reset',
        value: { channel: frame.channel, offset: BigInt(frame.offset) } as never,
      };
      break;
    case 'result':
      kind = { case: 'result', value: { id: frame.id, payload: toValue(frame.payload) } as never };
      break;
    case 'error':
      kind = {
        case: 'error',
        value: {
          id: frame.id,
          channel: frame.channel,
          problem: protoProblem(frame.problem),
        } as never,
      };
      break;
    case 'ping':
      kind = { case: 'ping', value: {} as never };
      break;
    case 'pong':
      kind = { case: 'pong', value: {} as never };
      break;
    default:
      throw new Error('not a server frame');
  }
  return toBinary(FrameSchema, create(FrameSchema, { kind }));
}

/** A server frame decoded from Protobuf into the JSON shape (clients, tests, the bench). */
export function decodeServerProtobuf(data: Uint8Array): ServerFrame {
  const frame = fromBinary(FrameSchema, data);
  const k = frame.kind;
  switch (k.case) {
    case 'ready':
      return { type: 'ready', userId: k.value.userId ?? null };
    case 'subscribed':
      return {
        type: 'subscribed',
        channel: k.value.channel,
        offset: Number(k.value.offset),
        ...(k.value.id ? { id: k.value.id } : {}),
      };
    case 'unsubscribed':
      return {
        type: 'unsubscribed',
        channel: k.value.channel,
        ...(k.value.id ? { id: k.value.id } : {}),
      };
    case 'event':
      return {
        type: 'event',
        channel: k.value.channel,
        event: k.value.event,
        data: fromValue(k.value.data),
        offset: Number(k.value.offset),
      };
    case 'reset':
      return { type: 'reset', channel: k.value.channel, offset: Number(k.value.offset) };
    case 'result':
      return { type: 'result', id: k.value.id, payload: fromValue(k.value.payload) };
    case 'error': {
      const p = k.value.problem;
      const problem: ProblemBody = {
        type: p?.type ?? '',
        title: p?.title ?? '',
        status: p?.status ?? 0,
        detail: p?.detail ?? '',
        code: p?.code ?? '',
        requestId: p?.requestId ?? '',
      };
      if (p && p.errors.length > 0)
        problem.errors = p.errors.map((e) => ({ path: e.path, message: e.message }));
      return {
        type: 'error',
        ...(k.value.id ? { id: k.value.id } : {}),
        ...(k.value.channel ? { channel: k.value.channel } : {}),
        problem,
      };
    }
    case 'ping':
      return { type: 'ping' };
    case 'pong':
      return { type: 'pong' };
    case 'auth':
    case 'subscribe':
    case 'unsubscribe':
    case 'publish':
    case 'command':
    case undefined:
      throw new Error(`not a server frame: ${String(k.case)}`);
  }
}

/** A client frame in Protobuf (clients, tests, the bench). */
export function encodeClientProtobuf(frame: ClientFrame): Uint8Array {
  let kind: Frame['kind'];
  switch (frame.type) {
    case 'auth':
      kind = { case: 'auth', value: { token: frame.token } as never };
      break;
    case 'subscribe':
      kind = {
        case: 'subscribe',
        value: {
          channel: frame.channel,
          offset: frame.offset === undefined ? undefined : BigInt(frame.offset),
          id: frame.id,
        } as never,
      };
      break;
    case 'unsubscribe':
      kind = { case: 'unsubscribe', value: { channel: frame.channel, id: frame.id } as never };
      break;
    case 'publish':
      kind = {
        case: 'publish',
        value: { channel: frame.channel, data: toValue(frame.data), id: frame.id } as never,
      };
      break;
    case 'command':
      kind = {
        case: 'command',
        value: { id: frame.id, name: frame.name, payload: toValue(frame.payload) } as never,
      };
      break;
    case 'ping':
      kind = { case: 'ping', value: {} as never };
      break;
    case 'pong':
      kind = { case: 'pong', value: {} as never };
      break;
  }
  return toBinary(FrameSchema, create(FrameSchema, { kind }));
}

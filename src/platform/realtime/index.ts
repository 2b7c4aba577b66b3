export {
  bindChannels,
  ChannelRegistry,
  channelsOf,
  defineChannel,
  MAX_CHANNEL_LENGTH,
} from './channels.ts';
export type { ChannelContext, ChannelDefinition } from './channels.ts';
export { defineCommand } from './commands.ts';
export type { CommandContext, CommandDefinition } from './commands.ts';
export {
  decodeServerProtobuf,
  encodeClientProtobuf,
  JSON_PROTOCOL,
  PROTOBUF_PROTOCOL,
} from './codec.ts';
export type { ClientFrame, Protocol, ServerFrame } from './codec.ts';
export { RealtimeCodes } from './errors.ts';
export { CloseCodes, Hub } from './hub.ts';
export type { Authenticator, Principal } from './hub.ts';
export { realtime, realtimeEvents, realtimeModule, registerRealtime } from './module.ts';
export { RealtimeConfig, realtimeSettings } from './settings.ts';
export type { RealtimeSettings } from './settings.ts';
export { ProblemSchema } from './gen/groundwork/problem/v1/problem_pb.ts';
export { FrameSchema } from './gen/groundwork/realtime/v1/realtime_pb.ts';

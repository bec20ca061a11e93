/**
 * @talkhub/client: createTalkhubClient and the generated messages and services of talk.v1
 * (from the repository's gen/, the one generated copy).
 */
export { createTalkhubClient } from "./create-talkhub-client.js";
export type { TalkhubClient, TalkhubClientOptions, WatchEventsStart, WatchTalkStart } from "./create-talkhub-client.js";
export { ResumableStream } from "./resumable-stream.js";
export type { ResumableCall, StreamStats, StreamStatus, WatchOptions } from "./resumable-stream.js";
export { isTerminal, terminalCodes } from "./retry-policy.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export type { TokenRequest, TokenSource } from "./token.js";
export { Code, ConnectError } from "@connectrpc/connect";
export * from "../../../gen/talk/v1/agent_service_pb.js";
export * from "../../../gen/talk/v1/events_pb.js";
export * from "../../../gen/talk/v1/message_service_pb.js";
export * from "../../../gen/talk/v1/resources_pb.js";
export * from "../../../gen/talk/v1/talk_service_pb.js";

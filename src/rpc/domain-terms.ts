/**
 * The domain's terms an edge that calls the RPCs (the WebSocket) uses around its calls: the
 * verified caller, the errors it throws itself (mapped to codes in errors.ts as a handler's
 * are), and what an id looks like. They carry no rules; http/ takes them from here because
 * it never imports domain/ (the layering in .dependency-cruiser.cjs).
 */
export { InvalidArgument, PermissionDenied, ResourceExhausted, Unauthenticated } from "../domain/model/errors.js";
export { isUuid } from "../domain/model/ids.js";
export type { Identity } from "../domain/model/identity.js";

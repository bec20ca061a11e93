import { Code, type ConnectError } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import type { TokenVerifier } from "../auth/verifier.js";
import { toConnectError } from "./errors.js";
import { bearerToken } from "./interceptors.js";

/**
 * Checks a call's token from its headers, before its body is read, so that no token is needed
 * to be refused without a byte of the body taken in: true when the token is valid, false for
 * the services in `open` (health, reflection); throws UNAUTHENTICATED otherwise, after telling
 * `onRefused`. Any other failure (a JWKS that does not answer) returns false and is left to the
 * auth interceptor, which verifies the token again (from the verifier's cache when valid) and
 * reports it as usual.
 */
export function headerAuthentication(
  verify: TokenVerifier,
  open: ReadonlySet<string>,
  onRefused: (method: DescMethod, header: Headers, refusal: ConnectError) => void,
): (method: DescMethod, header: Headers) => Promise<boolean> {
  return async (method, header) => {
    if (open.has(method.parent.typeName)) return false;
    try {
      await verify(bearerToken(header.get("authorization")));
      return true;
    } catch (error) {
      const refusal = toConnectError(error);
      if (refusal.code !== Code.Unauthenticated) return false;
      onRefused(method, header, refusal);
      throw refusal;
    }
  };
}

/**
 * The bearer token of every call. A string is sent as is; a function is asked before every
 * call (it may cache), and asked with `refresh: true` after the service refused a token, so a
 * client can renew an expired token without being rebuilt.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

export interface TokenRequest {
  /** The last token was refused (UNAUTHENTICATED): return a new one. */
  readonly refresh: boolean;
}

export type TokenSource = string | ((request: TokenRequest) => string | Promise<string>);

/** Whether a refused token can be replaced by asking again. */
export const canRefresh = (token: TokenSource | undefined): boolean => typeof token === "function";

export async function readToken(token: TokenSource | undefined, refresh: boolean): Promise<string | undefined> {
  if (token === undefined) return undefined;
  return typeof token === "string" ? token : token({ refresh });
}

/**
 * Sets `Authorization: Bearer <token>` unless the call set it already (the watch streams do, to
 * ask for a refresh themselves: see resumable-stream.ts). A unary call refused with
 * UNAUTHENTICATED is tried once more with a refreshed token, which is safe because a refused
 * call did nothing.
 */
export function bearerInterceptor(token: TokenSource | undefined): Interceptor {
  return (next) => async (request) => {
    if (request.header.has("Authorization")) return next(request);
    const value = await readToken(token, false);
    if (value !== undefined) request.header.set("Authorization", `Bearer ${value}`);
    if (request.stream || !canRefresh(token)) return next(request);
    try {
      return await next(request);
    } catch (error) {
      if (ConnectError.from(error).code !== Code.Unauthenticated) throw error;
      const renewed = await readToken(token, true);
      if (renewed === undefined || renewed === value) throw error;
      request.header.set("Authorization", `Bearer ${renewed}`);
      return next(request);
    }
  };
}

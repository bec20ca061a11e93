/** The token of an `Authorization: Bearer <token>` header value; undefined when it has another form. */
export function bearerOf(authorization: string): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
}

/**
 * grpc-message as the gRPC spec (PROTOCOL-HTTP2.md) encodes it: UTF-8, with only "%" and the
 * bytes outside printable ASCII (0x20-0x7E) percent-encoded. Connect encodes it with
 * encodeURIComponent, every reserved character included (":" as %3A); grpc-js decodes with
 * decodeURI, which leaves those escaped, so its users read `id%3A must be a UUID%2C ...`.
 */
export function encodeGrpcMessage(message: string): string {
  let result = "";
  for (const byte of Buffer.from(message, "utf8")) {
    result +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return result;
}

/** Re-encodes a grpc-message that connect wrote (see encodeGrpcMessage) in these headers, if any. */
export function respecGrpcMessage(headers: Headers | undefined): void {
  const encoded = headers?.get("grpc-message");
  if (headers === undefined || encoded === null || encoded === undefined) return;
  let message: string;
  try {
    message = decodeURIComponent(encoded);
  } catch {
    return;
  }
  headers.set("grpc-message", encodeGrpcMessage(message));
}

/** gRPC's length-prefixed message framing (uncompressed): one flag byte, a 4-byte big-endian length, the bytes. */
export function envelope(encoded: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(5 + encoded.length);
  bytes[0] = 0;
  bytes.writeUInt32BE(encoded.length, 1);
  bytes.set(encoded, 5);
  return bytes;
}

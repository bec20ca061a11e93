/**
 * The public port's certificate and key, read once at start: a file that cannot be read, or a
 * pair that is not a usable certificate and key, stops the start with a message naming the
 * variable and the file, before anything listens. They are not watched: a new certificate takes
 * a restart (docs/operations.md, "TLS").
 */
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { ConfigError, type TlsConfig } from "./config.js";

export interface TlsCredentials {
  /** PEM: the certificate, then any intermediates. */
  readonly cert: Buffer;
  /** PEM: the private key. */
  readonly key: Buffer;
}

function readPem(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const why = error instanceof Error && "code" in error ? String(error.code) : String(error);
    throw new ConfigError(variable, `cannot read ${file} (${why})`);
  }
}

export function readTlsCredentials(config: TlsConfig): TlsCredentials {
  const cert = readPem("TALKHUB_TLS_CERT", config.certFile);
  const key = readPem("TALKHUB_TLS_KEY", config.keyFile);
  try {
    // Parses both and checks that the key is the certificate's.
    createSecureContext({ cert, key });
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ConfigError(
      "TALKHUB_TLS_CERT, TALKHUB_TLS_KEY",
      `${config.certFile} and ${config.keyFile} are not a usable certificate and key (${why})`,
    );
  }
  return { cert, key };
}

/**
 * Debian's Chromium, driven by playwright-core (never a downloaded browser), started as the
 * machine's closed network needs: without the background-networking flags it keeps trying
 * Google's hosts. playwright-core gives every launch a fresh, empty user data dir of its own.
 */
import { chromium, type Browser } from "playwright-core";

export const chromiumPath = process.env["TALKHUB_CHROMIUM"] ?? "/usr/bin/chromium";

/** A headless Chromium; `extraArgs` are added to the flags every browser test uses. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  });
}

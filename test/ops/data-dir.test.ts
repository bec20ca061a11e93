/**
 * The embedded default's data dir is the owner's only: the directory and the database files
 * 0700, the generated signing secret and the demo people 0600.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadOrCreateSecret } from "../../src/auth/secret.js";
import { demoIntroduction } from "../../src/demo.js";
import { startService } from "../../src/service.js";

const scratch = mkdtempSync(join(tmpdir(), "talkhub-datadir-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const modeOf = (path: string): number => statSync(path).mode & 0o777;

describe("the embedded data dir", () => {
  it("is created 0700 with the secret 0600, by the service on its first start", async () => {
    const dataDir = join(scratch, "first-start", ".talkhub");
    const service = await startService({
      host: "127.0.0.1",
      port: 0,
      database: { kind: "pglite", dataDir },
      auth: { secret: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined },
      natsUrl: undefined,
      dataDir,
    });
    try {
      const secret = service.secret ?? "";
      expect(secret.length).toBeGreaterThanOrEqual(32);
      expect(modeOf(dataDir).toString(8)).toBe("700");
      expect(modeOf(join(dataDir, "pgdata")).toString(8)).toBe("700");
      expect(modeOf(join(dataDir, "jwt-secret")).toString(8)).toBe("600");
      await demoIntroduction(service.deps, dataDir, secret, service.port);
      expect(modeOf(join(dataDir, "demo.json")).toString(8)).toBe("600");
      // The service still answers.
      expect((await fetch(`${service.url}/healthz`, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
    } finally {
      await service.close();
    }
  }, 120_000);

  it("is created 0700 by the secret alone, and the secret is read back the same", () => {
    const dataDir = join(scratch, "secret-only", "nested", "dir");
    const secret = loadOrCreateSecret(dataDir);
    expect(modeOf(dataDir).toString(8)).toBe("700");
    expect(modeOf(join(dataDir, "jwt-secret")).toString(8)).toBe("600");
    expect(loadOrCreateSecret(dataDir)).toBe(secret);
  });
});

/**
 * npm run token -- --customer <uuid> --agent <uuid> [--name N] [--admin] [--days D] (--help: usage)
 * Mints a token signed with TALKHUB_JWT_SECRET, or with the embedded default's secret from
 * TALKHUB_DATA_DIR (./.talkhub).
 */
import { parseArgs } from "node:util";
import { loadOrCreateSecret } from "../auth/secret.js";
import { mintToken } from "../auth/tokens.js";
import { readConfig } from "../config.js";
import { isUuid } from "../domain/model/ids.js";

const usage = "usage: npm run token -- --customer <uuid> --agent <uuid> [--name N] [--admin] [--days D]";

function fail(message: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

const options = {
  customer: { type: "string" },
  agent: { type: "string" },
  name: { type: "string" },
  admin: { type: "boolean", default: false },
  days: { type: "string", default: "30" },
  help: { type: "boolean", short: "h", default: false },
} as const;

let parsed: ReturnType<typeof parseArgs<{ options: typeof options }>>;
try {
  parsed = parseArgs({ options });
} catch (error) {
  // An unknown option or a missing value is the user's slip: say which, without a stack.
  fail(error instanceof Error ? error.message : String(error));
}
const { values } = parsed;
if (values.help) {
  console.log(usage);
  process.exit(0);
}

if (values.customer === undefined || !isUuid(values.customer)) fail("--customer must be a UUID");
if (values.agent === undefined || !isUuid(values.agent)) fail("--agent must be a UUID");
const days = Number(values.days);
if (!Number.isFinite(days) || days <= 0) fail("--days must be a positive number");

const config = readConfig();
const secret = config.auth.secret ?? loadOrCreateSecret(config.dataDir);
console.log(
  await mintToken(secret, {
    customerId: values.customer,
    agentId: values.agent,
    name: values.name,
    role: values.admin ? "admin" : "agent",
    expiresInSeconds: Math.round(days * 24 * 3600),
  }),
);

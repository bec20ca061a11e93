/**
 * A Node microservice over @grpc/grpc-js and @grpc/proto-loader: a bot that answers "!ping"
 * with "pong" in the message's thread, in every talk its agent takes part in.
 *
 * It loads the contract straight from the .proto files (proto/ and the vendored third_party/,
 * the modules buf.yaml lists), so it needs no generated code, and writes its own resume loop
 * around TalkService.WatchEvents: on any break it reconnects with the last cursor it got.
 *
 *   TALKHUB_GRPC_ADDRESS=127.0.0.1:8080 TALKHUB_TOKEN=<agent token> node examples/grpc-js-service/main.mjs
 *
 * It prints "ready" once its first watch answered, and one line per reply.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const address = process.env.TALKHUB_GRPC_ADDRESS ?? "127.0.0.1:8080";
const token = process.env.TALKHUB_TOKEN;
if (!token) {
  console.error("TALKHUB_TOKEN is required (npm run token -- --customer <uuid> --agent <uuid>)");
  process.exit(2);
}

const definition = protoLoader.loadSync(["talk/v1/talk_service.proto", "talk/v1/message_service.proto"], {
  includeDirs: [`${repo}/proto`, `${repo}/third_party`],
  keepCase: true, // the contract's field names: chat_id, parent_id...
  longs: String,
  defaults: true,
  oneofs: true, // event.payload names the set field, e.g. "message_created"
});
const talkV1 = grpc.loadPackageDefinition(definition).talk.v1;
const credentials = grpc.credentials.createInsecure();
const talks = new talkV1.TalkService(address, credentials);
const messages = new talkV1.MessageService(address, credentials);

const auth = () => {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
};

function reply(message) {
  const request = { chat_id: message.chat_id, parent_id: message.id, text: "pong" };
  messages.SendMessage(request, auth(), { deadline: Date.now() + 10_000 }, (error) => {
    if (error) console.error(`reply to ${message.id} failed: ${error.message}`);
    else console.log(`replied to ${message.id} in ${message.chat_id}`);
  });
}

let cursor = "";
let ready = false;
let failures = 0;
/** Gives up on answers that reconnecting cannot change. */
const terminal = new Set([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.UNIMPLEMENTED]);

function watch() {
  const call = talks.WatchEvents({ cursor }, auth());
  call.on("data", (response) => {
    failures = 0;
    if (response.cursor) cursor = response.cursor;
    if (!ready) {
      ready = true;
      console.log("ready");
    }
    const event = response.event;
    if (response.kind !== "event" || event.payload !== "message_created") return;
    const message = event.message_created;
    // Only the command, and never its own messages.
    if (message.type !== "normal" || message.owner_id === selfId || message.text.trim() !== "!ping") return;
    reply(message);
  });
  call.on("error", (error) => {
    if (error.code === grpc.status.CANCELLED && stopping) return;
    if (terminal.has(error.code)) {
      console.error(`watch stopped: ${error.message}`);
      process.exit(1);
    }
    if (error.code === grpc.status.INVALID_ARGUMENT || error.code === grpc.status.OUT_OF_RANGE) cursor = "";
    failures += 1;
    const delay = Math.min(5_000, 250 * 2 ** Math.min(failures - 1, 5));
    setTimeout(watch, delay);
  });
  current = call;
}

// The bot's own agent id: its token's subject (a JWT: the claims are the middle part).
const selfId = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")).sub ?? "";
let current;
let stopping = false;
watch();

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    stopping = true;
    current?.cancel();
    talks.close();
    messages.close();
  });
}

/**
 * The layering of src/, checked by `npm run lint` and by `npm test` (dependency-cruiser).
 *
 * A request goes down, never up:
 *
 *   main.ts, service.ts, demo.ts, cli/   the entry points and the composition root
 *   contract/                            the OpenAPI document, built from http/rest's bindings
 *   http/                                the listener: gRPC fast path, REST, WebSocket, CORS
 *   rpc/                                 the services: request -> domain -> response
 *   auth/  operator/                     token checks; health, metrics, logs (for rpc/ and http/)
 *   live/                                delivery: feeds, streams, the watch use cases
 *   domain/  sends/                      the rules, and the send path's group commit
 *   store/  events/  bus/                SQL, the event log, the bus transports
 *
 * Beneath them all, the domain's shared kernel (domain/model/, and from domain/write/ the shapes
 * a write hands to the store) may be named by every layer but http/: ids and
 * errors are words, not rules. http/ reaches the domain only through rpc/ and auth/.
 * Each rule below is named for what it forbids; its comment says why. Run: npm run lint.
 */

/**
 * The domain's words, which the layers beneath may name: domain/model/ (ids, errors, identity,
 * the model, events) and the shapes a write hands to the store (write/talk-change, write-limits).
 */
const sharedKernel = "^src/domain/(model/[^/]+|write/(talk-change|write-limits))[.]ts$";

module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      comment: "A cycle makes two modules one: neither can be read, tested or moved without the other.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "no-orphans",
      comment: "A module of src/ that nothing imports and that imports nothing is dead code, or wiring that was forgotten.",
      severity: "error",
      from: { orphan: true, path: "^src/", pathNot: "[.]d[.]ts$" },
      to: {},
    },
    {
      name: "src-not-to-tests-or-tools",
      comment: "The service ships without test/, bench/, scripts/, web/, clients/ and examples/; it must run without them.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|bench|scripts|web|clients|examples)/" },
    },
    {
      name: "src-not-to-dev-dependencies",
      comment: "A production install has no devDependencies: src/ may only import what package.json's dependencies name.",
      severity: "error",
      from: { path: "^src/" },
      to: { dependencyTypes: ["npm-dev"] },
    },
    {
      name: "gen-not-to-hand-written-code",
      comment: "gen/ is what buf generates from proto/ and is never edited: it imports its runtime and itself, nothing of ours.",
      severity: "error",
      from: { path: "^gen/" },
      to: { path: "^(src|test|bench|scripts|web|clients|examples)/" },
    },
    {
      name: "clients-not-to-server",
      comment:
        "clients/, web/ and examples/ speak the contract from another process or a browser: gen/ and clients/ only, never the server's code.",
      severity: "error",
      from: { path: "^(clients|web|examples)/" },
      to: { path: "^(src|test|bench|scripts)/" },
    },
    {
      name: "composition-root-imported-by-none",
      comment: "service.ts builds every stateful part and main.ts starts it: a module that imports them has its wiring upside down.",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/main[.]ts$" },
      to: { path: "^src/(main|service|demo)[.]ts$" },
    },
    {
      name: "below-http-not-to-http",
      comment: "http/ is the outermost edge: what it serves must not depend on how it is served.",
      severity: "error",
      from: { path: "^src/(rpc|auth|operator|live|domain|sends|store|events|bus)/" },
      to: { path: "^src/http/" },
    },
    {
      name: "http-not-to-domain",
      comment:
        "http/ calls the RPCs through the router like every other edge (REST, WebSocket), so every call passes the same interceptors: auth, limits, metrics, logs, error codes.",
      severity: "error",
      from: { path: "^src/http/" },
      to: { path: "^src/(domain|sends|store|events|bus)/" },
    },
    {
      name: "http-not-to-live-use-cases",
      comment: "A transport runs a live body (live/live-body.ts) to write frames at once; the watch itself is opened through its RPC.",
      severity: "error",
      from: { path: "^src/http/" },
      to: { path: "^src/live/", pathNot: "^src/live/live-body[.]ts$" },
    },
    {
      name: "edges-not-to-storage",
      comment:
        "rpc/, auth/, operator/ and contract/ reach data through the domain's rules, never around them. The one exception, rpc/errors.ts, recognises the database driver's errors where every error becomes a wire code, so no use case can forget to.",
      severity: "error",
      from: { path: "^src/(rpc|auth|operator|contract)/", pathNot: "^src/rpc/errors[.]ts$" },
      to: { path: "^src/(sends|store|events|bus)/" },
    },
    {
      name: "auth-and-operator-not-to-rpc",
      comment: "Token checks, logs and metrics serve the RPCs and the listener; they know neither, so each can be tested alone.",
      severity: "error",
      from: { path: "^src/(auth|operator)/" },
      to: { path: "^src/(rpc|http|contract|cli|live)/" },
    },
    {
      name: "domain-not-to-edges",
      comment: "The rules do not know who calls them or how: no RPC, HTTP, token checks, operator endpoints or entry points.",
      severity: "error",
      from: { path: "^src/(live|domain|sends|store|events|bus)/" },
      to: { path: "^src/(rpc|http|auth|operator|contract|cli)/" },
    },
    {
      name: "domain-not-to-proto",
      comment: "rpc/ maps domain <-> proto; beneath it nothing knows protobuf or Connect, so the rules read as plain TypeScript.",
      severity: "error",
      from: { path: "^src/(live|domain|sends|store|events|bus|auth)/" },
      to: { path: "^gen/|(^|/)node_modules/(@bufbuild|@connectrpc)/" },
    },
    {
      name: "domain-not-to-live",
      comment: "Delivery reads the domain's events; the domain writes them without knowing who watches.",
      severity: "error",
      from: { path: "^src/(domain|sends|store|events|bus)/" },
      to: { path: "^src/live/" },
    },
    {
      name: "storage-not-to-rules",
      comment:
        "store/, events/ and bus/ hold data and move it; they may name the shared kernel's types and errors but not the use cases that call them.",
      severity: "error",
      from: { path: "^src/(store|events|bus)/" },
      to: { path: "^src/(domain|sends)/", pathNot: sharedKernel },
    },
    {
      name: "sql-only-in-store",
      comment:
        "store/ knows SQL and nothing else does, so a query is found in one folder; the send statement (docs/send-path.md) lives with the send path.",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(store/|sends/send-store[.]ts$)" },
      to: { path: "(^|/)node_modules/(kysely|kysely-pglite-dialect|pg|@electric-sql/pglite)/" },
    },
  ],
  options: {
    // Type-only imports count: a layer that names another's types depends on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|reports|third_party|bench/results)/" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".js", ".mjs", ".cjs", ".d.ts"],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};

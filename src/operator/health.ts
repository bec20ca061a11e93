/**
 * gRPC health checking (grpc.health.v1): SERVING while the process is ready (database and bus
 * reachable), NOT_SERVING otherwise; Watch sends the status and then every change.
 */
import { Code, ConnectError, createServiceImplSpec, type ServiceImplSpec } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { checkReadiness, type ReadinessChecks } from "./readiness.js";

/** The health service, for "" (the whole server) and each named service. */
export function healthService(checks: ReadinessChecks, services: readonly string[], watchEveryMs = 1_000): ServiceImplSpec {
  const known = new Set(["", ...services]);
  const status = async (service: string): Promise<Status> => {
    if (!known.has(service)) return Status.SERVICE_UNKNOWN;
    return (await checkReadiness(checks)).ready ? Status.SERVING : Status.NOT_SERVING;
  };
  return createServiceImplSpec<typeof Health>(Health, {
    async check(req) {
      if (!known.has(req.service)) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      return { status: await status(req.service) };
    },
    async list() {
      const ready = (await checkReadiness(checks)).ready ? Status.SERVING : Status.NOT_SERVING;
      return { statuses: Object.fromEntries([...known].map((service) => [service, { status: ready }])) };
    },
    async *watch(req, context) {
      let last: Status | undefined;
      while (!context.signal.aborted) {
        const now = await status(req.service);
        if (now !== last) yield { status: now };
        last = now;
        await new Promise((resolve) => setTimeout(resolve, watchEveryMs));
      }
    },
  });
}

import { Code } from "@connectrpc/connect";

/** The HTTP status for a gRPC code, as the Connect protocol and gRPC-HTTP transcoding use them. */
export function httpStatusOf(code: Code): number {
  switch (code) {
    case Code.Canceled:
      return 499;
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
      return 400;
    case Code.DeadlineExceeded:
      return 504;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
    case Code.Aborted:
      return 409;
    case Code.PermissionDenied:
      return 403;
    case Code.ResourceExhausted:
      return 429;
    case Code.Unimplemented:
      return 501;
    case Code.Unavailable:
      return 503;
    case Code.Unauthenticated:
      return 401;
    case Code.Unknown:
    case Code.Internal:
    case Code.DataLoss:
      return 500;
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}

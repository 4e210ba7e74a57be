/**
 * ffinet's errno errors as Deno's error classes, and the adapters' own
 * errors.
 *
 * @module
 */
import { ErrnoError } from "../../ffi/errno.ts";

type ErrorClass = new (message: string, options?: ErrorOptions) => Error;

/** The errno names that have a `Deno.errors` class, as `Deno.connect` reports them. */
const ERROR_CLASSES: Readonly<Record<string, ErrorClass>> = {
  ECONNREFUSED: Deno.errors.ConnectionRefused,
  ECONNRESET: Deno.errors.ConnectionReset,
  ECONNABORTED: Deno.errors.ConnectionAborted,
  ENOTCONN: Deno.errors.NotConnected,
  EADDRINUSE: Deno.errors.AddrInUse,
  EADDRNOTAVAIL: Deno.errors.AddrNotAvailable,
  EPIPE: Deno.errors.BrokenPipe,
  ETIMEDOUT: Deno.errors.TimedOut,
  ENOENT: Deno.errors.NotFound,
  EACCES: Deno.errors.PermissionDenied,
  EPERM: Deno.errors.PermissionDenied,
  EINTR: Deno.errors.Interrupted,
};

/**
 * An `ErrnoError` as the matching `Deno.errors` class, with the original as
 * `cause` and its errno name as `code`; other errors unchanged.
 */
export function toDenoError(error: unknown): Error {
  if (!(error instanceof ErrnoError)) {
    return error instanceof Error ? error : new Error(String(error));
  }
  const Class = ERROR_CLASSES[error.code];
  if (Class === undefined) return error;
  const converted = new Class(error.message, { cause: error });
  Object.defineProperty(converted, "code", { value: error.code, enumerable: true });
  return converted;
}

/** `Deno.errors.BadResource` for an operation on a closed connection or listener. */
export function closedError(action: string, what: string): Error {
  return new Deno.errors.BadResource(`Cannot ${action}: the ${what} is closed`);
}

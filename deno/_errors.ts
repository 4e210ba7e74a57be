/**
 * ffinet's errno errors as Deno's error classes, and the adapters' own
 * errors.
 *
 * @module
 */
import { denoErrorClass, ErrnoError } from "../ffi/errno.ts";

/**
 * An `ErrnoError` as the matching `Deno.errors` class, with the original as
 * `cause` and its errno name as `code`; other errors unchanged.
 */
export function toDenoError(error: unknown): Error {
  if (!(error instanceof ErrnoError)) {
    return error instanceof Error ? error : new Error(String(error));
  }
  const Class = denoErrorClass(error.errno);
  if (Class === undefined) return error;
  const converted = new Class(error.message, { cause: error });
  Object.defineProperty(converted, "code", { value: error.code, enumerable: true });
  return converted;
}

/** `Deno.errors.BadResource` for an operation on a closed connection or listener. */
export function closedError(action: string, what: string): Error {
  return new Deno.errors.BadResource(`Cannot ${action}: the ${what} is closed`);
}

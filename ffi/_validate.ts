/**
 * Private argument checks shared by the ffi layer. Every check throws a
 * `RangeError` that names the call and the argument ("Cannot read: length
 * 16 exceeds the buffer's 4 bytes") before anything reaches libc, so a bad
 * number is never wrapped, truncated or handed to the kernel.
 *
 * The hot-path checks ({@linkcode checkFd}, {@linkcode checkLength}) are a
 * couple of integer compares; their error paths live in separate functions
 * so that the checks stay small enough for V8 to inline.
 *
 * @module
 */
import { byteLengthOf } from "./_view.ts";
import { checkInteger } from "./validate.ts";

/** The largest `int` (`INT_MAX`). */
export const INT32_MAX = 0x7fff_ffff;
/** The smallest `int` (`INT_MIN`). */
export const INT32_MIN = -0x8000_0000;
/** The largest `unsigned int` / `uint32_t` / `socklen_t`. */
export const UINT32_MAX = 0xffff_ffff;
/** The largest uid or gid a process can take (`(uid_t)-1` means "no change"). */
export const ID_MAX = 0xffff_fffe;

/** `value` as text for an error message (`NaN`, `-1`, `0.5`, `"x"` …). */
function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

// The integer check is the one every layer uses (./validate.ts).
export { checkInteger };

/** {@linkcode checkInteger} for an `int` argument. */
export function checkInt32(action: string, name: string, value: number): number {
  return checkInteger(action, name, value, INT32_MIN, INT32_MAX);
}

/** {@linkcode checkInteger} for an `unsigned int` / `uint32_t` argument. */
export function checkUint32(action: string, name: string, value: number): number {
  return checkInteger(action, name, value, 0, UINT32_MAX);
}

function fdError(call: string, fd: unknown): RangeError {
  return new RangeError(`Cannot ${call}: fd ${show(fd)} is not a file descriptor (an int)`);
}

/**
 * Throw unless `fd` is an `int` (a negative fd is passed on as it is: the
 * kernel answers EBADF). One compare on the fast path.
 */
export function checkFd(call: string, fd: number): void {
  if ((fd | 0) !== fd) throw fdError(call, fd);
}

function lengthError(call: string, what: string, len: unknown, size: number): RangeError {
  if (typeof len === "number" && Number.isInteger(len) && len > size && len <= UINT32_MAX) {
    return new RangeError(`Cannot ${call}: ${what} ${len} exceeds the buffer's ${size} bytes`);
  }
  return new RangeError(
    `Cannot ${call}: ${what} ${show(len)} is not an integer from 0 to ${size} (the buffer's bytes)`,
  );
}

/**
 * Throw unless `len` is an integer from 0 to `size` (a view's `byteLength`).
 * `len >>> 0 === len` rejects negatives, fractions, NaN, ±Infinity and
 * anything at or above 2^32 in one compare.
 */
export function checkLength(call: string, what: string, len: number, size: number): void {
  if (len >>> 0 !== len || len > size) throw lengthError(call, what, len, size);
}

/**
 * Throw unless the view `array` covers at least `min` elements of
 * `elementBytes` bytes each (the `out` arrays of the kernel), counted in
 * bytes through the intrinsic getters: a `Uint8Array(2)` is not room for
 * two fds, and a subclass that lies about its `length` is not believed.
 */
export function checkElements(
  call: string,
  what: string,
  array: ArrayBufferView,
  min: number,
  elementBytes: number,
): void {
  const bytes = byteLengthOf(call, what, array);
  if (bytes < min * elementBytes) {
    throw new RangeError(
      `Cannot ${call}: ${what} holds ${bytes} bytes, it needs at least ${
        min * elementBytes
      } (${min} elements of ${elementBytes} bytes)`,
    );
  }
}

/**
 * Private: the checks every ffi call makes on its arguments before anything
 * reaches libc, a caller's memory as the engine sees it, and the raw result
 * read back in the kernel's convention ({@linkcode result},
 * {@linkcode interrupted}; here so that `syscalls.ts` and `msghdr.ts` share
 * them without importing each other).
 *
 * Every check throws a `RangeError` that names the call and the argument
 * ("Cannot read: length 16 exceeds the buffer's 4 bytes"), so a bad number
 * is never wrapped, truncated or handed to the kernel. The hot-path checks
 * ({@linkcode checkFd}, {@linkcode checkLength}) are a couple of integer
 * compares; their error paths live in separate functions so that the checks
 * stay small enough for V8 to inline.
 *
 * Every size, offset and buffer the ffi layer hands to the kernel is read
 * through the `%TypedArray%.prototype` and `DataView.prototype` getters
 * captured when this module loads. A subclass that overrides `byteLength`,
 * `buffer`, `byteOffset` or `length`, a getter that detaches or shrinks a
 * buffer, or a Proxy posing as a view therefore never runs between a check
 * and the call it guards: none of these functions runs caller code, and
 * anything that is not a real `TypedArray` or `DataView` is refused with a
 * `TypeError` naming the call.
 *
 * @module
 */
import { checkInteger, showValue } from "./validate.ts";
import { EINTR, errnoCell } from "./errno.ts";

type Getter<T> = (self: unknown) => T;

const reflectApply = Reflect.apply;
const getPrototypeOf = Object.getPrototypeOf;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const UnsafePointerOf = Deno.UnsafePointer.of;
const UnsafePointerValue = Deno.UnsafePointer.value;
const IntrinsicUint8Array = Uint8Array;
const IntrinsicUint32Array = Uint32Array;

/** The getter of `name` on `proto`, callable as `get(self)` without `.call`. */
function getter<T>(proto: object, name: string | symbol): Getter<T> {
  const get = getOwnPropertyDescriptor(proto, name)!.get!;
  return (self: unknown) => reflectApply(get, self, []) as T;
}

const TypedArrayPrototype = getPrototypeOf(Uint8Array.prototype) as object;
/** `undefined` for anything that is not a real typed array: never throws. */
const typedArrayTag = getter<string | undefined>(TypedArrayPrototype, Symbol.toStringTag);
const typedArrayByteLength = getter<number>(TypedArrayPrototype, "byteLength");
const typedArrayByteOffset = getter<number>(TypedArrayPrototype, "byteOffset");
const typedArrayBuffer = getter<ArrayBufferLike>(TypedArrayPrototype, "buffer");
const typedArrayLength = getter<number>(TypedArrayPrototype, "length");
const dataViewByteLength = getter<number>(DataView.prototype, "byteLength");
const dataViewByteOffset = getter<number>(DataView.prototype, "byteOffset");
const dataViewBuffer = getter<ArrayBufferLike>(DataView.prototype, "buffer");
const arrayBufferResizable = getter<boolean>(ArrayBuffer.prototype, "resizable");
const sharedArrayBufferByteLength = getter<number>(SharedArrayBuffer.prototype, "byteLength");

function notAView(call: string, what: string, value: unknown): TypeError {
  const kind = value === null ? "null" : typeof value;
  return new TypeError(
    `Cannot ${call}: ${what} is not a TypedArray or DataView (got ${kind}); a look-alike could lie about its memory`,
  );
}

/** Whether `value` is a real `DataView` (detached or not). */
function isDataView(value: unknown): boolean {
  try {
    dataViewBuffer(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The bytes `view` covers now, through the intrinsic getters: 0 for a
 * detached or out-of-bounds view. Throws `TypeError` ("Cannot <call>:
 * <what> is not a TypedArray or DataView") for anything else. Runs no
 * caller code.
 */
export function byteLengthOf(call: string, what: string, view: unknown): number {
  if (typedArrayTag(view) !== undefined) return typedArrayByteLength(view);
  if (!isDataView(view)) throw notAView(call, what, view);
  try {
    return dataViewByteLength(view);
  } catch {
    return 0; // detached, or out of bounds of a shrunk buffer
  }
}

/** `view`'s buffer, offset and length as the engine holds them now. */
interface Extent {
  buffer: ArrayBufferLike;
  byteOffset: number;
  byteLength: number;
}

/** {@linkcode byteLengthOf} with the buffer and offset too. */
function extentOf(call: string, what: string, view: unknown): Extent {
  if (typedArrayTag(view) !== undefined) {
    return {
      buffer: typedArrayBuffer(view),
      byteOffset: typedArrayByteOffset(view),
      byteLength: typedArrayByteLength(view),
    };
  }
  if (!isDataView(view)) throw notAView(call, what, view);
  const buffer = dataViewBuffer(view);
  try {
    return {
      buffer,
      byteOffset: dataViewByteOffset(view),
      byteLength: dataViewByteLength(view),
    };
  } catch {
    return { buffer, byteOffset: 0, byteLength: 0 };
  }
}

/**
 * The address of `view`'s first byte and its length now, or `[0n, 0]` when
 * it covers no bytes. The pointer is taken from the buffer the engine holds
 * (reading it also moves a small on-heap array to its fixed off-heap store),
 * so no caller getter runs between the length and the address.
 */
export function addressOf(call: string, what: string, view: unknown): [bigint, number] {
  const { buffer, byteOffset, byteLength } = extentOf(call, what, view);
  if (byteLength === 0) return [0n, 0];
  const p = UnsafePointerOf(buffer);
  return p === null ? [0n, 0] : [UnsafePointerValue(p) + BigInt(byteOffset), byteLength];
}

/**
 * Encode one `struct iovec` for `view` (chunk `index` of the call, for an
 * error message), less its first `skip` bytes, at byte `at` of `out`: its address (`iov_base`) and length (`iov_len`) as the
 * engine holds them now. Returns the length encoded; 0 (and nothing
 * written) when no byte is left. The hot-path form of
 * {@linkcode addressOf}: no allocation for a typed array.
 */
export function encodeIovec(
  call: string,
  index: number,
  view: unknown,
  skip: number,
  out: DataView,
  at: number,
): number {
  let buffer: ArrayBufferLike, byteOffset: number, byteLength: number;
  if (typedArrayTag(view) !== undefined) {
    byteLength = typedArrayByteLength(view);
    if (byteLength <= skip) return 0;
    buffer = typedArrayBuffer(view);
    byteOffset = typedArrayByteOffset(view);
  } else {
    ({ buffer, byteOffset, byteLength } = extentOf(call, `chunk ${index}`, view));
    if (byteLength <= skip) return 0;
  }
  const p = UnsafePointerOf(buffer);
  if (p === null) return 0;
  out.setBigUint64(at, UnsafePointerValue(p) + BigInt(byteOffset + skip), true);
  out.setBigUint64(at + 8, BigInt(byteLength - skip), true);
  return byteLength - skip;
}

/**
 * A fresh `Uint8Array` over exactly the bytes `view` covers now (fixed
 * length; empty when detached), for TypeScript code that reads or writes a
 * caller's view: its methods and getters are the engine's own.
 */
export function bytesOf(call: string, what: string, view: unknown): Uint8Array {
  const { buffer, byteOffset, byteLength } = extentOf(call, what, view);
  return byteLength === 0
    ? new IntrinsicUint8Array(0)
    : new IntrinsicUint8Array(buffer, byteOffset, byteLength);
}

const typedArraySet = (TypedArrayPrototype as { set: (src: ArrayLike<number>) => void }).set;

/**
 * Copy `source` into the start of `view` as far as it fits now (a view
 * detached or shrunk meanwhile takes fewer bytes, or none); returns the
 * bytes copied. Runs no caller code, and allocates nothing for a
 * `Uint8Array`.
 */
export function copyInto(call: string, what: string, view: unknown, source: Uint8Array): number {
  if (typedArrayTag(view) === "Uint8Array") {
    const n = Math.min(source.byteLength, typedArrayByteLength(view));
    if (n === 0) return 0; // detached or shrunk to nothing: set() would throw
    reflectApply(typedArraySet, view, [n === source.byteLength ? source : source.subarray(0, n)]);
    return n;
  }
  const out = bytesOf(call, what, view);
  const n = Math.min(source.byteLength, out.byteLength);
  out.set(source.subarray(0, n));
  return n;
}

/**
 * How many elements the typed array `array` holds now (intrinsic `length`).
 * Throws `TypeError` for anything but a real typed array.
 */
export function elementsOf(call: string, what: string, array: unknown): number {
  if (typedArrayTag(array) === undefined) {
    const kind = array === null ? "null" : typeof array;
    throw new TypeError(`Cannot ${call}: ${what} is not a TypedArray (got ${kind})`);
  }
  return typedArrayLength(array);
}

/**
 * Whether `view` lies over memory that can change size or that another
 * thread can write: a resizable `ArrayBuffer` or a `SharedArrayBuffer`.
 */
export function isResizableOrShared(call: string, what: string, view: unknown): boolean {
  const { buffer } = extentOf(call, what, view);
  try {
    return arrayBufferResizable(buffer);
  } catch {
    sharedArrayBufferByteLength(buffer); // throws for anything else
    return true;
  }
}

/**
 * A private one-element `socklen_t` cell for a length the kernel reads and
 * then writes back (`addrLen`, `valueLen`): the checked value is copied into
 * it before the call, so a caller's cell in shared memory that another
 * thread edits meanwhile cannot widen it.
 */
export const lengthCell: Uint32Array = new IntrinsicUint32Array(1);

// ---------------------------------------------------------------------------
// Integer, fd and length checks.

/** The largest `int` (`INT_MAX`). */
export const INT32_MAX = 0x7fff_ffff;
/** The smallest `int` (`INT_MIN`). */
export const INT32_MIN = -0x8000_0000;
/** The largest `unsigned int` / `uint32_t` / `socklen_t`. */
export const UINT32_MAX = 0xffff_ffff;
/** The largest uid or gid a process can take (`(uid_t)-1` means "no change"). */
export const ID_MAX = 0xffff_fffe;

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
  return new RangeError(`Cannot ${call}: fd ${showValue(fd)} is not a file descriptor (an int)`);
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
    `Cannot ${call}: ${what} ${
      showValue(len)
    } is not an integer from 0 to ${size} (the buffer's bytes)`,
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

/**
 * Whether a raw libc result `r` failed with EINTR (read errno at once,
 * before any other call): the one EINTR-retry test, used as
 * `do r = libc.x(...); while (interrupted(r));`.
 *
 * @example
 * ```ts
 * import { libc, sys } from "@ffinet/ffinet/ffi";
 * let r: number;
 * do r = libc.dup2(1, 1); while (sys.interrupted(r));
 * sys.result(r); // 1
 * ```
 */
export function interrupted(r: number): boolean {
  return r < 0 && errnoCell[0] === EINTR;
}

/**
 * A raw libc result in the kernel's convention: `r` when `>= 0`, else
 * `-errno` (read at once, before any other call).
 *
 * @example
 * ```ts
 * import { libc, sys } from "@ffinet/ffinet/ffi";
 * sys.result(libc.close(-1)); // -9 (-EBADF)
 * ```
 */
export function result(r: number): number {
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * Memory BIOs: OpenSSL's in-memory byte queues, the only way bytes move
 * between ffinet and OpenSSL. TLS records go in and out through a pair of
 * them (ffinet keeps its own `read`/`sendmsg`), and PEM text, DER and names
 * are parsed and printed through them.
 *
 * Every call that takes a view reads its length once, with the built-in
 * `TypedArray.prototype.byteLength` getter (a subclass or a getter cannot
 * lie about it), checks the requested length against it, and passes that
 * same number on: nothing caller code can run sits between the check and
 * the call. `BIO_write` copies the bytes; no BIO keeps a pointer into
 * JavaScript memory.
 *
 * @module
 */
import { openssl } from "./openssl.ts";
import { INT32_MAX } from "./_view.ts";
import { OpenSslError } from "./openssl_error.ts";

const byteLengthGetter = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  "byteLength",
)!.get! as (this: ArrayBufferView) => number;

/**
 * The byte length of `view`, read with the built-in getter (a subclass
 * cannot override it); throws a `TypeError` naming the call unless `view` is
 * a real `Uint8Array`.
 *
 * @example
 * ```ts
 * import { viewLength } from "./openssl_bio.ts";
 * viewLength("write", new Uint8Array(4)); // 4
 * ```
 */
export function viewLength(call: string, view: Uint8Array): number {
  if (!(view instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${call}: the data is not a Uint8Array`);
  }
  try {
    return byteLengthGetter.call(view);
  } catch {
    throw new TypeError(`Cannot ${call}: the data is not a Uint8Array`);
  }
}

/**
 * `len` checked against `size` (0..size and at most `INT_MAX`, an `int`
 * argument of OpenSSL): throws a `RangeError` naming the call otherwise.
 */
export function checkedLength(call: string, len: number | undefined, size: number): number {
  const n = len === undefined ? size : len;
  if (n >>> 0 !== n || n > size || n > INT32_MAX) {
    throw new RangeError(
      `Cannot ${call}: length ${String(len)} is not an integer from 0 to ${
        Math.min(size, INT32_MAX)
      } (the buffer's bytes)`,
    );
  }
  return n;
}

/**
 * `BIO_write(bio, data, len)` with `len` checked against `data`: bytes
 * taken (a memory BIO takes all of them), or <= 0 on failure.
 */
export function bioWrite(bio: Deno.PointerObject, data: Uint8Array, len?: number): number {
  const n = checkedLength("write to BIO", len, viewLength("write to BIO", data));
  if (n === 0) return 0;
  return openssl().crypto.BIO_write(bio, data, n);
}

/**
 * `BIO_read(bio, buf, len)` with `len` checked against `buf`: bytes read,
 * or <= 0 when the BIO is empty.
 */
export function bioRead(bio: Deno.PointerObject, buf: Uint8Array, len?: number): number {
  const n = checkedLength("read from BIO", len, viewLength("read from BIO", buf));
  if (n === 0) return 0;
  return openssl().crypto.BIO_read(bio, buf, n);
}

/** `BIO_ctrl_pending(bio)`: bytes waiting to be read. */
export function bioPending(bio: Deno.PointerObject): number {
  return Number(openssl().crypto.BIO_ctrl_pending(bio));
}

/** `BIO_s_mem()`: a static method table, asked for once. */
let memMethod: Deno.PointerValue | undefined;

/** A new, empty memory BIO (`BIO_new(BIO_s_mem())`); throws an `OpenSslError`. */
export function newMemoryBio(action: string): Deno.PointerObject {
  const { crypto } = openssl();
  memMethod ??= crypto.BIO_s_mem();
  const bio = crypto.BIO_new(memMethod);
  if (bio === null) throw new OpenSslError(action);
  return bio;
}

/**
 * A memory BIO owned by JavaScript: bytes written to it are copied in,
 * bytes read are copied out. Free it with {@linkcode MemoryBio.free} (or
 * `using`).
 *
 * @example
 * ```ts
 * import { MemoryBio } from "./openssl_bio.ts";
 * using bio = MemoryBio.create();
 * bio.write(new TextEncoder().encode("hello"));
 * console.log(bio.pending); // 5
 * console.log(new TextDecoder().decode(bio.readAll())); // hello
 * ```
 */
export class MemoryBio implements Disposable {
  #bio: Deno.PointerObject | null;

  private constructor(bio: Deno.PointerObject) {
    this.#bio = bio;
  }

  /**
   * A new empty memory BIO; throws an `OpenSslError` when OpenSSL cannot
   * allocate one.
   *
   * @example
   * ```ts
   * import { MemoryBio } from "./openssl_bio.ts";
   * MemoryBio.create().free();
   * ```
   */
  static create(): MemoryBio {
    return new MemoryBio(newMemoryBio("create memory BIO"));
  }

  /** The `BIO *` (for calls inside ffi/); throws once freed. */
  get pointer(): Deno.PointerObject {
    if (this.#bio === null) throw new Deno.errors.BadResource("Cannot use BIO: it was freed");
    return this.#bio;
  }

  /** Bytes waiting to be read. */
  get pending(): number {
    return bioPending(this.pointer);
  }

  /**
   * Copy `len` bytes of `data` (default all) in; a `RangeError` for a length
   * over the view. Returns the bytes taken.
   *
   * @example
   * ```ts
   * import { MemoryBio } from "./openssl_bio.ts";
   * using bio = MemoryBio.create();
   * bio.write(new Uint8Array([1, 2, 3]), 2); // 2
   * ```
   */
  write(data: Uint8Array, len?: number): number {
    const n = bioWrite(this.pointer, data, len);
    if (n < 0) throw new OpenSslError("write to BIO");
    return n;
  }

  /**
   * Copy up to `len` bytes (default `buf`'s length) out into `buf`; returns
   * how many (0 when empty).
   *
   * @example
   * ```ts
   * import { MemoryBio } from "./openssl_bio.ts";
   * using bio = MemoryBio.create();
   * bio.write(new Uint8Array([1, 2, 3]));
   * bio.read(new Uint8Array(8)); // 3
   * ```
   */
  read(buf: Uint8Array, len?: number): number {
    const n = bioRead(this.pointer, buf, len);
    return n > 0 ? n : 0;
  }

  /**
   * Everything pending, as a new array.
   *
   * @example
   * ```ts
   * import { MemoryBio } from "./openssl_bio.ts";
   * using bio = MemoryBio.create();
   * bio.readAll().length; // 0
   * ```
   */
  readAll(): Uint8Array {
    const out = new Uint8Array(this.pending);
    let got = 0;
    while (got < out.length) {
      const n = this.read(out.subarray(got));
      if (n === 0) break;
      got += n;
    }
    return out.subarray(0, got);
  }

  /** Everything pending as UTF-8 text. @example `bio.readText()` */
  readText(): string {
    return new TextDecoder().decode(this.readAll());
  }

  /** Free the BIO (idempotent). @example `bio.free()` */
  free(): void {
    const bio = this.#bio;
    if (bio === null) return;
    this.#bio = null;
    openssl().crypto.BIO_free(bio);
  }

  /** Free (for `using`). */
  [Symbol.dispose](): void {
    this.free();
  }
}

/**
 * `text` as a NUL-terminated UTF-8 C string; a `TypeError` naming the call
 * when it holds a NUL (C would cut it there).
 *
 * @example
 * ```ts
 * import { cString } from "./openssl_bio.ts";
 * cString("set host", "example.com").length; // 12
 * ```
 */
export function cString(call: string, text: string): Uint8Array {
  if (typeof text !== "string") {
    throw new TypeError(`Cannot ${call}: ${String(text)} is not a string`);
  }
  if (text.includes("\0")) throw new TypeError(`Cannot ${call}: the text holds a NUL character`);
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** A NUL-terminated string OpenSSL owns, or undefined for NULL. */
export function readCString(pointer: Deno.PointerValue): string | undefined {
  return pointer === null ? undefined : Deno.UnsafePointerView.getCString(pointer);
}

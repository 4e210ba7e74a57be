/**
 * zlib (`libz.so.1`) through one `Deno.dlopen`: raw DEFLATE streams
 * (RFC 1951, no zlib header), as permessage-deflate (RFC 7692) needs.
 *
 * Memory safety: zlib reads and writes through the raw addresses held in
 * its `z_stream` struct, so no caller memory ever reaches it. Each call
 * copies the caller's bytes (by the engine's bounds-checked copy) into
 * this thread's private input area and lets zlib write only into the
 * private output area; the counts given to zlib (`avail_in`,
 * `avail_out`) are computed from those areas' own sizes, and the counts
 * zlib returns are checked against what it was given before any byte is
 * read back. The areas sit between guard bytes (see
 * {@linkcode zlibGuardsIntact}). The `z_stream` structs are private,
 * never resized or transferred, so their addresses (which zlib's state
 * remembers) never change; `close()` frees zlib's state, and a stream
 * that is dropped without `close()` is freed when it is collected.
 *
 * @module
 */
import { checkInteger } from "./_view.ts";

/** The zlib symbols ffinet binds, with their C prototypes. */
export const zlibSymbols = {
  // const char *zlibVersion(void);
  zlibVersion: { parameters: [], result: "pointer" },
  // int deflateInit2_(z_streamp strm, int level, int method, int windowBits, int memLevel,
  //                   int strategy, const char *version, int stream_size);
  deflateInit2_: {
    parameters: ["buffer", "i32", "i32", "i32", "i32", "i32", "pointer", "i32"],
    result: "i32",
  },
  // int deflate(z_streamp strm, int flush);
  deflate: { parameters: ["buffer", "i32"], result: "i32" },
  // int deflateReset(z_streamp strm);
  deflateReset: { parameters: ["buffer"], result: "i32" },
  // int deflateEnd(z_streamp strm);
  deflateEnd: { parameters: ["buffer"], result: "i32" },
  // int inflateInit2_(z_streamp strm, int windowBits, const char *version, int stream_size);
  inflateInit2_: { parameters: ["buffer", "i32", "pointer", "i32"], result: "i32" },
  // int inflate(z_streamp strm, int flush);
  inflate: { parameters: ["buffer", "i32"], result: "i32" },
  // int inflateReset(z_streamp strm);
  inflateReset: { parameters: ["buffer"], result: "i32" },
  // int inflateEnd(z_streamp strm);
  inflateEnd: { parameters: ["buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Zlib = Deno.DynamicLibrary<typeof zlibSymbols>["symbols"];

// zlib's constants (zlib.h).
const Z_OK = 0;
const Z_STREAM_END = 1;
const Z_NO_FLUSH = 0;
const Z_SYNC_FLUSH = 2;
const Z_FINISH = 4;
const Z_BUF_ERROR = -5;
const Z_DEFLATED = 8;
const Z_DEFAULT_STRATEGY = 0;

/**
 * `sizeof(z_stream)` on LP64 (x86_64, aarch64) and the offsets of the
 * fields written here:
 * `{ next_in @0, avail_in @8, total_in @16, next_out @24, avail_out @32,
 * total_out @40, msg @48, state @56, zalloc @64, zfree @72, opaque @80,
 * data_type @88, adler @96, reserved @104 }`.
 */
const Z_STREAM_SIZE = 112;
const NEXT_IN = 0;
const AVAIL_IN = 8;
const NEXT_OUT = 24;
const AVAIL_OUT = 32;

/** Bytes of each private area, and of the guards around it. */
const AREA = 32 * 1024;
const GUARD = 16;
const GUARD_BYTE = 0xa5;

let lib: { zlib: Zlib; version: Deno.PointerValue } | undefined;

function load(): { zlib: Zlib; version: Deno.PointerValue } {
  if (lib !== undefined) return lib;
  let dl: Deno.DynamicLibrary<typeof zlibSymbols>;
  try {
    dl = Deno.dlopen("libz.so.1", zlibSymbols);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new Error("Cannot load libz: ffinet needs --allow-ffi", { cause: e });
    }
    throw new Error(`Cannot load libz.so.1: ${(e as Error).message}`, { cause: e });
  }
  lib = { zlib: dl.symbols, version: dl.symbols.zlibVersion() };
  return lib;
}

/** A private area between guard bytes, and its address. */
class Area {
  readonly whole = new Uint8Array(new ArrayBuffer(AREA + 2 * GUARD)).fill(GUARD_BYTE);
  readonly view = this.whole.subarray(GUARD, GUARD + AREA);
  readonly address = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.view)));

  intact(): boolean {
    const w = this.whole;
    for (let i = 0; i < GUARD; i++) {
      if (w[i] !== GUARD_BYTE || w[GUARD + AREA + i] !== GUARD_BYTE) return false;
    }
    return true;
  }
}

let areas: { input: Area; output: Area } | undefined;

function scratch(): { input: Area; output: Area } {
  return areas ??= { input: new Area(), output: new Area() };
}

/**
 * Whether the guard bytes around this thread's private zlib areas are
 * untouched (true before any stream was made).
 *
 * @example
 * ```ts
 * import { zlibGuardsIntact } from "@ffinet/ffinet/ffi";
 * console.log(zlibGuardsIntact()); // true
 * ```
 */
export function zlibGuardsIntact(): boolean {
  return areas === undefined || (areas.input.intact() && areas.output.intact());
}

/**
 * A failure zlib reported ("Cannot inflate: invalid data (zlib -3)").
 *
 * @example
 * ```ts
 * import { ZlibError } from "@ffinet/ffinet/ffi";
 * const e = new ZlibError("inflate", -3);
 * console.log(e.code); // -3
 * ```
 */
export class ZlibError extends Error {
  /** zlib's return code (`Z_DATA_ERROR` is -3, `Z_MEM_ERROR` -4 …). */
  readonly code: number;
  /** An error for `call` that returned `code`. */
  constructor(call: string, code: number) {
    const what = code === -3
      ? "invalid data"
      : code === -4
      ? "out of memory"
      : code === -2
      ? "inconsistent stream"
      : "failure";
    super(`Cannot ${call}: ${what} (zlib ${code})`);
    this.name = "ZlibError";
    this.code = code;
  }
}

/** The `z_stream` of one stream and its lifecycle. */
class ZStream {
  readonly strm = new Uint8Array(new ArrayBuffer(Z_STREAM_SIZE));
  readonly fields = new DataView(this.strm.buffer);
  closed = false;

  setInput(length: number): void {
    checkInteger("zlib", "avail_in", length, 0, AREA);
    this.fields.setBigUint64(NEXT_IN, scratch().input.address, true);
    this.fields.setUint32(AVAIL_IN, length, true);
  }

  setOutput(length: number): void {
    checkInteger("zlib", "avail_out", length, 1, AREA);
    this.fields.setBigUint64(NEXT_OUT, scratch().output.address, true);
    this.fields.setUint32(AVAIL_OUT, length, true);
  }

  /** What zlib left of `given` (checked: never more than it was given). */
  left(field: number, given: number, call: string): number {
    const n = this.fields.getUint32(field, true);
    if (n > given) throw new Error(`Cannot ${call}: zlib reports ${n} of ${given} bytes left`);
    return n;
  }
}

/** Concatenate `parts` (of `total` bytes) into one new buffer. */
function join(parts: Uint8Array<ArrayBuffer>[], total: number): Uint8Array<ArrayBuffer> {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
function intrinsicGetter(name: string): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(typedArrayProto, name)!.get!;
}
/** The typed array getters themselves: a subclass cannot lie through them. */
const lengthGetter = intrinsicGetter("length");
const bufferGetter = intrinsicGetter("buffer");
const offsetGetter = intrinsicGetter("byteOffset");

/** `data` as a plain view of its own bytes, its length read once by the intrinsic getter. */
function plainView(call: string, data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${call}: data is not a Uint8Array`);
  }
  const length = lengthGetter.call(data) as number;
  const buffer = bufferGetter.call(data) as ArrayBufferLike;
  return new Uint8Array(buffer, offsetGetter.call(data) as number, length);
}

/** Copy `data[from, from+n)` into the input area (an engine-checked copy). */
function copyIn(data: Uint8Array, from: number, n: number): void {
  scratch().input.view.set(data.subarray(from, from + n));
}

const deflateFinalizer = new FinalizationRegistry<Uint8Array>((strm) => {
  lib?.zlib.deflateEnd(strm);
});
const inflateFinalizer = new FinalizationRegistry<Uint8Array>((strm) => {
  lib?.zlib.inflateEnd(strm);
});

/** Options of a {@linkcode RawDeflate}. */
export interface RawDeflateOptions {
  /** Compression level 0-9, or -1 for zlib's default (6). Default -1. */
  level?: number;
  /** Base-2 log of the window, 9-15 (zlib cannot make raw streams with 8). Default 15. */
  windowBits?: number;
  /** Memory for the compression state, 1-9 (zlib's default 8). */
  memLevel?: number;
}

/**
 * A raw DEFLATE compressor (`deflateInit2` with negative `windowBits`).
 *
 * @example
 * ```ts
 * import { RawDeflate, RawInflate } from "@ffinet/ffinet/ffi";
 * const deflate = new RawDeflate();
 * const inflate = new RawInflate();
 * const packed = deflate.compress(new TextEncoder().encode("hello hello hello"), "sync");
 * console.log(new TextDecoder().decode(inflate.inflate(packed, 1024)!)); // hello hello hello
 * deflate.close();
 * inflate.close();
 * ```
 */
export class RawDeflate {
  readonly #z = new ZStream();

  /** A new stream; throws a `ZlibError` when zlib cannot make one. */
  constructor(options: RawDeflateOptions = {}) {
    const level = checkInteger("deflate", "level", options.level ?? -1, -1, 9);
    const windowBits = checkInteger("deflate", "windowBits", options.windowBits ?? 15, 9, 15);
    const memLevel = checkInteger("deflate", "memLevel", options.memLevel ?? 8, 1, 9);
    const { zlib, version } = load();
    const r = zlib.deflateInit2_(
      this.#z.strm,
      level,
      Z_DEFLATED,
      -windowBits,
      memLevel,
      Z_DEFAULT_STRATEGY,
      version,
      Z_STREAM_SIZE,
    );
    if (r !== Z_OK) throw new ZlibError("deflate", r);
    deflateFinalizer.register(this, this.#z.strm, this);
  }

  /**
   * Compress `data` and flush: `"sync"` ends on a byte boundary with the
   * empty stored block `00 00 ff ff` (the stream goes on); `"finish"` ends
   * the stream (then `reset()` before more).
   */
  compress(data: Uint8Array, flush: "sync" | "finish" = "sync"): Uint8Array<ArrayBuffer> {
    const z = this.#z;
    if (z.closed) throw new Error("Cannot compress: the stream is closed");
    const input = plainView("compress", data);
    const total = input.length;
    const mode = flush === "finish" ? Z_FINISH : Z_SYNC_FLUSH;
    const { zlib } = load();
    const out = scratch().output.view;
    const parts: Uint8Array<ArrayBuffer>[] = [];
    let produced = 0;
    let at = 0;
    for (;;) {
      const n = Math.min(AREA, total - at);
      copyIn(input, at, n);
      at += n;
      z.setInput(n);
      const last = at === total;
      for (;;) {
        z.setOutput(AREA);
        const r = zlib.deflate(z.strm, last ? mode : Z_NO_FLUSH);
        if (r !== Z_OK && r !== Z_STREAM_END && r !== Z_BUF_ERROR) {
          throw new ZlibError("deflate", r);
        }
        const room = z.left(AVAIL_OUT, AREA, "deflate");
        const wrote = AREA - room;
        if (wrote > 0) {
          parts.push(out.slice(0, wrote));
          produced += wrote;
        }
        if (room > 0 && z.left(AVAIL_IN, n, "deflate") === 0) break;
      }
      if (last) break;
    }
    return join(parts, produced);
  }

  /** Forget the window (a new stream, same settings). */
  reset(): void {
    if (this.#z.closed) return;
    const r = load().zlib.deflateReset(this.#z.strm);
    if (r !== Z_OK) throw new ZlibError("reset the deflate stream", r);
  }

  /** Free zlib's state (idempotent). */
  close(): void {
    if (this.#z.closed) return;
    this.#z.closed = true;
    deflateFinalizer.unregister(this);
    load().zlib.deflateEnd(this.#z.strm);
  }
}

/** Options of a {@linkcode RawInflate}. */
export interface RawInflateOptions {
  /** Base-2 log of the largest window the input may use, 8-15. Default 15. */
  windowBits?: number;
}

/**
 * A raw DEFLATE decompressor (`inflateInit2` with negative `windowBits`),
 * with an output limit enforced while inflating.
 *
 * @example
 * ```ts
 * import { RawDeflate, RawInflate } from "@ffinet/ffinet/ffi";
 * const packed = new RawDeflate().compress(new Uint8Array(1_000_000), "sync");
 * const inflate = new RawInflate();
 * console.log(inflate.inflate(packed, 1000)); // null: over the limit, stopped early
 * inflate.close();
 * ```
 */
export class RawInflate {
  readonly #z = new ZStream();

  /** A new stream; throws a `ZlibError` when zlib cannot make one. */
  constructor(options: RawInflateOptions = {}) {
    const windowBits = checkInteger("inflate", "windowBits", options.windowBits ?? 15, 8, 15);
    const { zlib, version } = load();
    const r = zlib.inflateInit2_(this.#z.strm, -windowBits, version, Z_STREAM_SIZE);
    if (r !== Z_OK) throw new ZlibError("inflate", r);
    inflateFinalizer.register(this, this.#z.strm, this);
  }

  /**
   * Inflate the next bytes of the stream. Returns the output, or `null` as
   * soon as it would pass `maxOutput` bytes (zlib is never given room for
   * more than `maxOutput + 1`, so a bomb stops while inflating).
   *
   * @throws {ZlibError} When the data is not valid DEFLATE.
   */
  inflate(data: Uint8Array, maxOutput: number): Uint8Array<ArrayBuffer> | null {
    const z = this.#z;
    if (z.closed) throw new Error("Cannot inflate: the stream is closed");
    checkInteger("inflate", "maxOutput", maxOutput, 0, Number.MAX_SAFE_INTEGER);
    const input = plainView("inflate", data);
    const total = input.length;
    const { zlib } = load();
    const out = scratch().output.view;
    const parts: Uint8Array<ArrayBuffer>[] = [];
    let produced = 0;
    let at = 0;
    do {
      const n = Math.min(AREA, total - at);
      copyIn(input, at, n);
      at += n;
      z.setInput(n);
      for (;;) {
        const room = Math.min(AREA, maxOutput - produced + 1);
        z.setOutput(room);
        let r = zlib.inflate(z.strm, Z_SYNC_FLUSH);
        const wrote = room - z.left(AVAIL_OUT, room, "inflate");
        if (wrote > 0) {
          produced += wrote;
          if (produced > maxOutput) return null;
          parts.push(out.slice(0, wrote));
        }
        const inLeft = z.left(AVAIL_IN, n, "inflate");
        if (r === Z_STREAM_END) {
          // A final block ended the stream: what follows starts a new one.
          r = zlib.inflateReset(z.strm);
          if (r !== Z_OK) throw new ZlibError("inflate", r);
          if (inLeft === 0) break;
          // The unread input stays in the area: point zlib at it again.
          const area = scratch().input.view;
          area.copyWithin(0, n - inLeft, n);
          z.setInput(inLeft);
          continue;
        }
        if (r === Z_BUF_ERROR) break; // no progress possible: needs more input
        if (r !== Z_OK) throw new ZlibError("inflate", r);
        if (inLeft === 0 && wrote < room) break;
      }
    } while (at < total);
    return join(parts, produced);
  }

  /** Forget the window (a new stream, same settings). */
  reset(): void {
    if (this.#z.closed) return;
    const r = load().zlib.inflateReset(this.#z.strm);
    if (r !== Z_OK) throw new ZlibError("reset the inflate stream", r);
  }

  /** Free zlib's state (idempotent). */
  close(): void {
    if (this.#z.closed) return;
    this.#z.closed = true;
    inflateFinalizer.unregister(this);
    load().zlib.inflateEnd(this.#z.strm);
  }
}

/**
 * The zlib bindings: raw DEFLATE both ways against `node:zlib` (another
 * binding), the output limit enforced while inflating, guard bytes around
 * the private areas and around caller buffers (zlib neither reads nor
 * writes past a view), and bad arguments, lying subclasses and shared or
 * resizable buffers refused or handled with a clear error.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import zlib from "node:zlib";
import { Buffer } from "node:buffer";
import { RawDeflate, RawInflate, ZlibError, zlibGuardsIntact } from "../../ffi/zlib.ts";
import { prng } from "../_helpers.ts";

// libz is opened on first use, once per process: before the sanitized tests.
new RawDeflate().close();

const AREA = 32 * 1024;

function sample(size: number, rand: () => number, kind: number): Uint8Array {
  if (kind === 0) return new Uint8Array(size).map(() => Math.floor(rand() * 256));
  if (kind === 1) return new Uint8Array(size).map((_, i) => (i * 7) % 13);
  return new TextEncoder().encode("lorem ipsum dolor ".repeat(Math.ceil(size / 18))).subarray(
    0,
    size,
  );
}

Deno.test("zlib: raw DEFLATE round trips against node:zlib, at and around the area size", () => {
  const rand = prng(1951);
  const deflate = new RawDeflate({ level: 6 });
  const inflate = new RawInflate();
  try {
    for (const size of [0, 1, 100, AREA - 1, AREA, AREA + 1, 3 * AREA + 5, 300_000]) {
      for (const kind of [0, 1, 2]) {
        const data = sample(size, rand, kind);
        // Ours -> node.
        const packed = deflate.compress(data, "sync");
        assertEquals(Array.from(packed.subarray(-4)), [0, 0, 0xff, 0xff]);
        const viaNode = zlib.inflateRawSync(Buffer.from(packed), {
          finishFlush: zlib.constants.Z_SYNC_FLUSH,
        });
        assertEquals(viaNode.length, size);
        assert(Buffer.from(data).equals(viaNode), `ours -> node, ${size} bytes, kind ${kind}`);
        deflate.reset();
        // Node -> ours.
        const fromNode = zlib.deflateRawSync(Buffer.from(data), {
          finishFlush: zlib.constants.Z_FINISH,
        });
        const back = inflate.inflate(new Uint8Array(fromNode), size)!;
        assert(
          Buffer.from(data).equals(Buffer.from(back)),
          `node -> ours, ${size} bytes, kind ${kind}`,
        );
        inflate.reset();
      }
    }
    assert(zlibGuardsIntact());
  } finally {
    deflate.close();
    inflate.close();
  }
});

Deno.test("zlib: inflate stops at maxOutput (null), exact limits pass", () => {
  const data = new Uint8Array(200_000).fill(1);
  const packed = new RawDeflate().compress(data, "finish");
  for (
    const [limit, ok] of [[200_000, true], [199_999, false], [0, false], [AREA, false]] as const
  ) {
    const inflate = new RawInflate();
    try {
      const out = inflate.inflate(packed, limit);
      assertEquals(out === null ? null : out.length, ok ? 200_000 : null, `limit ${limit}`);
    } finally {
      inflate.close();
    }
  }
  assert(zlibGuardsIntact());
});

Deno.test("zlib: guard bytes: a view in a larger buffer is read and written only within its bytes", () => {
  const data = new TextEncoder().encode("guarded payload ".repeat(100));
  const packed = new RawDeflate().compress(data, "sync");
  // The compressed bytes in the middle of a buffer full of bytes that are not DEFLATE.
  const big = new Uint8Array(packed.length + 64).fill(0xff);
  big.set(packed, 32);
  const before = big.slice();
  const inflate = new RawInflate();
  try {
    const out = inflate.inflate(big.subarray(32, 32 + packed.length), 1 << 20)!;
    assertEquals(new TextDecoder().decode(out), "guarded payload ".repeat(100));
    assertEquals(big, before, "the caller's buffer is untouched, guards included");
    // The same view one byte longer reads a guard byte: zlib must see it and refuse.
    inflate.reset();
    const longer = big.subarray(32, 32 + packed.length + 1);
    let failed = false;
    try {
      const r = inflate.inflate(longer, 1 << 20);
      failed = r === null;
    } catch (e) {
      failed = e instanceof ZlibError;
    }
    assert(failed, "a byte past the data was not read: the view bounds are what zlib sees");
  } finally {
    inflate.close();
  }
  assert(zlibGuardsIntact());
});

Deno.test("zlib: bad arguments and closed streams throw errors naming the call", () => {
  assertThrows(() => new RawDeflate({ windowBits: 8 }), RangeError, "Cannot deflate: windowBits 8");
  assertThrows(() => new RawDeflate({ level: 10 }), RangeError, "Cannot deflate: level 10");
  assertThrows(() => new RawDeflate({ memLevel: 0 }), RangeError, "Cannot deflate: memLevel 0");
  assertThrows(
    () => new RawInflate({ windowBits: 16 }),
    RangeError,
    "Cannot inflate: windowBits 16",
  );
  const inflate = new RawInflate();
  const deflate = new RawDeflate();
  assertThrows(
    () => inflate.inflate(new Uint8Array(1), -1),
    RangeError,
    "Cannot inflate: maxOutput -1",
  );
  assertThrows(() => inflate.inflate(new Uint8Array(1), 0.5), RangeError);
  assertThrows(
    () => inflate.inflate([1, 2] as unknown as Uint8Array, 10),
    TypeError,
    "Cannot inflate",
  );
  assertThrows(() => deflate.compress("x" as unknown as Uint8Array), TypeError, "Cannot compress");
  assertThrows(
    () => inflate.inflate(new Uint8Array([0xff, 0xff, 0xff]), 10),
    ZlibError,
    "Cannot inflate: invalid data",
  );
  inflate.close();
  inflate.close();
  deflate.close();
  assertThrows(
    () => inflate.inflate(new Uint8Array(1), 10),
    Error,
    "Cannot inflate: the stream is closed",
  );
  assertThrows(
    () => deflate.compress(new Uint8Array(1)),
    Error,
    "Cannot compress: the stream is closed",
  );
});

Deno.test("zlib: a lying subclass, a shared and a resizable buffer", () => {
  class Liar extends Uint8Array {
    override get length(): number {
      return 1 << 30;
    }
    override get byteLength(): number {
      return 1 << 30;
    }
    override subarray(): Uint8Array<ArrayBuffer> {
      return new Uint8Array(1 << 20);
    }
  }
  const text = new TextEncoder().encode("the real bytes");
  const liar = new Liar(text.length);
  liar.set(text);
  const deflate = new RawDeflate();
  const inflate = new RawInflate();
  try {
    // Only the view's real 14 bytes are compressed.
    const packed = deflate.compress(liar, "sync");
    assertEquals(new TextDecoder().decode(inflate.inflate(packed, 100)!), "the real bytes");
    const shared = new Uint8Array(new SharedArrayBuffer(text.length));
    shared.set(text);
    assertEquals(
      new TextDecoder().decode(inflate.inflate(deflate.compress(shared), 100)!),
      "the real bytes",
    );
    const resizable = new ArrayBuffer(text.length, { maxByteLength: 1024 });
    const tracking = new Uint8Array(resizable);
    tracking.set(text);
    const packed2 = deflate.compress(tracking);
    resizable.resize(2); // after the call: the output was made from the 14 bytes
    assertEquals(new TextDecoder().decode(inflate.inflate(packed2, 100)!), "the real bytes");
  } finally {
    deflate.close();
    inflate.close();
  }
  assert(zlibGuardsIntact());
});

/**
 * The RFC 6455 frame parser on its own: every rule with the close code it
 * fails with, fail-fast UTF-8 mid-frame and across fragments, the limits,
 * and the serializer's output read back.
 *
 * @module
 */
import { assertEquals, assertThrows } from "@std/assert";
import {
  createMessageDeflate,
  encodeClosePayload,
  encodeFrame,
  FrameParser,
  type MessageInflater,
  negotiatePerMessageDeflate,
  Opcode,
} from "../../../http/websocket/mod.ts";
import { RawDeflate } from "../../../ffi/zlib.ts";
import { clientFrame, concat, rawFrame, Recorder } from "./_frames.ts";

function parse(
  bytes: Uint8Array,
  options: ConstructorParameters<typeof FrameParser>[1] = {},
  step = 0,
): Recorder {
  const rec = new Recorder();
  const p = new FrameParser(rec, options);
  if (step === 0) p.push(bytes);
  else for (let i = 0; i < bytes.length; i += step) p.push(bytes.subarray(i, i + step));
  return rec;
}

Deno.test("parser: text and binary of every length form, whole and one byte at a time", () => {
  for (const len of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    const bin = new Uint8Array(len).map((_, i) => (i * 31) & 255);
    const text = "é".repeat(Math.floor(len / 2)) + (len % 2 ? "a" : "");
    const bytes = concat(clientFrame(Opcode.Binary, bin), clientFrame(Opcode.Text, text));
    for (const step of len > 1000 ? [0, 997] : [0, 1, 3]) {
      const rec = parse(bytes, {}, step);
      assertEquals(rec.log, [`binary:${Array.from(bin).join(",")}`, `text:${text}`], `len ${len}`);
    }
  }
});

Deno.test("parser: fragments with control frames between them; pings and pongs keep their payload", () => {
  const bytes = concat(
    clientFrame(Opcode.Text, "Hel", false),
    clientFrame(Opcode.Ping, "p1"),
    clientFrame(Opcode.Continuation, "lo, ", false),
    clientFrame(Opcode.Pong, "p2"),
    clientFrame(Opcode.Continuation, "world", true),
    clientFrame(Opcode.Binary, new Uint8Array([1]), false),
    clientFrame(Opcode.Continuation, new Uint8Array([2, 3]), true),
  );
  for (const step of [0, 1, 2, 5]) {
    assertEquals(parse(bytes, {}, step).log, [
      "ping:112,49",
      "pong:112,50",
      "text:Hello, world",
      "binary:1,2,3",
    ]);
  }
});

Deno.test("parser: reserved bits, unknown opcodes and misplaced frames fail with 1002", () => {
  const cases: [string, Uint8Array][] = [
    ["rsv1 without extension", rawFrame(1, "a", { rsv1: true })],
    ["rsv2", rawFrame(1, "a", { rsv2: true })],
    ["rsv3", rawFrame(2, "a", { rsv3: true })],
    ["rsv2 on ping", rawFrame(9, "", { rsv2: true })],
    ...[3, 4, 5, 6, 7, 11, 12, 13, 14, 15].map((op): [string, Uint8Array] => [
      `opcode ${op}`,
      rawFrame(op, ""),
    ]),
    ["fragmented ping", rawFrame(9, "", { fin: false })],
    ["fragmented close", rawFrame(8, "", { fin: false })],
    ["ping of 126 bytes", rawFrame(9, new Uint8Array(126))],
    ["close of 126 bytes", rawFrame(8, new Uint8Array(126))],
    ["unmasked client frame", rawFrame(1, "a", { masked: false })],
    ["continuation first", rawFrame(0, "a")],
    ["text inside a fragmented text", concat(rawFrame(1, "a", { fin: false }), rawFrame(1, "b"))],
    ["binary inside a fragmented text", concat(rawFrame(1, "a", { fin: false }), rawFrame(2, "b"))],
    ["64-bit length with its top bit", rawFrame(2, "", { lengthHigh: 0x80000000 })],
    ["close of 1 byte", rawFrame(8, new Uint8Array([3]))],
  ];
  for (const [name, bytes] of cases) {
    const rec = parse(concat(bytes, clientFrame(Opcode.Text, "after")));
    assertEquals(rec.log, ["fail:1002"], name);
  }
});

Deno.test("parser: a masked frame fails a client-role parser; an unmasked one passes it", () => {
  assertEquals(parse(rawFrame(1, "a"), { role: "client" }).log, ["fail:1002"]);
  assertEquals(parse(rawFrame(1, "a", { masked: false }), { role: "client" }).log, ["text:a"]);
});

Deno.test("parser: close codes: empty is 1005, only codes a peer may send pass, reason must be UTF-8", () => {
  assertEquals(parse(rawFrame(8, "")).log, ["close:1005:"]);
  for (
    const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
  ) {
    assertEquals(parse(rawFrame(8, encodeClosePayload(code, "ok"))).log, [`close:${code}:ok`]);
  }
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    const payload = new Uint8Array([code >>> 8, code & 255]);
    assertEquals(parse(rawFrame(8, payload)).log, ["fail:1002"], `code ${code}`);
  }
  const badReason = new Uint8Array([
    0x03,
    0xe8,
    0xce,
    0xba,
    0xe1,
    0xbd,
    0xb9,
    0xcf,
    0x83,
    0xed,
    0xa0,
    0x80,
  ]);
  assertEquals(parse(rawFrame(8, badReason)).log, ["fail:1007"]);
  // Nothing after the close frame is parsed.
  assertEquals(
    parse(concat(rawFrame(8, encodeClosePayload(1000)), clientFrame(Opcode.Text, "x"))).log,
    ["close:1000:"],
  );
});

Deno.test("parser: invalid UTF-8 fails with 1007 at the first bad byte, before the frame ends", () => {
  // A 1000-byte text frame whose 3rd byte is invalid: only its first 12 bytes arrive.
  const payload = new Uint8Array(1000).fill(0x61);
  payload[2] = 0xff;
  const frame = rawFrame(1, payload);
  const rec = new Recorder();
  const p = new FrameParser(rec);
  p.push(frame.subarray(0, 12));
  assertEquals(rec.log, ["fail:1007"]);
  // Impossible sequences fail at their second byte (overlong, surrogate, > U+10FFFF).
  for (const bad of [[0xe0, 0x80], [0xed, 0xa0], [0xf4, 0x90], [0xc0], [0xf8]]) {
    const r = new Recorder();
    const q = new FrameParser(r);
    q.push(
      rawFrame(1, new Uint8Array([0x61, ...bad, 0x80, 0x80, 0x80]), { fin: false }).subarray(
        0,
        8 + bad.length,
      ),
    );
    assertEquals(r.log, ["fail:1007"], `bytes ${bad}`);
  }
});

Deno.test("parser: UTF-8 split across fragments is valid; invalid across fragments fails in the fragment", () => {
  const kappa = new Uint8Array([0xce, 0xba]);
  const ok = concat(
    rawFrame(1, kappa.subarray(0, 1), { fin: false }),
    rawFrame(0, kappa.subarray(1), { fin: true }),
  );
  assertEquals(parse(ok, {}, 1).log, ["text:κ"]);
  // The first fragment is valid so far; the second starts with a byte that cannot continue.
  const bad = concat(
    rawFrame(1, new Uint8Array([0xce]), { fin: false }),
    rawFrame(0, new Uint8Array([0x41]), { fin: false }),
  );
  assertEquals(parse(bad).log, ["fail:1007"]);
  // A message that ends inside a sequence.
  assertEquals(parse(rawFrame(1, new Uint8Array([0x61, 0xce]))).log, ["fail:1007"]);
});

Deno.test("parser: limits: a frame over maxMessageSize fails on its header, more fragments than maxFragments fail", () => {
  const limits = { maxMessageSize: 100, maxFragments: 3 };
  // Only the header of a 101-byte frame arrives: 1009 at once.
  assertEquals(parse(rawFrame(2, new Uint8Array(101)).subarray(0, 8), { limits }).log, [
    "fail:1009",
  ]);
  assertEquals(parse(rawFrame(2, new Uint8Array(100)), { limits }).log.length, 1);
  // Two frames of 60 bytes: the second passes the message limit.
  assertEquals(
    parse(
      concat(rawFrame(2, new Uint8Array(60), { fin: false }), rawFrame(0, new Uint8Array(60))),
      {
        limits,
      },
    ).log,
    ["fail:1009"],
  );
  const frags = (n: number) =>
    concat(
      ...Array.from({ length: n }, (_, i) => rawFrame(i === 0 ? 1 : 0, "a", { fin: i === n - 1 })),
    );
  assertEquals(parse(frags(3), { limits }).log, ["text:aaa"]);
  assertEquals(parse(frags(4), { limits }).log, ["fail:1009"]);
  assertThrows(() => new FrameParser(new Recorder(), { limits: { maxFragments: 0 } }), RangeError);
});

Deno.test("parser: compressed messages inflate (context taken over, any split); RSV1 on a continuation or a control frame is 1002", () => {
  const agreed = negotiatePerMessageDeflate("permessage-deflate", {
    clientNoContextTakeover: false,
  })!;
  const packer = new RawDeflate();
  const pack = (s: string) => {
    const out = packer.compress(new TextEncoder().encode(s), "sync");
    return out.subarray(0, out.length - 4);
  };
  const a = pack("Hello, Hello, Hello!");
  const b = pack("Hello again, Hello again (context taken over)");
  packer.close();
  const bytes = concat(
    rawFrame(1, a, { rsv1: true }),
    rawFrame(1, b.subarray(0, 3), { rsv1: true, fin: false }),
    rawFrame(0, b.subarray(3)),
  );
  for (const step of [0, 1, 7]) {
    const inflater = createMessageDeflate(agreed);
    try {
      assertEquals(parse(bytes, { inflater }, step).log, [
        "text:Hello, Hello, Hello!",
        "text:Hello again, Hello again (context taken over)",
      ]);
    } finally {
      inflater.close();
    }
  }
  const inflater = createMessageDeflate(agreed);
  try {
    assertEquals(
      parse(concat(rawFrame(1, a, { fin: false, rsv1: true }), rawFrame(0, a, { rsv1: true })), {
        inflater,
      }).log,
      ["fail:1002"],
    );
    assertEquals(parse(rawFrame(9, "", { rsv1: true }), { inflater }).log, ["fail:1002"]);
    // Not DEFLATE at all: 1007.
    assertEquals(
      parse(rawFrame(2, new Uint8Array([0xff, 0xff, 0xff]), { rsv1: true }), {
        inflater: createMessageDeflate(agreed),
      }).log,
      ["fail:1007"],
    );
  } finally {
    inflater.close();
  }
});

Deno.test("parser: a decompression bomb stops at the limit while inflating, not after", () => {
  const bomb = new RawDeflate({ level: 9 }).compress(new Uint8Array(64 * 1024 * 1024), "sync");
  const payload = bomb.subarray(0, bomb.length - 4);
  let produced = 0;
  const agreed = negotiatePerMessageDeflate("permessage-deflate")!;
  const real = createMessageDeflate(agreed);
  const counting: MessageInflater = {
    inflate(input, limit) {
      const out = real.inflate(input, limit);
      if (typeof out !== "number") produced += out.length;
      return out;
    },
    endMessage: () => real.endMessage(),
  };
  try {
    const rec = parse(rawFrame(2, payload, { rsv1: true }), {
      inflater: counting,
      limits: { maxMessageSize: 1 << 20 },
    });
    assertEquals(rec.log, ["fail:1009"]);
    // The inflater never handed back more than the limit (it stopped inside zlib).
    assertEquals(produced <= 1 << 20, true, `produced ${produced}`);
  } finally {
    real.close();
  }
});

Deno.test("serializer: frames read back through a client-role parser; bad arguments throw", () => {
  const rec = new Recorder();
  const p = new FrameParser(rec, { role: "client" });
  for (const len of [0, 125, 126, 65535, 65536]) {
    p.push(encodeFrame(Opcode.Binary, new Uint8Array(len).fill(7)));
  }
  p.push(encodeFrame(Opcode.Close, encodeClosePayload(4000, "done")));
  assertEquals(rec.log.map((l) => l.length > 20 ? l.slice(0, 20) : l).length, 6);
  assertEquals(rec.log.at(-1), "close:4000:done");
  assertEquals(Array.from(encodeFrame(Opcode.Text, new Uint8Array(126)).subarray(0, 4)), [
    0x81,
    126,
    0,
    126,
  ]);
  assertEquals(Array.from(encodeFrame(Opcode.Text, new Uint8Array(65536)).subarray(0, 10)), [
    0x81,
    127,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
  ]);
  assertThrows(() => encodeFrame(Opcode.Ping, new Uint8Array(126)), RangeError);
  assertThrows(() => encodeFrame(Opcode.Ping, new Uint8Array(1), { fin: false }), RangeError);
  assertThrows(() => encodeFrame(16, new Uint8Array(1)), RangeError);
  assertThrows(() => encodeFrame(1, new Uint8Array(1), { mask: new Uint8Array(3) }), RangeError);
  assertThrows(() => encodeClosePayload(1005), RangeError);
  assertThrows(() => encodeClosePayload(1000, "x".repeat(124)), RangeError);
  assertEquals(encodeClosePayload(1000, "x".repeat(123)).length, 125);
});

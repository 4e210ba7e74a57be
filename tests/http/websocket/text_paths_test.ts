/**
 * Text on each of its paths: a whole text message is decoded in one pass
 * when it is short and through the scratch buffer when it is longer (ASCII
 * checked four bytes at a time, then a decoder that does not validate;
 * anything else through the fatal decoder), and `send()` encodes short text
 * in a loop and longer text with `encodeInto`. Every length around those
 * switches, with a non-ASCII or invalid byte in each lane of a 4-byte word
 * and in the tail, must give the same text (or the same 1007) as a
 * reference decoder, and the same bytes on the wire as `TextEncoder`.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { Session, type SessionHooks } from "../../../http/websocket/_session.ts";
import {
  encodeFrame,
  FrameParser,
  Opcode,
  resolveWebSocketLimits,
} from "../../../http/websocket/mod.ts";
import { clientFrame, concat, rawFrame, Recorder, SessionConnection } from "./_frames.ts";

/** Lengths around the switches between the paths (and the word lanes of each). */
const LENGTHS = [
  1,
  3,
  4,
  5,
  47,
  48,
  49,
  63,
  64,
  65,
  79,
  80,
  81,
  82,
  83,
  84,
  85,
  100,
  125,
  126,
  127,
  128,
  129,
  255,
  256,
  257,
  300,
  1023,
  1024,
  1025,
  4099,
];

/** `n` ASCII bytes that vary (so no decoded string could be reused by accident). */
function asciiBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = 0x20 + (i * 7) % 95;
  return out;
}

function parse(frame: Uint8Array): string[] {
  const rec = new Recorder();
  new FrameParser(rec).push(frame);
  return rec.log;
}

Deno.test("text paths: ASCII of every length around the switches decodes exactly", () => {
  for (const n of LENGTHS) {
    const bytes = asciiBytes(n);
    const text = new TextDecoder().decode(bytes);
    assertEquals(parse(rawFrame(Opcode.Text, bytes)), [`text:${text}`], `length ${n}`);
  }
});

Deno.test("text paths: valid UTF-8 with a 2-, 3- or 4-byte character at each word lane and at the end decodes exactly", () => {
  const chars = ["é", "€", "😀"];
  for (const n of LENGTHS) {
    for (const ch of chars) {
      const cb = new TextEncoder().encode(ch);
      if (cb.length > n) continue;
      const places = [0, 1, 2, 3, n - cb.length];
      for (const at of places) {
        if (at < 0 || at + cb.length > n) continue;
        const bytes = asciiBytes(n);
        bytes.set(cb, at);
        const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        assertEquals(
          parse(rawFrame(Opcode.Text, bytes)),
          [`text:${text}`],
          `length ${n}, ${ch} at ${at}`,
        );
      }
    }
  }
});

Deno.test("text paths: an invalid byte in any lane of a word or in the tail fails with 1007", () => {
  for (const n of LENGTHS) {
    const places = new Set([0, 1, 2, 3, n - 1, n - 2, n - 3, (n >>> 1) | 1]);
    for (const at of places) {
      if (at < 0 || at >= n) continue;
      for (const bad of [0xff, 0x80]) {
        const bytes = asciiBytes(n);
        bytes[at] = bad;
        assertEquals(
          parse(rawFrame(Opcode.Text, bytes)),
          ["fail:1007"],
          `length ${n}, ${bad} at ${at}`,
        );
      }
    }
  }
});

Deno.test("text paths: a leading byte-order mark is kept, as in every other text", () => {
  for (const n of [10, 100, 300]) {
    const bytes = concat(new Uint8Array([0xef, 0xbb, 0xbf]), asciiBytes(n));
    assertEquals(parse(rawFrame(Opcode.Text, bytes)), [
      `text:\ufeff${new TextDecoder().decode(asciiBytes(n))}`,
    ]);
  }
});

function session(conn: SessionConnection): Session {
  const hooks: SessionHooks = { message() {}, drain() {}, error() {}, closed() {} };
  const s = new Session(conn, resolveWebSocketLimits({ idleTimeout: 0 }), hooks);
  s.start(new Uint8Array(0));
  return s;
}

Deno.test("text paths: send() puts TextEncoder's bytes on the wire for every length, character and lone surrogate", () => {
  const conn = new SessionConnection();
  const s = session(conn);
  const texts: string[] = [];
  for (const n of LENGTHS) {
    const ascii = new TextDecoder().decode(asciiBytes(n));
    texts.push(ascii);
    for (const ch of ["é", "€", "😀", "\ud800", "\udc00"]) {
      texts.push(ch + ascii.slice(ch.length));
      texts.push(ascii.slice(0, Math.max(0, n - ch.length)) + ch);
    }
  }
  for (const text of texts) {
    conn.writes.length = 0;
    assertEquals(s.send(text), 0);
    const wire = concat(...conn.writes);
    assertEquals(
      wire,
      encodeFrame(Opcode.Text, new TextEncoder().encode(text)),
      `length ${text.length}: ${JSON.stringify(text.slice(0, 8))}`,
    );
  }
});

Deno.test("text paths: echoes of texts on both sides of each switch, batched in one chunk, keep their order and bytes", () => {
  const conn = new SessionConnection();
  const hooks: SessionHooks = {
    message: (data) => void s.send(data),
    drain() {},
    error() {},
    closed() {},
  };
  const s = new Session(conn, resolveWebSocketLimits({ idleTimeout: 0 }), hooks);
  s.start(new Uint8Array(0));
  const texts = [47, 48, 80, 81, 300].map((n) => "é" + new TextDecoder().decode(asciiBytes(n)));
  conn.onData!(concat(...texts.map((t) => clientFrame(Opcode.Text, t))), conn);
  const expected = concat(
    ...texts.map((t) => encodeFrame(Opcode.Text, new TextEncoder().encode(t))),
  );
  assertEquals(concat(...conn.writes), expected);
});

/**
 * Fuzzing the frame parser: random valid streams (messages of random
 * text and bytes, fragmented at random, pings between the fragments) parse
 * to exactly what was sent under any split of the bytes; random and mutated
 * streams never throw and give the same events however they are split.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { FrameParser, Opcode } from "../../../http/websocket/mod.ts";
import { prng } from "../../_helpers.ts";
import { clientFrame, concat, Recorder } from "./_frames.ts";

const ROUNDS = 300;

function parseSplit(bytes: Uint8Array, rand: () => number): string[] {
  const rec = new Recorder();
  const p = new FrameParser(rec, { limits: { maxMessageSize: 1 << 16, maxFragments: 64 } });
  let i = 0;
  while (i < bytes.length) {
    const n = 1 + Math.floor(rand() * (rand() < 0.5 ? 4 : 300));
    p.push(bytes.subarray(i, i + n));
    i += n;
  }
  return rec.log;
}

function randomText(rand: () => number, n: number): string {
  const pool = ["a", "Z", " ", "é", "κ", "€", "𝄞", "\u0000", "\uFFFD", "中"];
  let s = "";
  for (let i = 0; i < n; i++) s += pool[Math.floor(rand() * pool.length)];
  return s;
}

Deno.test("fuzz: random valid streams parse to what was sent, under any split", () => {
  const rand = prng(0x6455);
  for (let round = 0; round < ROUNDS; round++) {
    const frames: Uint8Array[] = [];
    const expected: string[] = [];
    const messages = 1 + Math.floor(rand() * 6);
    for (let m = 0; m < messages; m++) {
      const isText = rand() < 0.5;
      const size = Math.floor(rand() * (rand() < 0.2 ? 3000 : 40));
      const text = randomText(rand, size);
      const bytes = isText
        ? new TextEncoder().encode(text)
        : new Uint8Array(size).map(() => Math.floor(rand() * 256));
      // Cut anywhere, even inside a UTF-8 sequence.
      const cuts = [0];
      const pieces = Math.floor(rand() * 4);
      for (let c = 0; c < pieces; c++) cuts.push(Math.floor(rand() * (bytes.length + 1)));
      cuts.push(bytes.length);
      cuts.sort((a, b) => a - b);
      for (let c = 0; c + 1 < cuts.length; c++) {
        const op = c === 0 ? (isText ? Opcode.Text : Opcode.Binary) : Opcode.Continuation;
        const last = c + 2 === cuts.length;
        frames.push(clientFrame(op, bytes.subarray(cuts[c], cuts[c + 1]), last));
        if (last) expected.push(isText ? `text:${text}` : `binary:${Array.from(bytes).join(",")}`);
        if (rand() < 0.3) {
          const ping = new Uint8Array(Math.floor(rand() * 10)).fill(round & 255);
          frames.push(clientFrame(Opcode.Ping, ping));
          expected.push(`ping:${Array.from(ping).join(",")}`);
        }
      }
    }
    const stream = concat(...frames);
    assertEquals(parseSplit(stream, rand), expected, `round ${round}`);
  }
});

Deno.test("fuzz: random and mutated streams never throw, and the split never changes the events", () => {
  const rand = prng(7692);
  for (let round = 0; round < ROUNDS * 3; round++) {
    let stream: Uint8Array;
    if (rand() < 0.3) {
      stream = new Uint8Array(Math.floor(rand() * 200)).map(() => Math.floor(rand() * 256));
    } else {
      const text = randomText(rand, Math.floor(rand() * 50));
      stream = concat(
        clientFrame(Opcode.Text, text, rand() < 0.7),
        clientFrame(Opcode.Ping, "p"),
        clientFrame(Opcode.Continuation, text),
        clientFrame(Opcode.Binary, new Uint8Array(Math.floor(rand() * 300))),
      );
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(rand() * stream.length);
        stream[at] = stream[at]! ^ (1 << Math.floor(rand() * 8));
      }
    }
    const whole = new Recorder();
    new FrameParser(whole, { limits: { maxMessageSize: 1 << 16, maxFragments: 64 } }).push(stream);
    const split = parseSplit(stream, rand);
    assertEquals(split, whole.log, `round ${round}`);
    // At most one end (a close or a failure), and it is the last event.
    const ends = whole.log.filter((l) => l.startsWith("close:") || l.startsWith("fail:"));
    assertEquals(ends.length <= 1, true);
    if (ends.length === 1) assertEquals(whole.log.at(-1), ends[0]);
  }
});

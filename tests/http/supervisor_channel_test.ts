/**
 * The supervisor channel's framing (`http/supervisor_channel.ts`): frames
 * survive any split of the byte stream (fuzzed chunk boundaries), decode
 * to the messages that were encoded, and malformed input is refused with
 * a clear error (oversized or empty frames, unknown kinds, topics past the
 * end, ticket keys of the wrong size) instead of buffering without bound.
 *
 * @module
 */
import { assertEquals, assertThrows } from "@std/assert";
import {
  CHANNEL_LIMITS,
  decodeFrame,
  encodePublish,
  encodeTicketKey,
  FrameDecoder,
  TICKET_KEYS,
} from "../../http/supervisor_channel.ts";
import { WEBSOCKET_PUBLISH } from "../../http/workers.ts";
import { concatBytes, prng } from "../_helpers.ts";

Deno.test("supervisor channel: frames decode whole across any chunking (fuzzed)", () => {
  const rand = prng(16);
  const messages: { topic: string; data: string | Uint8Array }[] = [];
  for (let i = 0; i < 200; i++) {
    const n = Math.floor(rand() * 300);
    const topic = `t${i}-é`;
    messages.push(
      i % 3 === 0
        ? { topic, data: Uint8Array.from({ length: n }, () => Math.floor(rand() * 256)) }
        : { topic, data: "ü".repeat(n) },
    );
  }
  const key = crypto.getRandomValues(new Uint8Array(80));
  const stream = concatBytes([
    encodeTicketKey(key),
    ...messages.map((m) => encodePublish(m.topic, m.data)),
  ]);
  for (let trial = 0; trial < 50; trial++) {
    const d = new FrameDecoder();
    const got: ReturnType<typeof decodeFrame>[] = [];
    let off = 0;
    while (off < stream.byteLength) {
      const n = 1 + Math.floor(rand() * (trial % 2 === 0 ? 7 : 2000));
      const chunk = stream.slice(off, off + n);
      d.push(chunk, (f) => got.push(decodeFrame(f)));
      chunk.fill(0xee); // the decoder kept copies, not views of the chunk
      off += n;
    }
    assertEquals(d.pending, 0);
    assertEquals(got[0], { type: TICKET_KEYS, material: key });
    assertEquals(
      got.slice(1),
      messages.map((m) => ({ type: WEBSOCKET_PUBLISH, topic: m.topic, data: m.data })),
    );
  }
});

Deno.test("supervisor channel: malformed frames are refused with a clear error", () => {
  const d = new FrameDecoder();
  const huge = new Uint8Array(4);
  new DataView(huge.buffer).setUint32(0, CHANNEL_LIMITS.maxFrameBytes + 1, true);
  // Refused from the length prefix alone: nothing of that size is allocated.
  assertThrows(() => d.push(huge, () => {}), RangeError, "Cannot read the channel: a frame of");
  assertThrows(
    () => new FrameDecoder().push(new Uint8Array(4), () => {}),
    RangeError,
    "a frame of 0 bytes",
  );
  assertThrows(() => decodeFrame(Uint8Array.of(1, 0, 0, 0, 9)), RangeError, "unknown frame kind 9");
  assertThrows(() => decodeFrame(Uint8Array.of(3, 0, 0, 0, 1, 9, 0)), RangeError, "topic past");
  assertThrows(() => decodeFrame(Uint8Array.of(2, 0, 0, 0, 3, 0)), RangeError, "ticket key frame");
  assertThrows(() => decodeFrame(Uint8Array.of(9, 0, 0, 0, 1)), RangeError, "does not match");
  assertThrows(() => encodeTicketKey(new Uint8Array(79)), RangeError, "80 bytes, got 79");
  assertThrows(
    () => encodePublish("t".repeat(CHANNEL_LIMITS.maxTopicBytes + 1), ""),
    RangeError,
    "Cannot relay the message: its topic",
  );
  assertThrows(
    () => encodePublish("t", new Uint8Array(CHANNEL_LIMITS.maxFrameBytes)),
    RangeError,
    "Cannot relay the message",
  );
});

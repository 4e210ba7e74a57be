/**
 * permessage-deflate (RFC 7692), ports of Autobahn cases 12 (compressed
 * payloads of every size and kind) and 13 (the negotiated parameters), as
 * raw-socket tests against the echo server. The client side compresses and
 * inflates with `node:zlib` (another binding of zlib than the server's), or
 * with a stream of its own where context is taken over. Also: the
 * negotiation on its own, and a compressed bomb through a socket.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import zlib from "node:zlib";
import { Buffer } from "node:buffer";
import {
  encodeClosePayload,
  type MessageInflater,
  negotiatePerMessageDeflate,
  Opcode,
} from "../../../http/websocket/mod.ts";
import { RawDeflate, RawInflate } from "../../../ffi/zlib.ts";
import { prng, withFdCheck } from "../../_helpers.ts";
import { clientFrame, concat, rawFrame } from "./_frames.ts";
import { type EchoServer, RawClient, startEchoServer } from "./_client.ts";

const TAIL = new Uint8Array([0, 0, 0xff, 0xff]);

/** One message compressed on its own (no context), the tail removed. */
function deflateMessage(data: Uint8Array, windowBits = 15): Uint8Array {
  const out = zlib.deflateRawSync(Buffer.from(data), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
    windowBits,
  });
  assertEquals(Array.from(out.subarray(out.length - 4)), [0, 0, 0xff, 0xff]);
  return new Uint8Array(out.subarray(0, out.length - 4));
}

/** Inflates each server message on its own with node:zlib (server without context). */
function nodeInflater(windowBits = 15): MessageInflater & { compressed: number } {
  let parts: Uint8Array[] = [];
  return {
    compressed: 0,
    inflate(input) {
      parts.push(input.slice());
      if (input.length === 4 && input.every((b, i) => b === TAIL[i])) {
        const out = zlib.inflateRawSync(Buffer.from(concat(...parts)), {
          finishFlush: zlib.constants.Z_SYNC_FLUSH,
          windowBits,
        });
        parts = [];
        this.compressed++;
        return new Uint8Array(out);
      }
      return new Uint8Array(0);
    },
    endMessage() {},
  };
}

function payloads(size: number, rand: () => number): [string, Uint8Array, boolean][] {
  const words = ["alpha ", "beta ", "gamma ", "delta ", "κόσμε "];
  let text = "";
  while (text.length < size) text += words[Math.floor(rand() * words.length)];
  const textBytes = new TextEncoder().encode(text).subarray(0, size);
  // Cut back to a character boundary.
  let end = textBytes.length;
  while (end > 0 && (textBytes[end - 1]! & 0xc0) === 0x80) end--;
  if (end > 0 && textBytes[end - 1]! >= 0xc0) end--;
  return [
    ["text", textBytes.slice(0, end), true],
    ["random bytes", new Uint8Array(size).map(() => Math.floor(rand() * 256)), false],
    ["zeros", new Uint8Array(size), false],
  ];
}

async function expectEchoes(
  server: EchoServer,
  offer: string,
  messages: [Uint8Array, boolean][],
  compress: (data: Uint8Array) => Uint8Array,
  inflater: MessageInflater & { compressed: number },
  fragment = 0,
): Promise<string> {
  const c = await RawClient.open(server.port, { extensions: offer, inflater });
  try {
    for (const [data, isText] of messages) {
      const packed = compress(data);
      if (fragment === 0 || packed.length <= fragment) {
        await c.send(rawFrame(isText ? 1 : 2, packed, { rsv1: true }));
      } else {
        for (let i = 0; i < packed.length; i += fragment) {
          await c.send(rawFrame(i === 0 ? (isText ? 1 : 2) : 0, packed.subarray(i, i + fragment), {
            rsv1: i === 0,
            fin: i + fragment >= packed.length,
          }));
        }
      }
    }
    await c.waitCount(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const [data, isText] = messages[i]!;
      const expected = isText
        ? `text:${new TextDecoder().decode(data)}`
        : `binary:${Array.from(data).join(",")}`;
      assert(
        c.log[i] === expected,
        `message ${i} of ${data.length} bytes differs: ${c.log[i]?.slice(0, 80)} vs ${
          expected.slice(0, 80)
        }`,
      );
    }
    await c.send(clientFrame(Opcode.Close, encodeClosePayload(1000)));
    assertEquals(await c.closeCode(), 1000);
    return c.head;
  } finally {
    await c.close();
  }
}

Deno.test("autobahn 12: compressed text and binary of 16 B to 128 KiB, whole and fragmented, echoed compressed", async () => {
  await withFdCheck(async () => {
    const server = startEchoServer({ compression: true });
    const rand = prng(12);
    try {
      for (const size of [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]) {
        for (const [kind, data, isText] of payloads(size, rand)) {
          const inflater = nodeInflater();
          const messages: [Uint8Array, boolean][] = [[data, isText], [data, isText]];
          const head = await expectEchoes(
            server,
            "permessage-deflate",
            messages,
            deflateMessage,
            inflater,
          );
          assert(head.toLowerCase().includes("sec-websocket-extensions: permessage-deflate"), head);
          // Messages of 32 bytes and more come back compressed.
          assertEquals(inflater.compressed, data.length >= 32 ? 2 : 0, `${kind} ${size}`);
          // The same, fragmented in frames of 300 bytes.
          await expectEchoes(
            server,
            "permessage-deflate",
            messages,
            deflateMessage,
            nodeInflater(),
            300,
          );
        }
      }
    } finally {
      await server.close();
    }
  });
});

Deno.test("autobahn 13: the negotiated parameters (no context takeover, window bits) are honoured", async () => {
  await withFdCheck(async () => {
    const rand = prng(13);
    const text = payloads(5000, rand)[0]![1];
    const msgs: [Uint8Array, boolean][] = [[text, true], [payloads(3000, rand)[0]![1], true], [
      text,
      true,
    ]];

    // The server's default: no context takeover either way, 15-bit windows.
    const shared = startEchoServer({ compression: true });
    // Context takeover both ways when the client allows it.
    const context = startEchoServer({
      compression: { serverNoContextTakeover: false, clientNoContextTakeover: false },
    });
    try {
      for (
        const [offer, expected] of [
          [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
          ],
          [
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
          ],
          [
            "permessage-deflate; server_max_window_bits=9",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9",
          ],
          [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
          ],
          [
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10",
          ],
        ] as const
      ) {
        const bits = Number(/server_max_window_bits=(\d+)/.exec(expected)?.[1] ?? 15);
        const head = await expectEchoes(
          shared,
          offer,
          msgs,
          (d) => deflateMessage(d, 9),
          nodeInflater(bits),
        );
        assert(head.includes(`sec-websocket-extensions: ${expected}`), `${offer} -> ${head}`);
      }
      // 13.x with context takeover: both sides keep their window across messages.
      const clientDeflate = new RawDeflate({ windowBits: 15 });
      const clientInflate = new RawInflate({ windowBits: 15 });
      let compressed = 0;
      const streamInflater: MessageInflater & { compressed: number } = {
        compressed: 0,
        inflate(input, limit) {
          return clientInflate.inflate(input, limit) ?? 1009;
        },
        endMessage() {
          compressed++;
        },
      };
      try {
        const head = await expectEchoes(
          context,
          "permessage-deflate; client_max_window_bits",
          msgs,
          (d) => {
            const out = clientDeflate.compress(d, "sync");
            return out.subarray(0, out.length - 4);
          },
          streamInflater,
        );
        assert(
          head.includes("sec-websocket-extensions: permessage-deflate\r") ||
            head.endsWith("permessage-deflate"),
          head,
        );
        assertEquals(compressed, 3);
      } finally {
        clientDeflate.close();
        clientInflate.close();
      }
      // An offer the server cannot take: no extension, messages go uncompressed.
      const c = await RawClient.open(shared.port, {
        extensions: "permessage-deflate; server_max_window_bits=8",
      });
      try {
        assert(!c.head.toLowerCase().includes("sec-websocket-extensions"), c.head);
        await c.send(rawFrame(1, "x", { rsv1: true }));
        assertEquals(await c.closeCode(), 1002);
      } finally {
        await c.close();
      }
    } finally {
      await shared.close();
      await context.close();
    }
  });
});

Deno.test("a compressed bomb through a socket: 1009 while inflating", async () => {
  await withFdCheck(async () => {
    const server = startEchoServer({ compression: true, limits: { maxMessageSize: 1 << 20 } });
    try {
      const c = await RawClient.open(server.port, { extensions: "permessage-deflate" });
      try {
        const bomb = deflateMessage(new Uint8Array(64 * 1024 * 1024));
        assert(bomb.length < 1 << 20, `the bomb is ${bomb.length} bytes`);
        await c.send(rawFrame(2, bomb, { rsv1: true }));
        assertEquals(await c.closeCode(), 1009);
      } finally {
        await c.close();
      }
    } finally {
      await server.close();
    }
  });
});

Deno.test("negotiation: repeated, unknown or invalid parameters decline an offer; quoted values are read", () => {
  const n = (offer: string) => negotiatePerMessageDeflate(offer)?.header ?? null;
  assertEquals(
    n("permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
    null,
  );
  assertEquals(n("permessage-deflate; foo"), null);
  assertEquals(n("permessage-deflate; server_max_window_bits"), null);
  assertEquals(n("permessage-deflate; server_max_window_bits=16"), null);
  assertEquals(n("permessage-deflate; server_max_window_bits=09"), null);
  assertEquals(n("permessage-deflate; client_max_window_bits=7"), null);
  assertEquals(n("permessage-deflate; server_no_context_takeover=1"), null);
  assertEquals(n("x-webkit-deflate-frame"), null);
  assertEquals(
    n('permessage-deflate; server_max_window_bits="12"'),
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12",
  );
  assertEquals(
    negotiatePerMessageDeflate("permessage-deflate; client_max_window_bits=12", {
      clientMaxWindowBits: 10,
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
    })?.header,
    "permessage-deflate; client_max_window_bits=10",
  );
  assertEquals(negotiatePerMessageDeflate(null), null);
});

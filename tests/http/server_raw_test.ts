/**
 * `serveRaw()`, the low-level entry point, over real loopback sockets:
 * prebuilt responses, the opt-in repeated-head memo, answers given later
 * still leave in request order, HEAD has no body, a throwing handler gets
 * 500, a malformed request 400 after the pending responses, 100-continue.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { type HttpServer, prebuilt, type RawHandler, serveRaw } from "../../http/mod.ts";
import { readText } from "../_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function start(handler: RawHandler, memo = false): { server: HttpServer; port: number } {
  const server = serveRaw(
    { hostname: "127.0.0.1", port: 0, repeatedHeadMemo: memo, onListen() {}, onError() {} },
    handler,
  );
  return { server, port: (server.addr as { port: number }).port };
}

async function exchange(port: number, data: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(data));
    return await readText(conn, { size: 65536 });
  } finally {
    conn.close();
  }
}

const hello = prebuilt(200, "Hello, World!", { contentType: "text/plain" });

const handler: RawHandler = (req, res) => {
  if (req.target === "/") res.sendPrebuilt(hello);
  else if (req.target === "/later") setTimeout(() => res.send(200, "later;"), 100);
  else if (req.target === "/echo") res.send(200, req.body, { contentType: "x/y" });
  else if (req.target === "/throw") throw new Error("on purpose");
  else res.send(404, "nf;", { headers: [["x-a", "1"]] });
};

for (const memo of [false, true]) {
  Deno.test(`serveRaw (memo ${memo}): order, prebuilt, HEAD, echo, 404, 500, then 400 and close`, async () => {
    const { server, port } = start(handler, memo);
    try {
      const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
      const raw = await exchange(
        port,
        "GET /later HTTP/1.1\r\nHost: a\r\n\r\n" + get + get +
          "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" +
          "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nping" +
          "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n" +
          "GET /throw HTTP/1.1\r\nHost: a\r\n\r\n" +
          "BROKEN\r\n\r\n",
      );
      const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      assertEquals(statuses, [200, 200, 200, 200, 200, 404, 500, 400]);
      const parts = raw.split(/(?=HTTP\/1\.1 \d{3} )/);
      assertMatch(parts[0]!, /\r\n\r\nlater;$/);
      // The one serializer: lowercase server fields, as serve() and Deno.serve.
      assertMatch(parts[1]!, /\r\ncontent-length: 13\r\n\r\nHello, World!$/);
      assertEquals(parts[3], parts[1]!.slice(0, -13)); // HEAD: GET's head, no body
      assertMatch(parts[4]!, /\r\ncontent-type: x\/y\r\n[^]*content-length: 4\r\n\r\nping$/);
      assertMatch(parts[5]!, /x-a: 1\r\n/);
      assertMatch(parts[7]!, /\r\nconnection: close\r\n/);
    } finally {
      await server.shutdown();
    }
  });
}

Deno.test("serveRaw: Connection: close ends the connection; later requests are not answered", async () => {
  const { server, port } = start(handler);
  try {
    const raw = await exchange(
      port,
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assertEquals([...raw.matchAll(/HTTP\/1\.1 200/g)].length, 1);
    assertMatch(raw, /\r\nconnection: close\r\n/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveRaw: Expect: 100-continue gets 100 Continue before the body is sent", async () => {
  const { server, port } = start(handler);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      encoder.encode(
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
      ),
    );
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    assertEquals(decoder.decode(buf.subarray(0, n!)), "HTTP/1.1 100 Continue\r\n\r\n");
    await conn.write(encoder.encode("abc"));
    let rest = "";
    for (;;) {
      const m = await conn.read(buf);
      if (m === null) break;
      rest += decoder.decode(buf.subarray(0, m));
    }
    assertMatch(rest, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nabc$/);
  } finally {
    conn.close();
    await server.shutdown();
  }
});

Deno.test("serveRaw: the header timeout covers the head only; a stalled body gets 408 from the body timeout", async () => {
  const server = serveRaw(
    {
      hostname: "127.0.0.1",
      port: 0,
      headerTimeoutMs: 300,
      bodyTimeoutMs: 300,
      onListen() {},
    },
    (req, res) => res.send(200, `got ${req.body.length}`),
  );
  const port = (server.addr as { port: number }).port;
  try {
    // A slow but live upload: one byte every 100 ms for 1.2 s.
    const live = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await live.write(
        encoder.encode(
          "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: close\r\n\r\n",
        ),
      );
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await live.write(encoder.encode("x"));
      }
      const got = await readText(live);
      assertMatch(got, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\ngot 12$/);
    } finally {
      live.close();
    }
    // A stalled upload: half the body, then nothing.
    const t0 = performance.now();
    const stalled = await exchange(
      port,
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf",
    );
    assertMatch(stalled, /^HTTP\/1\.1 408 /);
    const took = performance.now() - t0;
    assert(took > 250 && took < 5000, `cut after ${took} ms`);
  } finally {
    await server.shutdown();
  }
});

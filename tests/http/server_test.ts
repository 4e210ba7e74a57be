/**
 * Unit-level checks of `serve()` over real loopback sockets: a basic
 * request, request and response bodies streamed both ways (chunked in and
 * out), upgrades, handler errors, response order, graceful shutdown,
 * options validation. The broader raw-bytes semantics suite is
 * semantics_test.ts.
 *
 * @module
 */
import { assert, assertEquals, assertInstanceOf, assertMatch, assertThrows } from "@std/assert";
import { type HttpServer, serve, type ServeHandler, upgradeConnection } from "../../http/mod.ts";
import { assertConnectRefused, readText } from "../_helpers.ts";
import { exchange } from "./_raw.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function start(handler: ServeHandler, options: Parameters<typeof serve>[0] = {}): {
  server: HttpServer;
  port: number;
  base: string;
} {
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {}, ...options }, handler);
  const port = (server.addr as { port: number }).port;
  return { server, port, base: `http://127.0.0.1:${port}` };
}

Deno.test("serve: a basic GET gets the handler's response with date and content-length", async () => {
  const { server, base } = start((req, info) => {
    assertInstanceOf(req, Request);
    assertEquals(info.remoteAddr.transport, "tcp");
    return new Response(`${req.method} ${new URL(req.url).pathname}`, {
      headers: { "x-test": "1" },
    });
  });
  try {
    const res = await fetch(`${base}/a/b?c=d`);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("x-test"), "1");
    assertEquals(res.headers.get("content-length"), "8");
    assert(res.headers.get("date") !== null);
    assertEquals(await res.text(), "GET /a/b");
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve: the three call forms work and a missing handler is a TypeError", async () => {
  const handler = () => new Response("x");
  const a = serve({ hostname: "127.0.0.1", port: 0, onListen() {}, handler });
  await a.shutdown();
  assertThrows(() => serve({ port: 0 } as never), TypeError, "no handler");
  assertThrows(
    () => serve({ port: 70000, onListen() {} }, handler),
    RangeError,
    "Cannot serve: port 70000 is not an integer from 0 to 65535",
  );
  assertThrows(
    () => serve({ port: 0, highWaterMark: 0, onListen() {} }, handler),
    RangeError,
    "highWaterMark",
  );
});

Deno.test("serve: request bodies stream in (Content-Length and chunked) and responses stream out chunked", async () => {
  const { server, port, base } = start(async (req) => {
    if (req.method === "POST") {
      const reader = req.body!.getReader();
      const chunks: string[] = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(decoder.decode(value));
      }
      const all = chunks.join("");
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(encoder.encode(`got ${all.length}:`));
            c.enqueue(encoder.encode(all.slice(0, 5)));
            c.close();
          },
        }),
      );
    }
    return new Response("no");
  });
  try {
    // Content-Length in, chunked out (HTTP/1.1).
    const big = "z".repeat(300_000);
    const res = await fetch(`${base}/`, { method: "POST", body: big });
    assertEquals(res.headers.get("transfer-encoding"), "chunked");
    assertEquals(await res.text(), "got 300000:zzzzz");
    // Chunked in (raw), chunked out.
    const raw = await exchange(
      port,
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        "3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nT: 1\r\n\r\n",
    );
    assertMatch(raw, /^HTTP\/1\.1 200 OK\r\n/);
    assertMatch(raw, /\r\ntransfer-encoding: chunked\r\n/);
    assertMatch(raw, /\r\n\r\n6\r\ngot 7:\r\n5\r\nabcde\r\n0\r\n\r\n$/);
    // HTTP/1.0: a stream goes out until close, unframed.
    const raw10 = await exchange(
      port,
      "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
    );
    assertMatch(raw10, /^HTTP\/1\.1 200 OK\r\n/);
    assert(!/transfer-encoding/i.test(raw10), raw10);
    assertMatch(raw10, /connection: close\r\n\r\ngot 2:hi$/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve: a handler that does not read the body is backpressured, then its body is dropped", async () => {
  let calls = 0;
  const { server, port } = start(() => new Response(`n${++calls}`));
  try {
    const body = "b".repeat(200_000);
    const raw = await exchange(
      port,
      `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    const bodies = raw.split("\r\n\r\n").slice(1).map((s) => s.slice(0, 2));
    assertEquals(bodies, ["n1", "n2"], raw);
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve: pipelined responses leave in request order whatever each handler takes", async () => {
  const { server, port } = start(async (req) => {
    const ms = Number(new URL(req.url).searchParams.get("ms"));
    await new Promise((r) => setTimeout(r, ms));
    return new Response(`ms=${ms};`);
  });
  try {
    const paths = [200, 0, 50, 0, 10];
    const raw = await exchange(
      port,
      paths.map((ms, i) =>
        `GET /?ms=${ms} HTTP/1.1\r\nHost: a\r\n${
          i === paths.length - 1 ? "Connection: close\r\n" : ""
        }\r\n`
      ).join(""),
    );
    const got = [...raw.matchAll(/ms=(\d+);/g)].map((m) => Number(m[1]));
    assertEquals(got, paths);
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve: a throwing handler and a rejected promise get 500, onError is used, the server keeps serving", async () => {
  const { server, base } = start((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/throw") throw new Error("thrown on purpose");
    if (path === "/reject") return Promise.reject(new Error("rejected on purpose"));
    return new Response("fine");
  }, { onError: (e) => new Response(`oops: ${(e as Error).message}`, { status: 503 }) });
  try {
    const a = await fetch(`${base}/throw`);
    assertEquals([a.status, await a.text()], [503, "oops: thrown on purpose"]);
    const b = await fetch(`${base}/reject`);
    assertEquals([b.status, await b.text()], [503, "oops: rejected on purpose"]);
    const c = await fetch(`${base}/`);
    assertEquals([c.status, await c.text()], [200, "fine"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve: a handler returning something else than a Response gets the default 500", async () => {
  const original = console.error;
  console.error = () => {};
  const { server, base } = start(() => "not a response" as unknown as Response);
  try {
    const res = await fetch(base);
    assertEquals(res.status, 500);
    assertEquals(await res.text(), "Internal Server Error");
  } finally {
    console.error = original;
    await server.shutdown();
  }
});

Deno.test("serve: upgradeConnection hands over the connection after 101 (a tiny echo protocol)", async () => {
  const { server, port } = start((req) => {
    const { response, connection } = upgradeConnection(req, { headers: { "x-proto": "echo" } });
    connection.then(({ conn, head }) => {
      if (head.length > 0) conn.write(head);
      conn.onData = (data) => {
        if (decoder.decode(data).includes("bye")) {
          conn.write(encoder.encode("ciao"));
          conn.close();
        } else {
          conn.write(data);
        }
      };
    });
    return response;
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(
        encoder.encode(
          "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly;",
        ),
      );
      let got = await readText(conn, { until: (text) => text.includes("early;") });
      assertMatch(got, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
      assertMatch(got, /\r\nx-proto: echo\r\n/);
      assertMatch(got, /\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\nearly;$/);
      await conn.write(encoder.encode("hello"));
      got = await readText(conn, { until: (text) => text.length >= 5 });
      assertEquals(got, "hello");
      await conn.write(encoder.encode("bye"));
      got = await readText(conn);
      assertEquals(got, "ciao");
    } finally {
      conn.close();
    }
    assertThrows(() => upgradeConnection(new Request("http://a/")), TypeError, "Cannot upgrade");
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve: shutdown lets an in-flight request finish (with connection: close) and then resolves finished", async () => {
  let started!: () => void;
  const inFlight = new Promise<void>((r) => started = r);
  const { server, port } = start(async () => {
    started();
    await new Promise((r) => setTimeout(r, 200));
    return new Response("late");
  }, { drainTimeoutMs: 5000 });
  const answer = exchange(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  await inFlight;
  const t0 = performance.now();
  const done = server.shutdown();
  const raw = await answer;
  await done;
  await server.finished;
  assertMatch(raw, /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n\r\nlate$/);
  assert(performance.now() - t0 < 4000);
  // Not accepting any more.
  await assertConnectRefused(port, "the listener still accepts after shutdown");
});

Deno.test("serve: an idle keep-alive connection is closed by shutdown (FIN after the drain grace); the signal option shuts down", async () => {
  const controller = new AbortController();
  const { server, port } = start(() => new Response("ok"), { signal: controller.signal });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    assertMatch(decoder.decode(buf.subarray(0, n!)), /^HTTP\/1\.1 200 OK/);
    controller.abort();
    assertEquals(await conn.read(buf), null); // FIN from the drain
  } finally {
    conn.close();
  }
  await server.finished;
});

Deno.test("serve: a Unix socket path works; remoteAddr is a unix address", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.sock`;
  const server = serve({ path, onListen() {} }, (_req, info) => {
    return new Response(info.remoteAddr.transport);
  });
  try {
    assertEquals(server.addr, { transport: "unix", path });
    const conn = await Deno.connect({ transport: "unix", path });
    try {
      await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      const got = await readText(conn);
      assertMatch(got, /\r\n\r\nunix$/);
    } finally {
      conn.close();
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve: Expect: 100-continue behind a slow pipelined request gets its 100 once in front", async () => {
  const { server, port } = start(async (req) => {
    if (new URL(req.url).pathname === "/slow") {
      await new Promise((r) => setTimeout(r, 150));
      return new Response("slow;");
    }
    return new Response(`got ${(await req.text()).length};`);
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      encoder.encode(
        "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n" +
          "PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n" +
          "Connection: close\r\n\r\n",
      ),
    );
    let got = await readText(conn, { until: (text) => text.includes("100 Continue") });
    // The slow response first, then the 100 (never before an earlier response).
    assertMatch(got, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nslow;HTTP\/1\.1 100 Continue\r\n\r\n$/);
    await conn.write(encoder.encode("hello"));
    got += await readText(conn);
    assertMatch(got, /100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*\r\n\r\ngot 5;$/);
  } finally {
    conn.close();
    await server.shutdown();
  }
});

Deno.test("serve: drainTimeoutMs cuts a request still running at the deadline; finished resolves", async () => {
  let release!: () => void;
  const blocked = new Promise<void>((r) => release = r);
  let started!: () => void;
  const running = new Promise<void>((r) => started = r);
  const { server, port } = start(async () => {
    started();
    await blocked;
    return new Response("too late");
  }, { drainTimeoutMs: 200 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    await running;
    const t0 = performance.now();
    await server.shutdown();
    const took = performance.now() - t0;
    assert(took >= 150 && took < 3000, `shutdown took ${took} ms`);
    // The connection was cut: EOF or a reset, and no response.
    const buf = new Uint8Array(1024);
    let got: number | null = null;
    try {
      got = await conn.read(buf);
    } catch (e) {
      assertInstanceOf(e, Deno.errors.ConnectionReset);
    }
    assertEquals(got, null);
  } finally {
    release();
    conn.close();
  }
});

Deno.test("serve: Deno.serve options it does not implement are a TypeError naming them, before binding", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const handler = () => new Response("x");
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ keyFormat: "pem" }, /keyFormat needs cert and key/],
    [{ alpnProtocols: ["h2"] }, /alpnProtocols needs cert and key/],
    [{ cert: "C", key: "K", keyFormat: "der" }, /keyFormat must be "pem"/],
    [{ cert: "C", key: "K", alpnProtocols: ["h2"] }, /alpnProtocols may only list "http\/1\.1"/],
    [{ cid: 3 }, /cid is not supported \(.*vsock/],
    [{ automaticCompression: true }, /automaticCompression is not supported/],
    [{ transport: "quic" }, /transport "quic" is not supported/],
    [{ transport: "unix" }, /transport "unix" needs a path/],
    [{ tcpBacklog: 10, listener: { backlog: 20 } }, /tcpBacklog and listener\.backlog disagree/],
  ];
  for (const [extra, message] of cases) {
    const e = assertThrows(
      () => serve({ hostname: "127.0.0.1", port, onListen() {}, ...extra }, handler),
      TypeError,
    );
    assertMatch(e.message, message);
  }
  // Nothing was bound: the port is still free.
  const again = Deno.listen({ hostname: "127.0.0.1", port });
  again.close();
  // tcpBacklog itself is accepted (it is the listen backlog).
  const s = serve({ hostname: "127.0.0.1", port: 0, onListen() {}, tcpBacklog: 16 }, handler);
  const res = await fetch(`http://127.0.0.1:${(s.addr as { port: number }).port}/`);
  assertEquals(await res.text(), "x");
  await s.shutdown();
});

Deno.test("serve: server.reactor is the thread's reactor: timers and raw listeners run beside serve()", async () => {
  const a = start(() => new Response("a"));
  const b = start(() => new Response("b"));
  const reactor = a.server.reactor;
  if (reactor === null) throw new Error("Expected a reactor on a one-thread server");
  try {
    assert(reactor === b.server.reactor, "one reactor per thread");
    assert(reactor.running);
    // A timer on the server's reactor.
    const fired = await new Promise<number>((resolve) => reactor.setTimeout(() => resolve(1), 5));
    assertEquals(fired, 1);
    // A raw listener on the same reactor, answering beside the HTTP servers.
    const { Listener } = await import("../../reactor/mod.ts");
    using raw = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
      conn.onData = (data) => {
        conn.write(data);
        conn.close();
      };
    });
    const rawPort = (raw.address() as { port: number }).port;
    const c = await Deno.connect({ hostname: "127.0.0.1", port: rawPort });
    try {
      await c.write(encoder.encode("ping"));
      assertEquals(await readText(c), "ping");
    } finally {
      c.close();
    }
    assertEquals(await (await fetch(a.base)).text(), "a");
  } finally {
    await a.server.shutdown();
    await b.server.shutdown();
  }
  assert(!reactor.running, "stopped once its last server finished");
});

Deno.test("serve: reactor options that cannot apply to the running thread reactor are a RangeError", async () => {
  const a = start(() => new Response("a"), { reactor: { sliceMs: 7, busyWaitMs: 1 } });
  try {
    const e = assertThrows(
      () => start(() => new Response("b"), { reactor: { sliceMs: 9 } }),
      RangeError,
    );
    assertMatch(e.message, /^Cannot serve: reactor\.sliceMs 9 cannot apply: .*sliceMs 7/);
    assertThrows(() => start(() => new Response("b"), { reactor: { busyWaitMs: 0 } }), RangeError);
    // The same values, or none, share the reactor.
    const b = start(() => new Response("b"), { reactor: { sliceMs: 7 } });
    const c = start(() => new Response("c"));
    assert(b.server.reactor === a.server.reactor && c.server.reactor === a.server.reactor);
    await b.server.shutdown();
    await c.server.shutdown();
  } finally {
    await a.server.shutdown();
  }
  // Once the thread's servers have finished, a new reactor takes new values.
  const d = start(() => new Response("d"), { reactor: { sliceMs: 9 } });
  assertEquals(await (await fetch(d.base)).text(), "d");
  await d.server.shutdown();
});

Deno.test("serve: an unref'd server still answers at once while something else keeps the process alive", async () => {
  const a = start((req) => new Response(new URL(req.url).pathname));
  try {
    const reactor = a.server.reactor;
    if (reactor === null) throw new Error("Expected a reactor on a one-thread server");
    a.server.unref();
    assert(!reactor.refed);
    for (let i = 0; i < 5; i++) {
      // Idle first, so that the reactor is parked in its unref'd wait.
      await new Promise((r) => setTimeout(r, 150));
      const t0 = performance.now();
      assertEquals(await (await fetch(`${a.base}/r${i}`)).text(), `/r${i}`);
      const took = performance.now() - t0;
      assert(took < 2_000, `an unref'd server answered in ${took} ms`);
    }
    a.server.ref();
    assert(reactor.refed);
    // Two servers: the reactor holds the process while either is ref'd.
    const b = start(() => new Response("b"));
    a.server.unref();
    assert(reactor.refed, "b is still ref'd");
    b.server.unref();
    assert(!reactor.refed);
    b.server.ref();
    assert(reactor.refed);
    await b.server.shutdown();
    assert(!reactor.refed, "only the unref'd a is left");
  } finally {
    await a.server.shutdown();
  }
});

/**
 * The HTTP/1.1 semantics serve() must get right, each a test, driven
 * over real sockets on 127.0.0.1 with raw bytes (tests/http/_raw.ts parses the
 * responses itself). `FFINET_HTTP_TEST_SERVER=deno` runs the tests that make
 * sense there against `Deno.serve`.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import { must, RawClient, type RawResponse, request, rssKiB } from "./_raw.ts";
import {
  deferred,
  spawnServerChild,
  startServer,
  type TestServer,
  USE_DENO,
  within,
} from "./_serve.ts";
import type { ServeHandler, ServeOptions } from "../../http/types.ts";
import { serve, upgradeConnection } from "../../http/mod.ts";
import { sleep } from "../_helpers.ts";
import { readProcFile } from "../../ffi/process.ts";

const enc = new TextEncoder();

/** Requests the handler saw, as "METHOD /path?query". */
type Log = string[];

function app(log: Log): ServeHandler {
  return async (req) => {
    const url = new URL(req.url);
    log.push(`${req.method} ${url.pathname}${url.search}`);
    switch (url.pathname) {
      case "/":
        return new Response("Hello, World!", { headers: { "content-type": "text/plain" } });
      case "/slow": {
        await sleep(Number(url.searchParams.get("ms") ?? 300));
        return new Response(`slow ${url.searchParams.get("ms") ?? 300}`);
      }
      case "/echo":
        return new Response(await req.arrayBuffer(), {
          headers: { "x-method": req.method },
        });
      case "/json":
        return Response.json({ message: "Hello, World!" });
      case "/stream":
        return new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(enc.encode("one,"));
              c.enqueue(enc.encode("two"));
              c.close();
            },
          }),
          { headers: { "content-type": "text/plain" } },
        );
      case "/nope":
        return new Response("Not Found\n", { status: 404 });
      case "/throw":
        throw new Error("handler threw (expected by the test)");
      case "/reject":
        return await Promise.reject(new Error("handler rejected (expected by the test)"));
      default:
        return new Response(`${req.method} ${url.pathname}${url.search}`);
    }
  };
}

/** Run `fn` with a fresh server (closed afterwards, also on failure). */
async function withServer(
  options: Omit<ServeOptions, "hostname" | "port" | "onListen">,
  handler: ServeHandler,
  fn: (server: TestServer) => Promise<void>,
): Promise<void> {
  const server = startServer({ onError: quietError, ...options }, handler);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** The default onError without the log noise of expected throws. */
function quietError(): Response {
  return new Response("Internal Server Error", { status: 500 });
}

/** Tests that need options Deno.serve has no equivalent for (timeouts, limits, upgrade). */
const onDeno = USE_DENO;
if (onDeno) {
  console.log(
    "skip: semantics_test.ts: the tests of ffinet-only options (timeouts, limits, upgrade) " +
      "are ignored against Deno.serve (FFINET_HTTP_TEST_SERVER=deno)",
  );
}

async function connect(server: TestServer): Promise<RawClient> {
  return await RawClient.connect(server.port);
}

async function expectResponse(
  c: RawClient,
  status: number,
  opts: { head?: boolean; body?: string } = {},
): Promise<RawResponse> {
  const r = must(
    await c.readResponse({ head: opts.head ?? false }),
    `a ${status} response (not the end of the connection)`,
  );
  assertEquals(r.status, status, `status (body: ${JSON.stringify(r.text)})`);
  if (opts.body !== undefined) assertEquals(r.text, opts.body);
  return r;
}

Deno.test("semantics: pipelined responses leave in request order whatever the handler timing", async () => {
  const log: Log = [];
  await withServer({}, app(log), async (server) => {
    using c = await connect(server);
    await c.write(
      request("GET", "/slow?ms=300") + request("GET", "/") + request("GET", "/slow?ms=100") +
        request("GET", "/a"),
    );
    await expectResponse(c, 200, { body: "slow 300" });
    await expectResponse(c, 200, { body: "Hello, World!" });
    await expectResponse(c, 200, { body: "slow 100" });
    await expectResponse(c, 200, { body: "GET /a" });
  });
});

Deno.test("semantics: Connection: close ends the connection after that response; later requests are not read", async () => {
  const log: Log = [];
  await withServer({}, app(log), async (server) => {
    using c = await connect(server);
    await c.write(
      request("GET", "/slow?ms=300") + request("GET", "/a", { connection: "close" }) +
        request("GET", "/b"),
    );
    await expectResponse(c, 200, { body: "slow 300" });
    const r = await expectResponse(c, 200, { body: "GET /a" });
    assertEquals(r.headers.get("connection")?.toLowerCase(), "close");
    assertEquals(await c.waitEnd(5000), "eof", "the server closes (FIN) after Connection: close");
    assertEquals(c.pending.length, 0, "nothing after the Connection: close response");
    await sleep(100);
    assert(!log.includes("GET /b"), `the request after Connection: close was read: ${log}`);
  });
});

Deno.test("semantics: HTTP/1.0 without keep-alive ends the connection after the response; with keep-alive it stays", async () => {
  const log: Log = [];
  await withServer({}, app(log), async (server) => {
    {
      using c = await connect(server);
      await c.write(
        request("GET", "/slow?ms=200", {}, "", "HTTP/1.0") +
          request("GET", "/b", {}, "", "HTTP/1.0"),
      );
      await expectResponse(c, 200, { body: "slow 200" });
      assertEquals(await c.waitEnd(5000), "eof");
      assertEquals(c.pending.length, 0);
      await sleep(100);
      assert(!log.includes("GET /b"), `the request after an HTTP/1.0 request was read: ${log}`);
    }
    {
      using c = await connect(server);
      await c.write(
        request("GET", "/c", { connection: "keep-alive" }, "", "HTTP/1.0") +
          request("GET", "/d", {}, "", "HTTP/1.0"),
      );
      const r = await expectResponse(c, 200, { body: "GET /c" });
      assertEquals(r.headers.get("connection")?.toLowerCase(), "keep-alive");
      await expectResponse(c, 200, { body: "GET /d" });
      assertEquals(await c.waitEnd(5000), "eof");
    }
  });
});

Deno.test("semantics: a pending response is sent before the 400 of a later malformed pipelined request", async () => {
  const log: Log = [];
  await withServer({}, app(log), async (server) => {
    using c = await connect(server);
    await c.write(
      request("GET", "/slow?ms=300") + "GET /x HTTP/1.1\r\nHost: a\r\nthis is not a header\r\n\r\n",
    );
    await expectResponse(c, 200, { body: "slow 300" });
    await expectResponse(c, 400);
    assertEquals(await c.waitEnd(5000), "eof", "the connection ends after the 400");
  });
});

Deno.test("semantics: HEAD never carries a body (every route, errors too); its headers match GET's; the next response stays in sync", async () => {
  const log: Log = [];
  await withServer({ maxTargetBytes: 1024 }, app(log), async (server) => {
    for (const path of ["/", "/json", "/stream", "/nope", "/throw", "/reject"]) {
      using g = await connect(server);
      await g.write(request("GET", path));
      const get = must(await g.readResponse(), `GET ${path} response`);
      using h = await connect(server);
      await h.write(request("HEAD", path) + request("GET", "/"));
      const head = must(await h.readResponse({ head: true }), `HEAD ${path} response`);
      assertEquals(head.status, get.status, `HEAD ${path} status`);
      for (const [name, value] of get.headers) {
        if (name === "date" || name === "transfer-encoding" || name === "content-length") continue;
        assertEquals(head.headers.get(name), value, `HEAD ${path}: header ${name}`);
      }
      if (head.headers.has("content-length")) {
        assertEquals(
          head.headers.get("content-length"),
          get.headers.get("content-length") ?? String(get.body.length),
          `HEAD ${path}: content-length`,
        );
      }
      if (get.framing === "length") {
        assertEquals(head.headers.get("content-length"), String(get.body.length));
      }
      // The bytes after the HEAD response are exactly the next response.
      await expectResponse(h, 200, { body: "Hello, World!" });
    }
    if (!onDeno) {
      // A server-made error (414) to HEAD: no body either; nothing but the head before the close.
      using c = await connect(server);
      await c.write(request("HEAD", "/" + "a".repeat(2000)));
      const r = await expectResponse(c, 414, { head: true });
      assertEquals(r.body.length, 0);
      assertEquals(await c.waitEnd(5000), "eof");
      assertEquals(c.pending.length, 0, "a body followed the HEAD 414");
    }
  });
});

Deno.test({
  name:
    "semantics: write backpressure: a client that pipelines without reading does not grow the server (RSS of a child server)",
  async fn() {
    const server = await spawnServerChild("hello");
    const port = server.port;
    try {
      // Warm up so the baseline includes the code paths of serving.
      {
        using w = await RawClient.connect(port);
        await w.write(request("GET", "/").repeat(2000));
        for (let i = 0; i < 2000; i++) await w.readResponse();
      }
      await sleep(200);
      const before = rssKiB(readProcFile(`/proc/${server.pid}/status`));
      using c = await RawClient.connect(port);
      const block = enc.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(2400)); // ~64 KiB
      let written = 0;
      let stalled = false;
      let after = before;
      // Each write finishes what a short one left: the stream of requests stays valid
      // (a corrupt one would get a 400 and a close, and prove nothing).
      let pending = block.subarray(0);
      const end = Date.now() + 6000;
      while (Date.now() < end) {
        const w = c.conn.write(pending);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const r = await Promise.race([
          w,
          new Promise<"stall">((res) => timer = setTimeout(() => res("stall"), 1500)),
        ]);
        clearTimeout(timer);
        if (r === "stall") {
          stalled = true;
          after = rssKiB(readProcFile(`/proc/${server.pid}/status`));
          c.close();
          await w.catch(() => {});
          break;
        }
        written += r;
        pending = r < pending.byteLength ? pending.subarray(r) : block.subarray(0);
      }
      if (!stalled) after = rssKiB(readProcFile(`/proc/${server.pid}/status`));
      const growthMiB = (after - before) / 1024;
      console.log(
        `backpressure: wrote ${(written / 1048576).toFixed(1)} MiB of requests (${
          Math.round(written / 27)
        }), stalled=${stalled}, server RSS ${before} -> ${after} KiB (+${
          growthMiB.toFixed(1)
        } MiB)`,
      );
      assert(stalled, "the server kept reading a connection whose output it could not send");
      assert(growthMiB < 48, `server RSS grew by ${growthMiB.toFixed(1)} MiB`);
    } finally {
      await server.kill();
    }
  },
});

Deno.test({
  name:
    "semantics: a client that sends only CRLFs is still closed by the header timeout (with FIN)",
  ignore: onDeno,
  async fn() {
    await withServer({ headerTimeoutMs: 500, idleTimeoutMs: 800 }, app([]), async (server) => {
      using c = await connect(server);
      let ended = false;
      const writer = (async () => {
        while (!ended) {
          try {
            await c.write("\r\n");
          } catch {
            return;
          }
          await sleep(50);
        }
      })();
      const t0 = Date.now();
      const end = await c.waitEnd(5000);
      ended = true;
      await writer;
      const ms = Date.now() - t0;
      assertNotEquals(end, "timeout", "CRLFs kept the connection open for 5 s");
      assert(ms < 3000, `closed only after ${ms} ms`);
      assertEquals(end, "eof", "closed with RST instead of FIN");
    });
  },
});

Deno.test({
  name:
    "semantics: the header timeout covers the head only: a slow but live body upload is not cut",
  ignore: onDeno,
  async fn() {
    await withServer(
      { headerTimeoutMs: 400, bodyTimeoutMs: 3000 },
      app([]),
      async (server) => {
        using c = await connect(server);
        const body = "0123456789abcdef";
        await c.write(request("POST", "/echo", { "content-length": String(body.length) }));
        for (const ch of body) {
          await sleep(100); // 1.6 s in all, four times the header timeout
          await c.write(ch);
        }
        await expectResponse(c, 200, { body });
      },
    );
  },
});

Deno.test({
  name: "semantics: a stalled request body is cut by the body timeout",
  ignore: onDeno,
  async fn() {
    await withServer(
      { headerTimeoutMs: 5000, bodyTimeoutMs: 400 },
      app([]),
      async (server) => {
        using c = await connect(server);
        await c.write(request("POST", "/echo", { "content-length": "100" }, "0123456789"));
        const t0 = Date.now();
        const end = await c.waitEnd(4000);
        const ms = Date.now() - t0;
        assertNotEquals(end, "timeout", "a stalled body kept the connection open");
        assert(ms < 3000, `closed only after ${ms} ms`);
        if (c.pending.length > 0) {
          const r = await c.readResponse();
          assert(r !== null && r.status >= 400, `unexpected response ${r?.status}`);
        }
      },
    );
  },
});

Deno.test("semantics: Expect: 100-continue gets 100 Continue before the body is read", async () => {
  await withServer({}, app([]), async (server) => {
    using c = await connect(server);
    await c.write(
      request("POST", "/echo", { "content-length": "5", expect: "100-continue" }),
    );
    const interim = must(await c.readResponse({ timeoutMs: 3000 }), "a 100 response");
    assertEquals(interim.status, 100, "expected 100 Continue before sending the body");
    await c.write("hello");
    await expectResponse(c, 200, { body: "hello" });
  });
});

Deno.test({
  name: "semantics: Expect: 100-continue with a body over maxBodyBytes gets 413 at once, no 100",
  ignore: onDeno,
  async fn() {
    await withServer({ maxBodyBytes: 1000 }, app([]), async (server) => {
      using c = await connect(server);
      await c.write(
        request("POST", "/echo", { "content-length": "100000", expect: "100-continue" }),
      );
      const r = must(await c.readResponse({ timeoutMs: 3000 }), "a 413 response");
      assertEquals(r.status, 413);
    });
  },
});

Deno.test("semantics: absolute-form request targets are accepted (RFC 9112 §3.2.2)", async () => {
  await withServer({}, app([]), async (server) => {
    using c = await connect(server);
    await c.write(
      request("GET", `http://127.0.0.1:${server.port}/abs/path?x=1`, {
        host: `127.0.0.1:${server.port}`,
      }),
    );
    await expectResponse(c, 200, { body: "GET /abs/path?x=1" });
  });
});

Deno.test({
  name: "semantics: a too-long request target gets 414",
  ignore: onDeno,
  async fn() {
    await withServer({ maxTargetBytes: 1024 }, app([]), async (server) => {
      using c = await connect(server);
      await c.write(request("GET", "/" + "a".repeat(2000)));
      await expectResponse(c, 414);
    });
    // and the default limit (8192)
    await withServer({}, app([]), async (server) => {
      using c = await connect(server);
      await c.write(request("GET", "/" + "b".repeat(9000)));
      await expectResponse(c, 414);
    });
  },
});

Deno.test("semantics: a Host that is not a valid host gets 400 (missing and repeated too); valid ones pass", async () => {
  await withServer({}, app([]), async (server) => {
    const bad = ["exa mple.com", "a/b", "[::1", "a@b", "h:1:2", "h:port", "a\\b", "a?b", "h#x"];
    for (const host of bad) {
      using c = await connect(server);
      await c.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      const r = await c.readResponse();
      assertEquals(r?.status, 400, `Host: ${host}`);
    }
    {
      using c = await connect(server);
      await c.write(`GET / HTTP/1.1\r\nX: y\r\n\r\n`);
      assertEquals((await c.readResponse())?.status, 400, "HTTP/1.1 without Host");
    }
    {
      using c = await connect(server);
      await c.write(`GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`);
      assertEquals((await c.readResponse())?.status, 400, "two Host fields");
    }
    const good = ["example.com", "127.0.0.1:8080", "[::1]:80", "xn--80ak6aa92e.com", "a-b.c_d"];
    for (const host of good) {
      using c = await connect(server);
      await c.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      const r = await c.readResponse();
      assertEquals(r?.status, 200, `Host: ${host}`);
    }
  });
});

Deno.test("semantics: chunk extensions follow RFC 9112 §7.1.1: `5;`, `5 ` and an unbalanced quote get 400", async () => {
  await withServer({}, app([]), async (server) => {
    const head = request("POST", "/echo", { "transfer-encoding": "chunked" });
    const bad = ["5;", "5 ", '5;a="b', "5;=b", "5;a=", "5;a b"];
    for (const size of bad) {
      using c = await connect(server);
      await c.write(`${head}${size}\r\nhello\r\n0\r\n\r\n`);
      const r = await c.readResponse();
      assertEquals(r?.status, 400, `chunk size line ${JSON.stringify(size)}`);
    }
    const good = ["5", "5;a=b", '5;a="b;c"', "5;a;b=c", '5;a="q\\"x"'];
    for (const size of good) {
      using c = await connect(server);
      await c.write(`${head}${size}\r\nhello\r\n0\r\n\r\n`);
      const r = await c.readResponse();
      assertEquals(r?.status, 200, `chunk size line ${JSON.stringify(size)}`);
      assertEquals(r?.text, "hello");
    }
  });
});

Deno.test({
  name: "semantics: idle and timed-out connections are closed with FIN, not RST",
  ignore: onDeno,
  async fn() {
    await withServer(
      { idleTimeoutMs: 400, headerTimeoutMs: 400 },
      app([]),
      async (server) => {
        // kept alive after a response, then idle
        using a = await connect(server);
        await a.write(request("GET", "/"));
        await expectResponse(a, 200);
        // connected, never sent a byte
        using b = await connect(server);
        // a partial head, then nothing (header timeout: 408 allowed before the FIN)
        using d = await connect(server);
        await d.write("GET / HTTP/1.1\r\nHo");
        const [ea, eb, ed] = await Promise.all([a.waitEnd(4000), b.waitEnd(4000), d.waitEnd(4000)]);
        assertEquals(ea, "eof", "idle kept-alive connection");
        assertEquals(eb, "eof", "connection that never sent a byte");
        assertEquals(ed, "eof", "connection with a partial head");
        assertEquals(a.pending.length, 0);
        if (d.pending.length > 0) assertEquals((await d.readResponse())?.status, 408);
      },
    );
  },
});

Deno.test("semantics: a handler that throws or rejects gets a 500 and the server keeps serving", async () => {
  const server = startServer({}, app([]));
  const origError = console.error;
  console.error = () => {}; // the default onError logs the (expected) error
  try {
    using c = await connect(server);
    await c.write(request("GET", "/throw") + request("GET", "/reject") + request("GET", "/"));
    await expectResponse(c, 500);
    await expectResponse(c, 500);
    await expectResponse(c, 200, { body: "Hello, World!" });
    using d = await connect(server);
    await d.write(request("GET", "/"));
    await expectResponse(d, 200, { body: "Hello, World!" });
  } finally {
    console.error = origError;
    await server.close();
  }
});

Deno.test("semantics: onError's response is used for a handler that throws", async () => {
  const errors: unknown[] = [];
  const onError = (e: unknown) => {
    errors.push(e);
    return new Response("custom error page", { status: 503, headers: { "x-custom": "1" } });
  };
  await withServer({ onError }, app([]), async (server) => {
    using c = await connect(server);
    await c.write(request("GET", "/throw") + request("GET", "/reject") + request("GET", "/"));
    const r = await expectResponse(c, 503, { body: "custom error page" });
    assertEquals(r.headers.get("x-custom"), "1");
    await expectResponse(c, 503, { body: "custom error page" });
    await expectResponse(c, 200);
    assertEquals(errors.length, 2);
    assert(errors[0] instanceof Error && /threw/.test(errors[0].message));
  });
});

Deno.test("semantics: request bodies stream: the handler sees the first chunk before the upload ends (Content-Length and chunked)", async () => {
  let first = deferred<string>();
  const handler: ServeHandler = async (req) => {
    const reader = req.body!.getReader();
    const chunks: string[] = [];
    let signalled = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(new TextDecoder().decode(value));
      if (!signalled) {
        signalled = true;
        first.resolve(chunks[0]!);
      }
    }
    return new Response(chunks.join(""));
  };
  await withServer({}, handler, async (server) => {
    {
      using c = await connect(server);
      await c.write(request("POST", "/up", { "content-length": "10" }, "hello"));
      assertEquals(await within(first.promise, 5000, "first body chunk"), "hello");
      await c.write("world");
      await expectResponse(c, 200, { body: "helloworld" });
    }
    first = deferred<string>();
    {
      using c = await connect(server);
      await c.write(request("POST", "/up", { "transfer-encoding": "chunked" }, "5\r\nhello\r\n"));
      assertEquals(await within(first.promise, 5000, "first chunked body chunk"), "hello");
      await c.write("6\r\n world\r\n0\r\n\r\n");
      await expectResponse(c, 200, { body: "hello world" });
    }
  });
});

Deno.test("semantics: chunked request bodies are decoded (several chunks, extensions, trailers)", async () => {
  await withServer({}, app([]), async (server) => {
    using c = await connect(server);
    const body =
      "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nx-trailer: 1\r\n\r\n";
    await c.write(request("POST", "/echo", { "transfer-encoding": "chunked" }, body));
    await expectResponse(c, 200, { body: "Wikipedia in\r\n\r\nchunks." });
    // and a second request on the same connection stays in sync
    await c.write(request("POST", "/echo", { "content-length": "3" }, "abc"));
    await expectResponse(c, 200, { body: "abc" });
  });
});

Deno.test("semantics: every Response body kind: string, bytes, Blob, FormData, URLSearchParams, ReadableStream (chunked)", async () => {
  const form = new FormData();
  form.append("a", "1");
  form.append("file", new Blob(["xyz"], { type: "text/plain" }), "f.txt");
  const bodies: Record<string, () => BodyInit> = {
    "/string": () => "héllo",
    "/bytes": () => new Uint8Array([0, 1, 2, 255]),
    "/buffer": () => new Uint8Array([9, 8, 7]).buffer,
    "/blob": () => new Blob(["blob!"], { type: "application/x-test" }),
    "/form": () => form,
    "/params": () => new URLSearchParams({ q: "a b", r: "é" }),
    "/stream": () =>
      new ReadableStream({
        start(c) {
          c.enqueue(enc.encode("s1,"));
          c.enqueue(enc.encode("s2"));
          c.close();
        },
      }),
  };
  await withServer(
    {},
    (req) => new Response(bodies[new URL(req.url).pathname]!()),
    async (server) => {
      using c = await connect(server);
      for (const path of Object.keys(bodies)) {
        await c.write(request("GET", path));
        const r = await expectResponse(c, 200);
        const expected = new Response(bodies[path]!());
        const ct = expected.headers.get("content-type");
        if (path === "/form") {
          assertMatch(r.headers.get("content-type") ?? "", /^multipart\/form-data; boundary=/);
          const parsed = await new Response(r.body, {
            headers: { "content-type": r.headers.get("content-type")! },
          }).formData();
          assertEquals(parsed.get("a"), "1");
          assertEquals(await (parsed.get("file") as File).text(), "xyz");
          continue;
        }
        assertEquals(r.headers.get("content-type") ?? null, ct, `${path} content-type`);
        assertEquals(r.body, new Uint8Array(await expected.arrayBuffer()), `${path} body`);
        if (path === "/stream") {
          assertEquals(r.framing, "chunked", "a stream of unknown length goes out chunked");
        } else if (path !== "/blob") {
          assertEquals(r.framing, "length", `${path} has a Content-Length`);
        }
      }
    },
  );
});

Deno.test("semantics: req.signal aborts when the client goes away", async () => {
  const aborted = deferred<void>();
  const started = deferred<void>();
  const handler: ServeHandler = async (req) => {
    req.signal.addEventListener("abort", () => aborted.resolve());
    started.resolve();
    await within(aborted.promise, 5000, "req.signal abort").catch(() => {});
    return new Response("late");
  };
  await withServer({}, handler, async (server) => {
    const c = await connect(server);
    await c.write(request("GET", "/hang"));
    await within(started.promise, 5000, "handler start");
    c.close();
    await within(aborted.promise, 4000, "req.signal to abort after the client closed");
  });
});

Deno.test({
  name: "semantics: upgrade: after 101 the handler owns the raw connection (echo protocol)",
  ignore: onDeno,
  async fn() {
    const handler: ServeHandler = (req) => {
      if (new URL(req.url).pathname !== "/up") return new Response("plain");
      const { response, connection } = upgradeConnection(req, { headers: { "x-up": "yes" } });
      connection.then(({ conn, head }) => {
        if (head.length > 0) conn.write(head);
        conn.onData = (data) => {
          conn.write(data);
        };
      });
      return response;
    };
    await withServer({}, handler, async (server) => {
      using c = await connect(server);
      await c.write(
        request("GET", "/") +
          request("GET", "/up", { connection: "upgrade", upgrade: "echo" }) + "early bytes|",
      );
      await expectResponse(c, 200, { body: "plain" });
      const r = await expectResponse(c, 101);
      assertEquals(r.headers.get("upgrade"), "echo");
      assertEquals(r.headers.get("x-up"), "yes");
      assertMatch(r.headers.get("connection") ?? "", /upgrade/i);
      await c.write("after 101");
      const want = "early bytes|after 101";
      const deadline = Date.now() + 5000;
      while (c.pending.length < want.length && Date.now() < deadline) {
        if ((await c.fill(deadline - Date.now())) !== "data") break;
      }
      assertEquals(new TextDecoder().decode(c.pending), want);
    });
  },
});

Deno.test("semantics: info.remoteAddr is the peer and info.completed resolves after the response", async () => {
  const completed = deferred<void>();
  let peer = "";
  await withServer({}, (_req, info) => {
    const a = info.remoteAddr;
    peer = a.transport === "tcp" ? `${a.hostname}` : "unix";
    info.completed.then(() => completed.resolve());
    return new Response("ok");
  }, async (server) => {
    using c = await connect(server);
    await c.write(request("GET", "/"));
    await expectResponse(c, 200, { body: "ok" });
    await within(completed.promise, 3000, "info.completed");
    assertEquals(peer, "127.0.0.1");
    const local = c.conn.localAddr as Deno.NetAddr;
    assert(local.port > 0);
  });
});

Deno.test("semantics: request bodies have backpressure: a handler that does not read stops the upload (the socket is not drained into memory)", async () => {
  const firstChunk = deferred<void>();
  const release = deferred<void>();
  let received = 0;
  const handler: ServeHandler = async (req) => {
    const reader = req.body!.getReader();
    const first = await reader.read();
    received += first.value?.length ?? 0;
    firstChunk.resolve();
    await release.promise; // the handler stops reading for a while
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.length;
    }
    return new Response(String(received));
  };
  await withServer({}, handler, async (server) => {
    using c = await connect(server);
    const total = 256 * 1024 * 1024;
    await c.write(request("POST", "/up", { "content-length": String(total) }));
    const block = new Uint8Array(1024 * 1024).fill(120);
    let written = 0;
    let stalled = false;
    const writeAll = async () => {
      while (written < total) {
        const w = c.conn.write(block.subarray(0, Math.min(block.length, total - written)));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const r = await Promise.race([
          w,
          new Promise<"stall">((res) => timer = setTimeout(() => res("stall"), 1000)),
        ]);
        clearTimeout(timer);
        if (r === "stall") {
          stalled = true;
          return { w };
        }
        written += r;
      }
      return undefined;
    };
    const pending = await writeAll();
    await within(firstChunk.promise, 5000, "the handler's first chunk");
    console.log(
      `request backpressure: client wrote ${(written / 1048576).toFixed(1)} MiB of ${
        total / 1048576
      } MiB before stalling (stalled=${stalled})`,
    );
    assert(stalled, "the server read a 256 MiB body its handler was not reading");
    assert(written < 64 * 1024 * 1024, `the server took ${written} bytes without the handler`);
    release.resolve();
    c.close();
    await pending?.w.catch(() => {});
  });
});

Deno.test("semantics: a body the handler never reads is skipped: the next pipelined request stays in sync (Content-Length and chunked)", async () => {
  const handler: ServeHandler = (req) => new Response(`${req.method} ${new URL(req.url).pathname}`);
  await withServer({}, handler, async (server) => {
    using c = await connect(server);
    await c.write(
      request("POST", "/ignore", { "content-length": "24" }, "GET /smuggled HTTP/1.1\r\n") +
        request(
          "POST",
          "/ignore2",
          { "transfer-encoding": "chunked" },
          `${(27).toString(16)}\r\nGET /smuggled2 HTTP/1.1\r\n\r\n\r\n0\r\n\r\n`,
        ) + request("GET", "/after"),
    );
    await expectResponse(c, 200, { body: "POST /ignore" });
    await expectResponse(c, 200, { body: "POST /ignore2" });
    await expectResponse(c, 200, { body: "GET /after" });
  });
});

Deno.test("semantics: request smuggling vectors get 400 and a close (CL+TE, two lengths, bad TE, obs-fold, space before colon)", async () => {
  const log: Log = [];
  await withServer({}, app(log), async (server) => {
    const vectors: Record<string, string> = {
      "CL and TE": "content-length: 5\r\ntransfer-encoding: chunked\r\n",
      "two different Content-Lengths": "content-length: 5\r\ncontent-length: 6\r\n",
      "Content-Length list": "content-length: 5, 6\r\n",
      "signed Content-Length": "content-length: +5\r\n",
      "chunked not last": "transfer-encoding: chunked, gzip\r\n",
      "chunked twice": "transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n",
      "obs-fold": "x-a: b\r\n folded\r\n",
      "space before colon": "content-length : 5\r\n",
      "TE with HTTP/1.0 framing trick": "transfer-encoding: xchunked\r\n",
    };
    for (const [what, lines] of Object.entries(vectors)) {
      using c = await connect(server);
      await c.write(
        `POST /echo HTTP/1.1\r\nHost: a\r\n${lines}\r\n5\r\nhello\r\n0\r\n\r\n` +
          request("GET", "/smuggled"),
      );
      const r = must(await c.readResponse(), `a response to ${what}`);
      assert(r.status === 400 || r.status === 501, `${what}: status ${r.status}`);
      assertEquals(await c.waitEnd(5000), "eof", `${what}: the connection ends`);
      assertEquals(c.pending.length, 0, `${what}: nothing after the error`);
    }
    await sleep(50);
    assert(!log.includes("GET /smuggled"), "a smuggled request reached the handler");
  });
});

Deno.test("semantics: a streamed body to an HTTP/1.0 client is close-delimited (no chunked)", async () => {
  await withServer({}, app([]), async (server) => {
    using c = await connect(server);
    await c.write(request("GET", "/stream", {}, "", "HTTP/1.0"));
    const r = must(await c.readResponse(), "a response");
    assertEquals(r.status, 200);
    assertEquals(r.headers.get("transfer-encoding"), undefined);
    assertEquals(r.text, "one,two");
    assertEquals(await c.waitEnd(5000), "eof");
  });
});

Deno.test("semantics: 204 and 304 never carry a body; multiple Set-Cookie stay separate lines", async () => {
  const handler: ServeHandler = (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/204") return new Response(null, { status: 204 });
    if (path === "/304") return new Response(null, { status: 304, headers: { etag: '"x"' } });
    const h = new Headers();
    h.append("set-cookie", "a=1; Path=/");
    h.append("set-cookie", "b=2; Path=/");
    return new Response("cookies", { headers: h });
  };
  await withServer({}, handler, async (server) => {
    using c = await connect(server);
    await c.write(request("GET", "/204") + request("GET", "/304") + request("GET", "/cookies"));
    const a = await expectResponse(c, 204);
    assertEquals(a.headers.get("content-length") ?? "0", "0");
    assertEquals(a.headers.get("transfer-encoding"), undefined);
    const b = await expectResponse(c, 304);
    assertEquals(b.headers.get("etag"), '"x"');
    assertEquals(b.headers.get("transfer-encoding"), undefined);
    const d = await expectResponse(c, 200, { body: "cookies" });
    assertEquals(
      d.headerList.filter(([n]) => n.toLowerCase() === "set-cookie").map(([, v]) => v),
      ["a=1; Path=/", "b=2; Path=/"],
    );
  });
});

Deno.test("semantics: a response stream that errors midway ends the connection (no fake end, no later response)", async () => {
  const origError = console.error;
  console.error = () => {};
  try {
    const handler: ServeHandler = (req) => {
      if (new URL(req.url).pathname !== "/broken") return new Response("later");
      let n = 0;
      return new Response(
        new ReadableStream({
          pull(c) {
            if (n++ < 2) c.enqueue(enc.encode("part;"));
            else c.error(new Error("stream failed (expected by the test)"));
          },
        }),
      );
    };
    await withServer({}, handler, async (server) => {
      using c = await connect(server);
      await c.write(request("GET", "/broken") + request("GET", "/later"));
      const end = await c.waitEnd(5000);
      // Abandoned mid-response: a FIN or an RST are both fine, a connection left open is not.
      assertNotEquals(end, "timeout", "the connection ends after the broken stream");
      const text = new TextDecoder().decode(c.pending);
      assert(
        !text.includes("\r\n0\r\n\r\n"),
        `a chunked end was sent for a failed stream: ${text}`,
      );
      assert(!text.includes("later"), "a response followed the broken one");
    });
  } finally {
    console.error = origError;
  }
});

Deno.test("semantics: 300 pipelined requests with random bodies (Content-Length and chunked) are each echoed in order", async () => {
  await withServer({}, app([]), async (server) => {
    using c = await connect(server);
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
    const bodies: string[] = [];
    let out = "";
    for (let i = 0; i < 300; i++) {
      const len = Math.floor(rand() * (rand() < 0.1 ? 70000 : 300));
      const body = `${i}:` + "x".repeat(len);
      bodies.push(body);
      if (rand() < 0.5) {
        out += request("POST", "/echo", { "content-length": String(body.length) }, body);
      } else {
        let chunked = "";
        for (let p = 0; p < body.length;) {
          const n = 1 + Math.floor(rand() * 5000);
          const part = body.slice(p, p + n);
          chunked += `${part.length.toString(16)}\r\n${part}\r\n`;
          p += n;
        }
        out += request("POST", "/echo", { "transfer-encoding": "chunked" }, chunked + "0\r\n\r\n");
      }
    }
    const writing = c.write(out);
    for (let i = 0; i < 300; i++) {
      const r = await expectResponse(c, 200);
      if (r.text !== bodies[i]) {
        throw new Error(
          `response ${i}: ${r.text.slice(0, 20)}… instead of ${bodies[i]!.slice(0, 20)}…`,
        );
      }
    }
    await writing;
  });
});

Deno.test("semantics: a streamed response body is pulled only as fast as a slow client reads (highWaterMark)", async () => {
  let pulled = 0;
  const chunk = new Uint8Array(64 * 1024).fill(46);
  const handler: ServeHandler = () =>
    new Response(
      new ReadableStream({
        pull(c) {
          pulled += chunk.length;
          if (pulled > 512 * 1024 * 1024) c.close();
          else c.enqueue(chunk);
        },
      }, { highWaterMark: 0 }),
    );
  await withServer({ highWaterMark: 256 * 1024 }, handler, async (server) => {
    const c = await connect(server);
    await c.write(request("GET", "/big"));
    await sleep(800); // the client reads nothing meanwhile
    const whileIdle = pulled;
    console.log(
      `response backpressure: ${
        (whileIdle / 1048576).toFixed(1)
      } MiB pulled while the client did not read`,
    );
    c.close();
    assert(
      whileIdle < 48 * 1024 * 1024,
      `the server pulled ${whileIdle} bytes for a client that did not read`,
    );
    await sleep(100);
  });
});

Deno.test("semantics: shutdown() lets an in-flight response finish, closes idle keep-alive connections, then finished resolves", async () => {
  const server = startServer({ onError: quietError }, app([]));
  let closed = false;
  try {
    using idle = await connect(server);
    await idle.write(request("GET", "/"));
    await expectResponse(idle, 200);
    using busy = await connect(server);
    await busy.write(request("GET", "/slow?ms=400"));
    await sleep(100);
    const t0 = Date.now();
    const done = server.close();
    await expectResponse(busy, 200, { body: "slow 400" });
    assertEquals(await idle.waitEnd(5000), "eof", "the idle connection is closed by the drain");
    await within(done, 8000, "shutdown to finish");
    closed = true;
    assert(Date.now() - t0 < 5000);
    await assertRejectsConnect(server.port);
  } finally {
    if (!closed) await server.close();
  }
});

async function assertRejectsConnect(port: number): Promise<void> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
  } catch (e) {
    assert(e instanceof Deno.errors.ConnectionRefused, `unexpected ${e}`);
    return;
  }
  throw new Error("a connection was accepted after shutdown");
}

Deno.test({
  name:
    "semantics: limits: a head over maxHeaderBytes gets 431, a body over maxBodyBytes gets 413 (Content-Length and chunked)",
  ignore: onDeno,
  async fn() {
    await withServer({ maxHeaderBytes: 2048, maxBodyBytes: 1000 }, app([]), async (server) => {
      {
        using c = await connect(server);
        await c.write(request("GET", "/", { "x-big": "y".repeat(4000) }));
        await expectResponse(c, 431);
        assertEquals(await c.waitEnd(5000), "eof");
      }
      {
        using c = await connect(server);
        await c.write(request("POST", "/echo", { "content-length": "5000" }, "z".repeat(5000)));
        await expectResponse(c, 413);
        assertEquals(await c.waitEnd(5000), "eof");
      }
      {
        using c = await connect(server);
        const chunk = "z".repeat(600);
        await c.write(
          request(
            "POST",
            "/echo",
            { "transfer-encoding": "chunked" },
            `258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`,
          ),
        );
        await expectResponse(c, 413);
        assertNotEquals(await c.waitEnd(5000), "timeout");
      }
      {
        // within the limits: still served
        using c = await connect(server);
        await c.write(request("POST", "/echo", { "content-length": "1000" }, "q".repeat(1000)));
        await expectResponse(c, 200, { body: "q".repeat(1000) });
      }
    });
  },
});

Deno.test("semantics: a handler that returns something that is not a Response gets a 500; the connection goes on", async () => {
  const errors: unknown[] = [];
  const handler =
    ((req: Request) =>
      new URL(req.url).pathname === "/bad"
        ? ("not a response" as unknown as Response)
        : new Response("fine")) as ServeHandler;
  await withServer(
    {
      onError: (e) => {
        errors.push(e);
        return new Response("handled", { status: 500 });
      },
    },
    handler,
    async (server) => {
      using c = await connect(server);
      await c.write(request("GET", "/bad") + request("GET", "/good"));
      await expectResponse(c, 500);
      await expectResponse(c, 200, { body: "fine" });
    },
  );
});

Deno.test({
  name: "semantics: serve() on a Unix socket path, and options.signal shuts it down",
  ignore: onDeno,
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/http.sock`;
    const ac = new AbortController();
    const server = serve(
      { path, signal: ac.signal, onListen() {} },
      (req) => new Response(`unix ${new URL(req.url).pathname}`),
    );
    try {
      assertEquals(server.addr.transport, "unix");
      const conn = await Deno.connect({ transport: "unix", path });
      await conn.write(enc.encode(request("GET", "/u", { connection: "close" })));
      const buf = new Uint8Array(4096);
      let text = "";
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      conn.close();
      assertMatch(text, /^HTTP\/1\.1 200 OK\r\n/);
      assert(text.endsWith("unix /u"), text);
      ac.abort();
      await within(server.finished, 8000, "finished after the signal aborted");
    } finally {
      ac.abort();
      await server.finished;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("semantics: requests trickled one byte per write (heads, Content-Length and chunked bodies) parse the same", async () => {
  await withServer({}, app([]), async (server) => {
    using c = await connect(server);
    const text = "\r\n" + // one leading empty line is ignored (RFC 9112 §2.2)
      request("POST", "/echo", { "content-length": "5" }, "hello") +
      request(
        "POST",
        "/echo",
        { "transfer-encoding": "chunked" },
        "3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      ) +
      request("GET", "/a?b=c");
    const bytes = enc.encode(text);
    const writing = (async () => {
      for (let i = 0; i < bytes.length; i++) {
        await c.write(bytes.subarray(i, i + 1));
        if (i % 16 === 0) await sleep(1);
      }
    })();
    await expectResponse(c, 200, { body: "hello" });
    await expectResponse(c, 200, { body: "abcde" });
    await expectResponse(c, 200, { body: "GET /a?b=c" });
    await writing;
  });
});

Deno.test("semantics: obs-text in a header value reaches the handler as latin1; chunked in HTTP/1.0 is refused", async () => {
  let seen = "";
  const handler: ServeHandler = (req) => {
    seen = req.headers.get("x-latin") ?? "";
    return new Response("ok");
  };
  await withServer({}, handler, async (server) => {
    {
      using c = await connect(server);
      const head = enc.encode(request("GET", "/", { "x-latin": "caf_" }));
      head[head.indexOf(0x5f)] = 0xe9; // "café" in latin1
      await c.write(head);
      await expectResponse(c, 200, { body: "ok" });
      assertEquals(seen, "caf\u00e9");
    }
    {
      using c = await connect(server);
      await c.write(
        request(
          "POST",
          "/",
          { "transfer-encoding": "chunked" },
          "5\r\nhello\r\n0\r\n\r\n",
          "HTTP/1.0",
        ),
      );
      const r = must(await c.readResponse(), "a response");
      assert(r.status === 400 || r.status === 501, `status ${r.status}`);
      assertEquals(await c.waitEnd(5000), "eof");
    }
  });
});

Deno.test({
  name:
    "semantics: the Deno.serve call forms: serve({ handler, ...options }) and serve(options, handler)",
  ignore: onDeno,
  async fn() {
    const a = serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      handler: () => new Response("init form"),
    });
    const b = serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("two args"),
    );
    try {
      for (const [server, body] of [[a, "init form"], [b, "two args"]] as const) {
        const port = (server.addr as { port: number }).port;
        const r = await fetch(`http://127.0.0.1:${port}/`);
        assertEquals(await r.text(), body);
      }
    } finally {
      await a.shutdown();
      await b.shutdown();
    }
  },
});

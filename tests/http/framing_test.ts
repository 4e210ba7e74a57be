/**
 * How `serve()` frames a response, against the wire (raw sockets; the
 * client parses every byte itself, so a wrong length desynchronises the
 * next response and fails the test): the handler's `content-length` for
 * HEAD and streams, UTF-8 lengths, 204/304, handler failures
 * (`Response.error()`, statuses outside 200-599, a used body), a `date`
 * that keeps time, and one serializer for `serve()` and `serveRaw()`.
 * `FFINET_HTTP_TEST_SERVER=deno` runs the same cases against `Deno.serve`
 * (the ones where ffinet is stricter on purpose are marked).
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { must, RawClient, request } from "./_raw.ts";
import { startServer } from "./_serve.ts";
import { prebuilt, serveRaw } from "../../http/mod.ts";
import { sleep } from "../_helpers.ts";

const enc = new TextEncoder();

function stream(parts: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const p of parts) c.enqueue(enc.encode(p));
      c.close();
    },
  });
}

Deno.test("framing: HEAD keeps the handler's content-length (null, string and stream bodies); GET of a null body says 0", async () => {
  const server = startServer({}, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/null") return new Response(null, { headers: { "content-length": "10" } });
    if (path === "/string") return new Response("hello", { headers: { "content-length": "10" } });
    return new Response(stream(["hel", "lo"]), { headers: { "content-length": "5" } });
  });
  try {
    using c = await RawClient.connect(server.port);
    await c.write(
      request("HEAD", "/null") + request("HEAD", "/string") + request("HEAD", "/stream") +
        request("GET", "/null") + request("GET", "/string") + request("GET", "/stream"),
    );
    const heads = [];
    for (let i = 0; i < 3; i++) heads.push(must(await c.readResponse({ head: true }), "a head"));
    assertEquals(heads.map((r) => r.headers.get("content-length")), ["10", "10", "5"]);
    assertEquals(heads.map((r) => r.headers.has("transfer-encoding")), [false, false, false]);
    const nul = must(await c.readResponse(), "GET /null");
    assertEquals(nul.headers.get("content-length"), "0");
    assertEquals(nul.text, "");
    const str = must(await c.readResponse(), "GET /string");
    assertEquals([str.headers.get("content-length"), str.text], ["5", "hello"]);
    const st = must(await c.readResponse(), "GET /stream");
    assertEquals([st.framing, st.headers.get("content-length"), st.text], ["length", "5", "hello"]);
    assertEquals(c.pending.length, 0, "nothing after the last response");
  } finally {
    await server.close();
  }
});

Deno.test("framing: a stream with a stated length (and a 206) goes out with content-length, not chunked; keep-alive goes on", async () => {
  const server = startServer({}, (req) => {
    if (new URL(req.url).pathname === "/range") {
      return new Response(stream(["abc"]), {
        status: 206,
        headers: { "content-length": "3", "content-range": "bytes 0-2/10" },
      });
    }
    return new Response(stream(["one,", "two,", "three"]), {
      headers: { "content-length": "13" },
    });
  });
  try {
    using c = await RawClient.connect(server.port);
    for (const path of ["/s", "/range", "/s"]) {
      await c.write(request("GET", path));
      const r = must(await c.readResponse(), path);
      assertEquals(r.framing, "length", `${path} is framed by its length`);
      assert(!r.headers.has("transfer-encoding"));
      if (path === "/range") {
        assertEquals([r.status, r.text, r.headers.get("content-range")], [
          206,
          "abc",
          "bytes 0-2/10",
        ]);
      } else {
        assertEquals(r.text, "one,two,three");
      }
    }
  } finally {
    await server.close();
  }
});

Deno.test("framing: non-ASCII string bodies: content-length is the UTF-8 byte length (fast and generic paths)", async () => {
  const text = "héllo € 😀";
  const bytes = enc.encode(text).length; // 15, the string's length is 10
  const server = startServer({}, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/fast") return new Response(text);
    return new Response(text, { status: 201, headers: { "x-path": "generic" } });
  });
  try {
    using c = await RawClient.connect(server.port);
    // Pipelined: a wrong length would make the next response unparsable.
    await c.write(request("GET", "/fast") + request("GET", "/generic") + request("GET", "/fast"));
    for (const status of [200, 201, 200]) {
      const r = must(await c.readResponse(), "a response");
      assertEquals(r.status, status);
      assertEquals(r.headers.get("content-length"), String(bytes));
      assertEquals(r.text, text);
    }
  } finally {
    await server.close();
  }
});

Deno.test("framing: 304 and 204 carry no content-length (not even the handler's) and no body", async () => {
  const server = startServer({}, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/304") return new Response(null, { status: 304 });
    if (path === "/304cl") {
      return new Response(null, { status: 304, headers: { "content-length": "10", etag: '"a"' } });
    }
    return new Response(null, { status: 204, headers: { "content-length": "10" } });
  });
  try {
    using c = await RawClient.connect(server.port);
    await c.write(
      request("GET", "/304") + request("GET", "/304cl") + request("GET", "/204") +
        request("GET", "/304"),
    );
    for (const status of [304, 304, 204, 304]) {
      const r = must(await c.readResponse(), "a response");
      assertEquals(r.status, status);
      assert(!r.headers.has("content-length"), `${status}: ${[...r.headers.keys()]}`);
      assert(!r.headers.has("transfer-encoding"));
    }
    assertEquals(c.pending.length, 0, "no body bytes after a 304/204");
  } finally {
    await server.close();
  }
});

Deno.test("framing: Response.error(), a 101 that is not an upgrade and a used or locked body are handler failures: onError, and the connection stays in sync", async () => {
  const errors: unknown[] = [];
  const server = startServer({
    onError(e) {
      errors.push(e);
      return new Response("from onError", { status: 500 });
    },
  }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/error") return Response.error();
    if (path === "/used") {
      const r = new Response("x");
      void r.text();
      return r;
    }
    if (path === "/locked") {
      const r = new Response(stream(["x"]));
      r.body!.getReader();
      return r;
    }
    if (path === "/101") {
      // Not constructible with `new Response`: a 101 as a library may make one.
      const r = new Response(null, { status: 200 });
      Object.defineProperty(r, "status", { value: 101 });
      return r;
    }
    return new Response("fine");
  });
  try {
    using c = await RawClient.connect(server.port);
    const paths = ["/error", "/used", "/locked", "/ok"];
    if (server.kind === "ffinet") paths.splice(3, 0, "/101"); // Deno.serve sends a half 101
    for (const path of paths) {
      await c.write(request("GET", path));
      const r = must(await c.readResponse(), path);
      if (path === "/ok") {
        assertEquals([r.status, r.text], [200, "fine"]);
      } else {
        assertEquals([r.status, r.text], [500, "from onError"], path);
      }
    }
    assertEquals(errors.length, paths.length - 1);
    for (const e of errors) assert(e instanceof TypeError, String(e));
    assertMatch(String(errors[0]), /Response\.error\(\)/);
    if (server.kind === "ffinet") assertMatch(String(errors[3]), /upgradeConnection/);
  } finally {
    await server.close();
  }
});

Deno.test("framing: without onError a failed response is a plain 500 (Response.error() never goes out as status 0)", async () => {
  const server = startServer({}, () => Response.error());
  const original = console.error;
  console.error = () => {}; // the default onError logs the failure
  try {
    using c = await RawClient.connect(server.port);
    await c.write(request("GET", "/") + request("GET", "/"));
    for (let i = 0; i < 2; i++) {
      const r = must(await c.readResponse(), "a response");
      assertEquals(r.status, 500);
    }
  } finally {
    console.error = original;
    await server.close();
  }
});

/** The `date` of a response as ms since the epoch. */
function dateOf(headers: Map<string, string>): number {
  return Date.parse(must(headers.get("date"), "a date field"));
}

Deno.test("framing: the date field keeps time on a kept-alive connection (serve() fast and generic paths, serveRaw() prebuilt)", async () => {
  const server = startServer(
    {},
    (req) =>
      new URL(req.url).pathname === "/fast"
        ? new Response("x")
        : new Response("y", { headers: { "x-a": "1" } }),
  );
  const hello = prebuilt(200, "hi", { contentType: "text/plain" });
  const raw = serveRaw(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req, res) => req.target === "/p" ? res.sendPrebuilt(hello) : res.send(200, "s"),
  );
  const rawPort = (raw.addr as { port: number }).port;
  try {
    using c = await RawClient.connect(server.port);
    using r = await RawClient.connect(rawPort);
    const dates = async () => {
      const out: number[] = [];
      for (const [client, path] of [[c, "/fast"], [c, "/generic"], [r, "/p"], [r, "/s"]] as const) {
        await client.write(request("GET", path));
        const res = must(await client.readResponse(), path);
        const d = dateOf(res.headers);
        assert(Math.abs(d - Date.now()) < 2500, `${path}: date ${d} is now (${Date.now()})`);
        out.push(d);
      }
      return out;
    };
    const first = await dates();
    await sleep(2100);
    const second = await dates();
    for (let i = 0; i < first.length; i++) {
      assert(second[i]! >= first[i]! + 1000, `date ${i} moved on: ${first[i]} -> ${second[i]}`);
    }
  } finally {
    await server.close();
    await raw.shutdown();
  }
});

Deno.test("framing: serve() and serveRaw() write the same head: lowercase server fields in one order", async () => {
  const server = startServer(
    {},
    () => new Response("abc", { headers: { "content-type": "text/plain", "x-a": "1" } }),
  );
  const raw = serveRaw(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (_req, res) => res.send(200, "abc", { contentType: "text/plain", headers: { "x-a": "1" } }),
  );
  try {
    const names = async (port: number) => {
      using c = await RawClient.connect(port);
      await c.write(request("GET", "/", { connection: "close" }));
      return must(await c.readResponse(), "a response").headerList.map(([n]) => n);
    };
    const rawNames = await names((raw.addr as { port: number }).port);
    for (const n of ["date", "content-length", "connection", "content-type"]) {
      assert(rawNames.includes(n), `serveRaw sends ${n} in lowercase: ${rawNames}`);
    }
    if (server.kind === "ffinet") assertEquals(await names(server.port), rawNames);
  } finally {
    await server.close();
    await raw.shutdown();
  }
});

/** Run curl with `args`; null (and a printed reason) when curl is missing. */
async function curl(args: string[]): Promise<{ code: number; out: string } | null> {
  try {
    const r = await new Deno.Command("curl", { args: ["-sS", "--max-time", "10", ...args] })
      .output();
    return { code: r.code, out: new TextDecoder().decode(r.stdout) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

Deno.test("framing: curl sees the handler's HEAD length, UTF-8 bodies whole, and a short stream as an error", async () => {
  const server = startServer({ onError: () => new Response("unused", { status: 500 }) }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/head") return new Response(null, { headers: { "content-length": "10" } });
    if (path === "/utf8") return new Response("héllo € 😀");
    return new Response(stream(["abc"]), { headers: { "content-length": "10" } });
  });
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const head = await curl(["-I", `${base}/head`]);
    if (head === null) {
      console.log("framing: curl is not installed; its checks are skipped");
      return;
    }
    assertEquals(head.code, 0);
    assertMatch(head.out, /content-length: 10\r\n/i);
    const body = must(await curl([`${base}/utf8`, `${base}/utf8`]), "curl");
    assertEquals([body.code, body.out], [0, "héllo € 😀".repeat(2)]);
    if (server.kind === "ffinet") {
      const short = must(await curl([`${base}/short`]), "curl");
      assert(short.code !== 0, `curl took a short body as complete: ${short.out}`);
    }
  } finally {
    await server.close();
  }
});

/**
 * The shortcuts of the request path keep the semantics of the long way:
 * - a fast-path response (a body and at most a content type) is sent when
 *   its body is unread, whether Deno keeps that body lazily
 *   (`new Response(text)`) or built (`new Response(text, { headers })`), or
 *   its stream was only looked at; once read it goes to `onError`;
 * - `req.url` comes from a cache keyed by target, yet follows the `Host`
 *   of each request, past the cache's size.
 *
 * Runs against `Deno.serve` too (`FFINET_HTTP_TEST_SERVER=deno`).
 */
import { assertEquals } from "@std/assert";
import { startServer } from "./_serve.ts";
import { serve } from "../../http/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Send `requests` on one connection; the response bodies in order (each has a content-length). */
async function exchange(port: number, requests: string[]): Promise<string[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bodies: string[] = [];
    let buffered = "";
    const buf = new Uint8Array(64 * 1024);
    for (const request of requests) {
      await conn.write(enc.encode(request));
      for (;;) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end >= 0) {
          const m = /content-length: *(\d+)/i.exec(buffered.slice(0, end));
          const length = m === null ? 0 : Number(m[1]);
          if (buffered.length >= end + 4 + length) {
            bodies.push(buffered.slice(end + 4, end + 4 + length));
            buffered = buffered.slice(end + 4 + length);
            break;
          }
        }
        const n = await conn.read(buf);
        if (n === null) throw new Error(`connection closed after ${bodies.length} responses`);
        buffered += dec.decode(buf.subarray(0, n));
      }
    }
    return bodies;
  } finally {
    conn.close();
  }
}

Deno.test("fast path: an unread body is sent, a read one goes to onError", async () => {
  const errors: string[] = [];
  const server = startServer({
    onError(e) {
      errors.push((e as Error).constructor.name);
      return new Response("onError", { status: 500 });
    },
  }, async (req) => {
    const path = new URL(req.url).pathname;
    switch (path) {
      case "/lazy":
        return new Response("lazy");
      case "/typed":
        return new Response('{"a":1}', { headers: { "content-type": "application/json" } });
      case "/looked": {
        const r = new Response("looked");
        if (r.body === null) throw new Error("no body");
        return r;
      }
      case "/lazy-read": {
        const r = new Response("once");
        await r.text();
        return r;
      }
      case "/typed-read": {
        const r = new Response('{"b":2}', { headers: { "content-type": "application/json" } });
        await r.text();
        return r;
      }
    }
    return new Response("?", { status: 404 });
  });
  try {
    const paths = ["/lazy", "/typed", "/looked", "/lazy-read", "/typed-read"];
    const got: string[] = [];
    for (const p of paths) {
      const res = await fetch(`http://127.0.0.1:${server.port}${p}`);
      got.push(`${res.status} ${await res.text()}`);
    }
    assertEquals(got, [
      "200 lazy",
      '200 {"a":1}',
      "200 looked",
      "500 onError",
      "500 onError",
    ]);
    assertEquals(errors, ["TypeError", "TypeError"]);
  } finally {
    await server.close();
  }
});

Deno.test("req.url: each request's own Host, for a target seen before and past the cache", async () => {
  const server = startServer({}, (req) => new Response(req.url));
  try {
    const get = (target: string, host: string) => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    const requests: string[] = [];
    const expected: string[] = [];
    for (const host of ["a.example", "b.example:8080", "a.example"]) {
      requests.push(get("/same?x=1", host));
      expected.push(`http://${host}/same?x=1`);
    }
    // More distinct targets than the cache holds, then the first ones again.
    for (let i = 0; i < 1100; i++) {
      requests.push(get(`/t${i}`, "c.example"));
      expected.push(`http://c.example/t${i}`);
    }
    for (let i = 0; i < 3; i++) {
      requests.push(get(`/t${i}`, "d.example"));
      expected.push(`http://d.example/t${i}`);
    }
    assertEquals(await exchange(server.port, requests), expected);
  } finally {
    await server.close();
  }
});

Deno.test("fast path: a Response Deno.serve has sent already goes to onError", async () => {
  const shared = new Response("sent once");
  const deno = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => shared);
  const errors: string[] = [];
  const server = startServer({
    onError(e) {
      errors.push((e as Error).constructor.name);
      return new Response("onError", { status: 500 });
    },
  }, () => shared);
  try {
    const first = await fetch(`http://127.0.0.1:${deno.addr.port}/`);
    assertEquals(await first.text(), "sent once");
    const again = await fetch(`http://127.0.0.1:${server.port}/`);
    assertEquals([again.status, await again.text()], [500, "onError"]);
    assertEquals(errors, ["TypeError"]);
  } finally {
    await server.close();
    await deno.shutdown();
  }
});

Deno.test("fast path: a Response the server sent is consumed; a bodiless one can be sent again", async () => {
  const shared = new Response("sent once");
  const empty = new Response(null, { status: 204 });
  const errors: string[] = [];
  const server = startServer({
    onError(e) {
      errors.push((e as Error).constructor.name);
      return new Response("onError", { status: 500 });
    },
  }, (req) => new URL(req.url).pathname === "/empty" ? empty : shared);
  try {
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`;
    assertEquals(await exchange(server.port, [get("/")]), ["sent once"]);
    // As Deno.serve leaves it: consumed, unreadable, refused the next time.
    assertEquals(shared.bodyUsed, true);
    assertEquals(await shared.text().then(() => "read", (e) => e.constructor.name), "TypeError");
    assertEquals(await exchange(server.port, [get("/"), get("/empty"), get("/empty")]), [
      "onError",
      "",
      "",
    ]);
    assertEquals(errors, ["TypeError"]);
    assertEquals(empty.bodyUsed, false);
  } finally {
    await server.close();
  }
});

Deno.test("serve(): a stream response queued behind a pipelined request is taken at once", async () => {
  // Deno.serve answers pipelined requests one at a time, so this runs on serve() only.
  const shared = new Response(new Blob(["streamed"]));
  const secondReturned = Promise.withResolvers<void>();
  const errors: string[] = [];
  const server = serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError(e) {
      errors.push((e as Error).constructor.name);
      return new Response("onError", { status: 500 });
    },
  }, async (req) => {
    if (new URL(req.url).pathname === "/second") {
      queueMicrotask(() => secondReturned.resolve());
      return shared;
    }
    await secondReturned.promise;
    return shared; // the second request took it first
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    let text = "";
    try {
      await conn.write(
        enc.encode(
          "GET /first HTTP/1.1\r\nhost: x\r\n\r\nGET /second HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        ),
      );
      const buf = new Uint8Array(4096);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += dec.decode(buf.subarray(0, n));
      }
    } finally {
      conn.close();
    }
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    assertEquals(statuses, ["500", "200"]);
    assertEquals(text.includes("onError") && text.includes("streamed"), true);
    assertEquals(errors, ["TypeError"]);
  } finally {
    await server.shutdown();
  }
});

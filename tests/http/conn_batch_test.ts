/**
 * The connection core's write batching over real loopback sockets: the
 * responses of one reactor batch are sent together after it, one write per
 * connection; responses made before their turn wait in the connection's
 * hold buffer; a handler answering another connection's request in the
 * middle of a pump sends exactly that connection's bytes. Also the
 * request's `Headers` (lazy, immutable as Deno.serve's, compared with
 * Deno.serve on the same handler) and the short-text body path (ASCII
 * lengths, non-ASCII, the size limit).
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { serve, type ServeHandler, serveRaw } from "../../http/mod.ts";
import type { RawResponder } from "../../http/mod.ts";
import { exchange } from "./_raw.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function requests(conn: number, count: number): string {
  let s = "";
  for (let i = 0; i < count; i++) {
    s += `GET /${conn}/${i} HTTP/1.1\r\nHost: a\r\n${
      i === count - 1 ? "Connection: close\r\n" : ""
    }\r\n`;
  }
  return s;
}

/** The bodies of the responses in `raw` (each `text/plain` with a content-length). */
function bodies(raw: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    const end = raw.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const head = raw.slice(at, end);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? "0");
    out.push(raw.slice(end + 4, end + 4 + length));
    at = end + 4 + length;
  }
  return out;
}

Deno.test("conn batch: many connections' pipelined sync and async answers each arrive whole and in order", async () => {
  // Odd requests answer after a microtask or a timer, even ones at once: the
  // early ones wait in the hold buffer, and one connection's writes of a
  // batch are joined.
  const handler: ServeHandler = async (req) => {
    const [, conn, i] = new URL(req.url).pathname.split("/");
    const n = Number(i);
    // Answers made in the same microtask wave: one connection has several writes pending.
    if (n % 8 !== 7) await Promise.resolve();
    else await new Promise((r) => setTimeout(r, n % 3));
    return new Response(`${conn}:${i};`);
  };
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const n = Number(new URL(req.url).pathname.split("/")[2]);
    // Sync answers must stay sync: only the odd ones go through the async handler.
    if (n % 2 === 0) {
      const [, conn, i] = new URL(req.url).pathname.split("/");
      return new Response(`${conn}:${i};`);
    }
    return handler(req, undefined as never);
  });
  const port = (server.addr as { port: number }).port;
  try {
    const conns = 12;
    const count = 24;
    const raws = await Promise.all(
      Array.from({ length: conns }, (_, c) => exchange(port, requests(c, count))),
    );
    for (let c = 0; c < conns; c++) {
      const want = Array.from({ length: count }, (_, i) => `${c}:${i};`);
      assertEquals(bodies(raws[c]!), want, `connection ${c}`);
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("conn batch: a raw handler answering another connection in the middle of a pump sends only that connection's bytes", async () => {
  // The first request's responder is kept; the second connection's handler
  // answers it (and its own request) synchronously, inside its own pump.
  let parked: RawResponder | null = null;
  const server = serveRaw({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req, res) => {
    if (req.target === "/park") {
      parked = res;
      return;
    }
    const other = parked;
    parked = null;
    other?.send(200, "parked answer", { contentType: "text/plain" });
    res.send(200, "own answer", { contentType: "text/plain" });
  });
  const port = (server.addr as { port: number }).port;
  const first = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // Kept alive: its answer is not the connection's last (that one is sent at once).
    await first.write(encoder.encode("GET /park HTTP/1.1\r\nHost: a\r\n\r\n"));
    for (let i = 0; i < 200 && parked === null; i++) await new Promise((r) => setTimeout(r, 5));
    assertEquals(parked !== null, true, "the first request reached its handler");
    const second = await exchange(
      port,
      "GET /own HTTP/1.1\r\nHost: a\r\n\r\nGET /own HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    await first.write(encoder.encode("GET /own HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    let raw = "";
    const buf = new Uint8Array(4096);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const n = await first.read(buf);
      if (n === null) break;
      raw += decoder.decode(buf.subarray(0, n));
      if (Date.now() > deadline) throw new Error(`no EOF within 10 s; got ${raw}`);
    }
    assertEquals(bodies(raw), ["parked answer", "own answer"]);
    assertEquals(bodies(second), ["own answer", "own answer"]);
  } finally {
    first.close();
    await server.shutdown();
  }
});

/** What a handler sees of `req.headers`, the same on both servers. */
function headerView(req: Request): string {
  const h = req.headers;
  const seen = [
    h.get("cookie"),
    h.get("X-Multi"),
    h.get("host") !== null,
    h.get("Content-Type"),
    h.has("x-multi"),
    h.has("absent"),
    h.get("absent"),
    [...h].filter(([k]) => k.startsWith("x-") || k === "cookie").map((p) => p.join("=")).join(
      ",",
    ),
    new Headers(h).get("x-multi"),
    h instanceof Headers,
  ];
  let mutation = "";
  for (const change of [() => h.set("x-new", "1"), () => h.append("x-multi", "3")]) {
    try {
      change();
      mutation += "changed;";
    } catch (e) {
      mutation += `${(e as Error).constructor.name};`;
    }
  }
  return JSON.stringify([seen, mutation, h.get("x-new"), h.get("x-multi")]);
}

Deno.test("conn batch: request headers read, iterate and refuse changes as Deno.serve's", async () => {
  const ours = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    return new Response(headerView(req));
  });
  const ac = new AbortController();
  const deno = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => new Response(headerView(req)),
  );
  try {
    const request = "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nX-Multi: 1\r\n" +
      "Content-Type: text/x\r\nCookie: b=2\r\nX-Multi: 2\r\nConnection: close\r\n\r\n";
    const got = bodies(await exchange((ours.addr as { port: number }).port, request));
    const want = bodies(await exchange(deno.addr.port, request));
    assertEquals(got, want);
    // And what that is, so that both cannot be wrong alike.
    const [seen, mutation] = JSON.parse(got[0]!);
    assertEquals(seen[0], "a=1; b=2");
    assertEquals(seen[1], "1, 2");
    assertEquals(mutation, "TypeError;TypeError;");
  } finally {
    await ours.shutdown();
    ac.abort();
    await deno.finished;
  }
});

Deno.test("conn batch: text bodies get their UTF-8 length, ASCII or not, short or long", async () => {
  const texts = ["", "ascii", "é", "a€😀", "x".repeat(1024), "y".repeat(1025), "ü".repeat(1024)];
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const i = Number(new URL(req.url).pathname.slice(1));
    return new Response(texts[i]);
  });
  const port = (server.addr as { port: number }).port;
  try {
    let all = "";
    for (let i = 0; i < texts.length; i++) {
      all += `GET /${i} HTTP/1.1\r\nHost: a\r\n\r\nHEAD /${i} HTTP/1.1\r\nHost: a\r\n\r\n`;
    }
    all += "GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    const raw = await exchange(port, all);
    const bytes = encoder.encode(raw);
    // Walk the responses by byte length (content-length counts bytes).
    let at = 0;
    const seen: [number, string][] = [];
    const text = (a: number, b: number) => decoder.decode(bytes.subarray(a, b));
    for (let r = 0; r < texts.length * 2 + 1; r++) {
      let end = at;
      while (!(bytes[end] === 13 && bytes[end + 1] === 10 && bytes[end + 2] === 13)) end++;
      const head = text(at, end);
      const length = Number(/content-length: (\d+)/.exec(head)?.[1]);
      const isHead = r % 2 === 1 && r < texts.length * 2;
      const body = isHead ? "" : text(end + 4, end + 4 + length);
      seen.push([length, body]);
      at = end + 4 + (isHead ? 0 : length);
    }
    assertEquals(at, bytes.length, "nothing after the last response");
    const want: [number, string][] = [];
    for (const t of texts) want.push([encoder.encode(t).length, t], [encoder.encode(t).length, ""]);
    want.push([5, "ascii"]);
    assertEquals(seen, want);
  } finally {
    await server.shutdown();
  }
});

/**
 * The differential suite: every case runs the same handler on `Deno.serve`
 * and on ffinet's `serve()`, sends the same bytes over a raw TCP socket, and
 * compares what reaches the wire: status, reason, headers (names lowercased,
 * sorted, `date` checked for shape and then left out), framing and body
 * bytes, then whether the connection is still usable (a probe request on the
 * same socket). Observations made inside the handler (URL, headers, signal,
 * `info`, request bodies) travel back in the response body, so they are
 * compared the same way.
 *
 * Where `serve()` differs on purpose, the case names an entry of
 * {@linkcode DIFFERENCES} and checks the difference itself (so the
 * allow-list cannot hide anything else). README.md carries the same list as
 * "Differences from Deno.serve".
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { serve, type ServeOptions } from "../../http/mod.ts";
import { RawClient, type RawResponse } from "./_raw.ts";
import { runBounded } from "../_helpers.ts";
import { Hono } from "npm:hono@4.13.19";
import { getCookie } from "npm:hono@4.13.19/cookie";
import { deferred, within } from "./_serve.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Where `serve()` differs from `Deno.serve` on purpose. Each key is used by
 * the cases that show the difference; README.md's "Differences from
 * Deno.serve" table says the same.
 */
export const DIFFERENCES = {
  hostRequired:
    "An HTTP/1.1 request without `Host` gets 400 (RFC 9112 §3.2); Deno.serve answers it.",
  badTarget:
    "A request target that is not a path, an http(s) URL, `*` (OPTIONS) or an authority (CONNECT) gets 400, e.g. `file:///x`; Deno.serve answers it.",
  rawNonAscii:
    "Raw bytes above 0x7F in the request target get 400 (RFC 9112 §3.2 allows only ASCII; clients percent-encode); Deno.serve passes them on.",
  http10Close:
    "A response after which the connection closes says so with `connection: close`, also for HTTP/1.0 requests (where Deno.serve leaves it implied).",
  expectContinue:
    "`Expect: 100-continue`: `100 Continue` goes out only once the handler reads the body (Deno.serve sends it at once); a handler that answers without reading it gets its response alone, with `connection: close`, as from Deno.serve.",
  legacyAbort:
    "`req.signal` is not aborted after a successful response (Deno's `--unstable-no-legacy-abort` behaviour); it aborts, with an `AbortError` DOMException, when the client goes away.",
  clientGone:
    "`req.signal` aborts as soon as the client closes its side, also while the handler is still working (as Go's net/http); Deno.serve notices only when it writes the response.",
  timeouts:
    "Timeouts: a request head must arrive within `headerTimeoutMs` (10 s; then 408 and close), a body must progress within `bodyTimeoutMs` (30 s), an idle kept-alive connection closes after `idleTimeoutMs` (60 s); Deno.serve waits.",
  reset205:
    "A 205 goes out with `content-length: 0` (RFC 9110 §15.3.6: no content); Deno.serve sends it with no framing at all, so an HTTP/1.1 client waits for a body until the connection closes.",
  handlerClose:
    "A `connection: close` header from the handler closes the connection after that response (RFC 9112 §9.6); Deno.serve sends the header and keeps the connection open.",
  handlerFraming:
    "serve() frames a body of known length with `content-length` even when the handler set `transfer-encoding: chunked`; Deno.serve sends it chunked.",
  cancelReason:
    'A response stream cancelled because the client left gets an `AbortError` DOMException as the reason (Deno.serve passes the string `"resource closed"`).',
} as const;

type DifferenceKey = keyof typeof DIFFERENCES;

/** What a case observes of one server. */
interface Observation {
  responses: NormalisedResponse[] | string;
  /** After the responses: is the connection still usable? */
  after: string;
  /** Anything the case recorded from inside the handler. */
  notes?: unknown;
}

interface NormalisedResponse {
  status: number;
  reason: string;
  headers: [string, string][];
  date: boolean;
  framing: string;
  bytes: number;
  body: string;
}

/** Per-server context a case's handler can use to record things. */
interface Ctx {
  kind: "deno" | "ffinet";
  notes: unknown[];
  note(v: unknown): void;
  /** Resolves once `n` notes were recorded. */
  noted(n: number): Promise<void>;
}

type Handler = (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

interface Case {
  name: string;
  handler(ctx: Ctx): Handler;
  onError?(ctx: Ctx): (e: unknown) => Response | Promise<Response>;
  /** The raw request bytes (default: `GET / HTTP/1.1` with Host). */
  send?: string | Uint8Array;
  /** Which responses answer HEAD requests (for framing), in order. */
  heads?: boolean[];
  /** How many responses to read (1xx interim ones count). Default 1. */
  count?: number;
  /** A custom exchange instead of send/read/probe. */
  drive?(port: number, ctx: Ctx): Promise<Observation>;
  /** How long to wait for each response (default 10 s). */
  timeoutMs?: number;
  /** Skip the keep-alive probe. */
  noProbe?: boolean;
  /** Wait for this many notes before comparing. */
  notes?: number;
  /** An on-purpose difference: its check runs instead of equality. */
  diff?: { key: DifferenceKey; check(deno: Observation, ffinet: Observation): void };
  /** Extra normalisation of both observations (e.g. a random multipart boundary). */
  normalise?(o: Observation): Observation;
  /** Options for serve() only (e.g. a shorter timeout). */
  ffinetOptions?: Omit<ServeOptions, "hostname" | "port" | "onListen" | "onError">;
  /** Cases that need the response core: reported when they fail. */
  ignore?: string;
}

function makeCtx(kind: "deno" | "ffinet"): Ctx {
  const notes: unknown[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  return {
    kind,
    notes,
    note(v) {
      notes.push(v);
      for (const w of waiters) if (notes.length >= w.n) w.resolve();
    },
    noted(n) {
      if (notes.length >= n) return Promise.resolve();
      const d = deferred();
      waiters.push({ n, resolve: d.resolve });
      return d.promise;
    },
  };
}

function normalise(r: RawResponse): NormalisedResponse {
  const date = r.headers.get("date");
  if (date !== undefined) {
    assertMatch(date, /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/);
  }
  const headers = r.headerList
    .map(([k, v]) => [k.toLowerCase(), v] as [string, string])
    .filter(([k]) => k !== "date")
    .sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
  return {
    status: r.status,
    reason: r.reason,
    headers,
    date: date !== undefined,
    framing: r.framing,
    bytes: r.body.byteLength,
    body: dec.decode(r.body),
  };
}

const PROBE = "GET /__probe HTTP/1.1\r\nhost: probe\r\n\r\n";

/** Send `bytes`, read `count` responses, then probe the connection. */
async function exchange(
  port: number,
  bytes: string | Uint8Array,
  opts: { count?: number; heads?: boolean[]; probe?: boolean; timeoutMs?: number } = {},
): Promise<Observation> {
  using c = await RawClient.connect(port);
  await c.write(bytes);
  const responses: NormalisedResponse[] = [];
  try {
    for (let i = 0; i < (opts.count ?? 1); i++) {
      const r = await c.readResponse({
        head: opts.heads?.[i] ?? false,
        timeoutMs: opts.timeoutMs ?? 10_000,
      });
      if (r === null) break;
      responses.push(normalise(r));
    }
  } catch (e) {
    return { responses: `${(e as Error).constructor.name}`, after: "broken" };
  }
  if (opts.probe === false) return { responses, after: "not probed" };
  let after: string;
  try {
    await c.write(PROBE);
    const r = await c.readResponse({ timeoutMs: 5_000 });
    after = r === null ? "closed" : r.text === "probe" ? "alive" : `answered ${r.status}`;
  } catch (e) {
    after = e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset
      ? "closed"
      : `broken`;
  }
  return { responses, after };
}

/** The first response of an observation (a failed assertion when there is none). */
function first(o: Observation): NormalisedResponse {
  const r = typeof o.responses === "string" ? undefined : o.responses[0];
  if (r === undefined) throw new Error(`Expected a response, got ${JSON.stringify(o)}`);
  return r;
}

function withProbe(h: Handler): Handler {
  return (req, info) => {
    if (req.headers.get("host") === "probe") return new Response("probe");
    return h(req, info);
  };
}

/** Start both servers for `c`, observe each, stop them. */
async function observe(c: Case): Promise<{ deno: Observation; ffinet: Observation }> {
  const out: Partial<Record<"deno" | "ffinet", Observation>> = {};
  for (const kind of ["deno", "ffinet"] as const) {
    const ctx = makeCtx(kind);
    const handler = withProbe(c.handler(ctx));
    const onError = c.onError?.(ctx);
    const quiet = onError ?? ((e: unknown) => {
      ctx.note({ onError: (e as Error)?.constructor?.name ?? typeof e });
      return new Response("Internal Server Error", {
        status: 500,
        headers: { "content-type": "text/plain;charset=UTF-8" },
      });
    });
    const base = { hostname: "127.0.0.1", port: 0, onListen() {}, onError: quiet };
    const server = kind === "deno"
      ? Deno.serve(base, handler)
      : serve({ ...c.ffinetOptions, ...base }, handler as Parameters<typeof serve>[1]);
    const port = (server.addr as Deno.NetAddr).port;
    try {
      let o: Observation;
      if (c.drive !== undefined) {
        o = await c.drive(port, ctx);
      } else {
        o = await exchange(port, c.send ?? "GET / HTTP/1.1\r\nhost: x\r\n\r\n", {
          count: c.count ?? 1,
          heads: c.heads ?? [],
          probe: !c.noProbe,
          timeoutMs: c.timeoutMs ?? 10_000,
        });
      }
      if (c.notes !== undefined) await within(ctx.noted(c.notes), 10_000, `${c.notes} notes`);
      if (ctx.notes.length > 0) o.notes = ctx.notes;
      out[kind] = c.normalise ? c.normalise(o) : o;
    } finally {
      await within(server.shutdown(), 15_000, `${kind} shutdown`);
      // A stream's last timed pull (`tick`) ends within its period after a cancel.
      if (c.drive !== undefined) await new Promise((r) => setTimeout(r, 60));
    }
  }
  return { deno: out.deno!, ffinet: out.ffinet! };
}

// ---------------------------------------------------------------------------
// The cases

const cases: Case[] = [];
const add = (c: Case) => cases.push(c);

/** A request with the given head lines and body. */
function req(line: string, headers: string[] = [], body: string | Uint8Array = ""): Uint8Array {
  const head = enc.encode(`${line}\r\n${headers.map((h) => h + "\r\n").join("")}\r\n`);
  const b = typeof body === "string" ? enc.encode(body) : body;
  const out = new Uint8Array(head.length + b.length);
  out.set(head);
  out.set(b, head.length);
  return out;
}

/** Enqueue `text` after `ms` (nothing once the stream was cancelled). */
function tick(c: ReadableStreamDefaultController<Uint8Array>, text: string, ms: number) {
  return new Promise<void>((resolve) =>
    setTimeout(() => {
      try {
        c.enqueue(enc.encode(text));
      } catch { /* cancelled meanwhile */ }
      resolve();
    }, ms)
  );
}

const GET = (path = "/", extra: string[] = []) =>
  req(`GET ${path} HTTP/1.1`, ["host: x", ...extra]);
const json = (v: unknown) => Response.json(v);

/** HTTP/1.0 without keep-alive: the same response, plus `connection: close` from serve(). */
const http10Close: NonNullable<Case["diff"]> = {
  key: "http10Close",
  check(deno, ffinet) {
    const d = first(deno);
    const f = first(ffinet);
    assertEquals(f.headers.filter(([k]) => k !== "connection"), d.headers);
    assert(f.headers.some(([k, v]) => k === "connection" && v === "close"));
    assertEquals({ ...f, headers: [] }, { ...d, headers: [] });
    assertEquals([deno.after, ffinet.after], ["closed", "closed"]);
  },
};

// Body types
add({ name: "body: string", handler: () => () => new Response("hello") });
add({ name: "body: non-ASCII string", handler: () => () => new Response("héllo wörld ✓ 日本") });
add({ name: "body: empty string", handler: () => () => new Response("") });
add({
  name: "body: Uint8Array",
  handler: () => () => new Response(new Uint8Array([0, 1, 2, 255])),
});
add({
  name: "body: Uint8Array view into a larger buffer",
  handler: () => () => new Response(new Uint8Array(new ArrayBuffer(16), 4, 6).fill(65)),
});
add({ name: "body: ArrayBuffer", handler: () => () => new Response(enc.encode("ab").buffer) });
add({
  name: "body: Blob with a type",
  handler: () => () => new Response(new Blob(["<b>x</b>"], { type: "text/html" })),
});
add({ name: "body: Blob without a type", handler: () => () => new Response(new Blob(["raw"])) });
add({
  name: "body: FormData (multipart)",
  handler: () => () => {
    const f = new FormData();
    f.append("a", "1");
    f.append("file", new Blob(["content"], { type: "text/plain" }), "f.txt");
    return new Response(f);
  },
  normalise: (o) => {
    if (typeof o.responses === "string") return o;
    for (const r of o.responses) {
      const ct = r.headers.find(([k]) => k === "content-type");
      const m = ct && /boundary=(.*)$/.exec(ct[1]);
      if (m) {
        const b = m[1]!;
        r.body = r.body.split(b).join("BOUNDARY");
        ct![1] = ct![1].replace(b, "BOUNDARY");
      }
    }
    return o;
  },
});
add({
  name: "body: URLSearchParams",
  handler: () => () => new Response(new URLSearchParams({ a: "1 2", b: "é" })),
});
add({
  name: "body: ReadableStream without a length (chunked)",
  handler: () => () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(enc.encode("one,"));
          c.enqueue(enc.encode("two"));
          c.close();
        },
      }),
    ),
});
add({
  name: "body: ReadableStream with a content-length",
  handler: () => () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(enc.encode("12345"));
          c.enqueue(enc.encode("67890"));
          c.close();
        },
      }),
      { headers: { "content-length": "10" } },
    ),
});
add({
  name: "body: empty ReadableStream",
  handler: () => () => new Response(new ReadableStream({ start: (c) => c.close() })),
});
add({
  name: "body: ReadableStream with async pulls",
  handler: () => () => {
    let i = 0;
    return new Response(
      new ReadableStream({
        async pull(c) {
          await new Promise((r) => setTimeout(r, 2));
          if (i++ < 3) c.enqueue(enc.encode(`part${i};`));
          else c.close();
        },
      }),
    );
  },
});
add({ name: "body: null", handler: () => () => new Response(null) });
add({
  name: "body: null with content-length 0",
  handler: () => () => new Response(null, { headers: { "content-length": "0" } }),
});
add({ name: "body: Response.json", handler: () => () => json({ a: [1, "ü"], b: null }) });
add({
  name: "body: 256 KiB Uint8Array",
  handler: () => () => new Response(new Uint8Array(256 * 1024).map((_, i) => i % 251)),
});
add({
  name: "body: a stream of 200 chunks",
  handler: () => () => {
    let i = 0;
    return new Response(
      new ReadableStream({
        pull(c) {
          if (i++ < 200) c.enqueue(enc.encode(`${i},`));
          else c.close();
        },
      }),
    );
  },
});

// HEAD, 204, 304 and the null-body statuses
add({
  name: "HEAD: string body keeps its content-length, sends no body",
  handler: () => () => new Response("hello"),
  send: req("HEAD / HTTP/1.1", ["host: x"]),
  heads: [true],
});
add({
  name: "HEAD: null body keeps the handler's content-length",
  handler: () => () => new Response(null, { headers: { "content-length": "10" } }),
  send: req("HEAD / HTTP/1.1", ["host: x"]),
  heads: [true],
});
add({
  name: "HEAD: stream body with a content-length",
  handler: () => () =>
    new Response(new ReadableStream({ start: (c) => (c.enqueue(enc.encode("abc")), c.close()) }), {
      headers: { "content-length": "3" },
    }),
  send: req("HEAD / HTTP/1.1", ["host: x"]),
  heads: [true],
});
add({
  name: "HEAD: stream body without a length",
  handler: () => () =>
    new Response(new ReadableStream({ start: (c) => (c.enqueue(enc.encode("abc")), c.close()) })),
  send: req("HEAD / HTTP/1.1", ["host: x"]),
  heads: [true],
});
add({ name: "status: 204", handler: () => () => new Response(null, { status: 204 }) });
add({
  name: "status: 204 with a body is a handler failure",
  handler: () => () => new Response("x", { status: 204 }),
  notes: 1,
});
add({
  name: "status: 304 with an etag",
  handler: () => () => new Response(null, { status: 304, headers: { etag: '"v1"' } }),
});
add({
  name: "status: 205",
  handler: () => () => new Response(null, { status: 205 }),
  timeoutMs: 1_500,
  diff: {
    key: "reset205",
    check(deno, ffinet) {
      // Deno.serve: no content-length, so the response never ends for this client.
      assertEquals([deno.responses, deno.after], ["Error", "broken"]);
      const f = first(ffinet);
      assertEquals([f.status, f.headers, f.framing, f.bytes], [
        205,
        [["content-length", "0"]],
        "length",
        0,
      ]);
      assertEquals(ffinet.after, "alive");
    },
  },
});
add({
  name: "status: 201 with a body",
  handler: () => () => new Response("made", { status: 201 }),
});
add({ name: "status: 599", handler: () => () => new Response("odd", { status: 599 }) });
add({
  name: "status: 418 (unknown reason)",
  handler: () => () => new Response("", { status: 418 }),
});
add({
  name: "status: a custom statusText",
  handler: () => () => new Response("x", { status: 200, statusText: "Fine Thanks" }),
});

// Errors
add({
  name: "error: Response.error()",
  handler: () => () => Response.error(),
  notes: 1,
});
add({
  name: "error: a status out of range (non-Response with status 700)",
  handler: () => () => ({ status: 700, body: null }) as unknown as Response,
  notes: 1,
});
add({
  name: "error: the handler returns undefined",
  handler: () => () => undefined as unknown as Response,
  notes: 1,
});
add({
  name: "error: the handler throws",
  handler: () => () => {
    throw new RangeError("boom");
  },
  notes: 1,
});
add({
  name: "error: the handler rejects",
  handler: () => () => Promise.reject(new SyntaxError("late boom")),
  notes: 1,
});
add({
  name: "error: onError's response is sent",
  handler: () => () => {
    throw new Error("x");
  },
  onError: () => (e) =>
    new Response(`handled ${(e as Error).message}`, { status: 503, headers: { "x-e": "1" } }),
});
add({
  name: "error: a Response whose body was already read goes to onError",
  handler: () => async () => {
    const r = new Response("once");
    await r.text();
    return r;
  },
  notes: 1,
});
// One Response object returned for two requests: Deno.serve marks a response
// it sent as consumed (`bodyUsed` turns true), so the second answer is a
// TypeError for onError; a response without a body can be sent again.
const reused: [string, () => Response, boolean][] = [
  ["a null body", () => new Response(null), false],
  ["a null body with status 204", () => new Response(null, { status: 204 }), false],
  ["Response.redirect", () => Response.redirect("http://example.com/", 302), false],
  ["a string (fast path)", () => new Response("hi"), true],
  [
    "a string with a content type (fast path)",
    () => new Response("hi", { headers: { "content-type": "a/b" } }),
    true,
  ],
  ["a string with a header", () => new Response("hi", { headers: { "x-a": "1" } }), true],
  ["a Uint8Array", () => new Response(enc.encode("hi")), true],
  ["a Uint8Array with status 201", () => new Response(enc.encode("hi"), { status: 201 }), true],
  ["Response.json", () => Response.json({ a: 1 }), true],
  ["a string whose body stream was looked at", () => {
    const r = new Response("hi", { headers: { "x-a": "1" } });
    void r.body;
    return r;
  }, true],
  ["a stream", () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode("hi"));
          c.close();
        },
      }),
    ), true],
  ["a Blob", () => new Response(new Blob(["hi"])), true],
];
for (const [what, make, refused] of reused) {
  for (const head of [false, true]) {
    add({
      name: `reuse: the same Response with ${what}, sent twice${head ? " (HEAD first)" : ""}`,
      handler: (ctx) => {
        const cached = make();
        return () => {
          ctx.note({ bodyUsed: cached.bodyUsed });
          return cached;
        };
      },
      send: (head ? "HEAD" : "GET") +
        " / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n",
      count: 2,
      heads: [head, false],
      notes: refused ? 3 : 2,
      normalise: (o) => {
        // The point of the case, besides matching Deno.serve.
        if (typeof o.responses !== "string") {
          assertEquals(o.responses[1]?.status, refused ? 500 : o.responses[0]?.status);
        }
        return o;
      },
    });
  }
}
add({
  name: "error: Response.redirect with a relative URL throws",
  handler: () => () => Response.redirect("/relative"),
  notes: 1,
});

// Redirects and headers
for (const status of [301, 302, 303, 307, 308]) {
  add({
    name: `redirect: Response.redirect ${status}`,
    handler: () => () => Response.redirect("http://example.com/a?b=1", status),
  });
}
add({
  name: "redirect: a location header set by hand",
  handler: () => () => new Response(null, { status: 302, headers: { location: "/x y" } }),
});
add({
  name: "cookies: two Cookie lines reach the handler joined with '; '",
  handler: () => (r) => json({ cookie: r.headers.get("cookie") }),
  send: req("GET / HTTP/1.1", ["host: x", "cookie: a=1", "cookie: b=2; c=3"]),
});
add({
  name: "cookies: Hono's getCookie reads every cookie of two Cookie lines",
  handler: () => {
    const app = new Hono();
    app.get("/", (c) => c.json({ a: getCookie(c, "a") ?? null, c: getCookie(c, "c") ?? null }));
    return (r) => app.fetch(r);
  },
  send: req("GET / HTTP/1.1", ["host: x", "cookie: a=1", "cookie: b=2; c=3"]),
  normalise: (o) => {
    // The point of the case, besides matching Deno.serve: both cookies are found.
    if (typeof o.responses !== "string") assertEquals(o.responses[0]?.body, '{"a":"1","c":"3"}');
    return o;
  },
});
add({
  name: "error: onError itself throws",
  handler: () => () => {
    throw new Error("first");
  },
  onError: () => () => {
    throw new Error("second");
  },
});
add({
  name: "cookies: one Cookie line as sent",
  handler: () => (r) => json({ cookie: r.headers.get("cookie") }),
  send: req("GET / HTTP/1.1", ["host: x", "cookie: a=1; b=2"]),
});
add({
  name: "headers: other repeated request fields are joined with ', '",
  handler: () => (r) => json({ a: r.headers.get("x-a"), all: [...r.headers] }),
  send: req("GET / HTTP/1.1", ["host: x", "X-A: 1", "accept: */*", "x-a:  2  "]),
});
add({
  name: "cookies: several Set-Cookie headers each get a line",
  handler: () => () => {
    const h = new Headers();
    h.append("set-cookie", "a=1; Path=/");
    h.append("set-cookie", "b=2; HttpOnly");
    h.append("x-other", "v");
    return new Response("c", { headers: h });
  },
});
add({
  name: "headers: response header names and values as the handler set them",
  handler: () => () =>
    new Response("x", {
      headers: { "X-Mixed-Case": "Value With Spaces", "cache-control": "no-store" },
    }),
});
add({
  name: "headers: a content-type set by the handler wins",
  handler: () => () => new Response("{}", { headers: { "content-type": "application/json" } }),
});

add({
  name: "headers: a content-length that disagrees with a string body",
  handler: () => () => new Response("hello", { headers: { "content-length": "3" } }),
});
add({
  name: "headers: a transfer-encoding set by the handler on a string body",
  handler: () => () => new Response("hello", { headers: { "transfer-encoding": "chunked" } }),
  diff: {
    key: "handlerFraming",
    check(deno, ffinet) {
      const d = first(deno);
      const f = first(ffinet);
      assertEquals([d.framing, f.framing], ["chunked", "length"]);
      assert(f.headers.some(([k, v]) => k === "content-length" && v === "5"));
      assert(!f.headers.some(([k]) => k === "transfer-encoding"));
      assertEquals([d.body, f.body, deno.after, ffinet.after], [
        "hello",
        "hello",
        "alive",
        "alive",
      ]);
    },
  },
});
add({
  name: "headers: connection: close set by the handler",
  handler: () => () => new Response("bye", { headers: { connection: "close" } }),
  diff: {
    key: "handlerClose",
    check(deno, ffinet) {
      assertEquals(ffinet.responses, deno.responses);
      assert(first(ffinet).headers.some(([k, v]) => k === "connection" && v === "close"));
      assertEquals([deno.after, ffinet.after], ["alive", "closed"]);
    },
  },
});

// URL forms
const echoUrl: Case["handler"] = () => (r) => json({ url: r.url, method: r.method });
add({ name: "url: origin form", handler: echoUrl, send: GET("/path/to") });
add({ name: "url: query", handler: echoUrl, send: GET("/p?a=1&b=two&a=3") });
add({
  name: "url: percent-encoded path and query",
  handler: echoUrl,
  send: GET("/a%20b/%E2%9C%93?q=%26x"),
});
add({
  name: "url: absolute form",
  handler: echoUrl,
  send: req("GET http://example.com/abs?x=1 HTTP/1.1", ["host: example.com"]),
});
add({
  name: "url: Host with a port",
  handler: echoUrl,
  send: req("GET /h HTTP/1.1", ["host: example.com:8080"]),
});
add({ name: "url: dot segments", handler: echoUrl, send: GET("/a/../b/./c") });
add({ name: "url: a double slash", handler: echoUrl, send: GET("//x//y") });
add({
  name: "url: raw UTF-8 in the path",
  handler: echoUrl,
  send: GET("/caf\u00e9"),
  diff: {
    key: "rawNonAscii",
    check(deno, ffinet) {
      assertEquals(first(deno).status, 200);
      assertEquals(first(ffinet).status, 400);
    },
  },
});
add({
  name: "url: an unusual method",
  handler: echoUrl,
  send: req("PURGE /cache HTTP/1.1", ["host: x"]),
});
add({
  name: "url: HTTP/1.1 without Host",
  handler: echoUrl,
  send: req("GET / HTTP/1.1", []),
  diff: {
    key: "hostRequired",
    check(deno, ffinet) {
      assertEquals(first(deno).status, 200);
      assertEquals(first(ffinet).status, 400);
    },
  },
});
add({
  name: "url: a file: absolute target",
  handler: echoUrl,
  send: req("GET file:///etc/passwd HTTP/1.1", ["host: x"]),
  diff: {
    key: "badTarget",
    check(deno, ffinet) {
      assertEquals(first(deno).status, 200);
      assertEquals(first(ffinet).status, 400);
    },
  },
});

// signal and info
add({
  name: "signal: not aborted while the handler runs",
  handler: () => (r) => json({ aborted: r.signal.aborted, reason: String(r.signal.reason) }),
});
add({
  name: "signal: aborts with an AbortError DOMException when the client goes",
  handler: (ctx) => (r) => {
    r.signal.addEventListener("abort", () => {
      const reason = r.signal.reason;
      ctx.note({
        domException: reason instanceof DOMException,
        name: (reason as Error).name,
      });
    });
    // A stream that never ends: the client's leaving is what ends it.
    return new Response(
      new ReadableStream({
        pull: (c) => tick(c, "x", 20),
      }),
    );
  },
  drive: async (port, ctx) => {
    const c = await RawClient.connect(port);
    await c.write(GET());
    await c.fill(5_000);
    c.close();
    await within(ctx.noted(1), 10_000, "the abort");
    return { responses: [], after: "client left" };
  },
});
add({
  name: "signal: the client leaves before the handler answers",
  handler: (ctx) => async (r) => {
    await new Promise((res) => setTimeout(res, 400));
    const reason = r.signal.reason;
    ctx.note({
      aborted: r.signal.aborted,
      reason: reason instanceof DOMException ? reason.name : typeof reason,
    });
    return new Response("late");
  },
  drive: async (port, ctx) => {
    const c = await RawClient.connect(port);
    await c.write(GET());
    await new Promise((r) => setTimeout(r, 100));
    c.close();
    await within(ctx.noted(1), 10_000, "the handler's look at its signal");
    return { responses: [], after: "client left" };
  },
  diff: {
    key: "clientGone",
    check(deno, ffinet) {
      assertEquals(deno.notes, [{ aborted: false, reason: "undefined" }]);
      assertEquals(ffinet.notes, [{ aborted: true, reason: "AbortError" }]);
    },
  },
});
add({
  name: "signal: after a successful response",
  handler: (ctx) => (r) => {
    r.signal.addEventListener("abort", () => ctx.note("aborted"));
    return new Response("done");
  },
  drive: async (port, ctx) => {
    const o = await exchange(port, GET());
    // Deno.serve aborts right after the response; serve() must not within 300 ms.
    if (ctx.kind === "deno") await within(ctx.noted(1), 10_000, "Deno.serve's legacy abort");
    else await new Promise((r) => setTimeout(r, 300));
    return { ...o, notes: ctx.notes.slice() };
  },
  diff: {
    key: "legacyAbort",
    check(deno, ffinet) {
      assertEquals(deno.notes, ["aborted"]);
      assertEquals(ffinet.notes, []);
      assertEquals(deno.responses, ffinet.responses);
    },
  },
});
add({
  name: "info: remoteAddr is the client's address",
  handler: () => (_r, info) => json(info.remoteAddr),
  drive: async (port) => {
    using c = await RawClient.connect(port);
    await c.write(GET());
    const r = await c.readResponse();
    const addr = JSON.parse(r!.text) as Deno.NetAddr;
    const local = c.conn.localAddr as Deno.NetAddr;
    return {
      responses: [],
      after: "",
      notes: [addr.transport, addr.hostname, addr.port === local.port],
    };
  },
});
add({
  name: "info: completed resolves once the response is out",
  handler: (ctx) => (_r, info) => {
    info.completed.then(() => ctx.note("completed"));
    return new Response("x");
  },
  notes: 1,
});

// Request bodies
const echoBody = (read: (r: Request) => Promise<unknown>): Case["handler"] => () => async (r) =>
  json({ body: await read(r), used: r.bodyUsed });
add({
  name: "request body: json",
  handler: echoBody((r) => r.json()),
  send: req(
    "POST / HTTP/1.1",
    [
      "host: x",
      "content-type: application/json",
      `content-length: ${enc.encode('{"a":[1,"ü"]}').length}`,
    ],
    '{"a":[1,"ü"]}',
  ),
});
add({
  name: "request body: text (non-ASCII)",
  handler: echoBody((r) => r.text()),
  send: req(
    "POST / HTTP/1.1",
    ["host: x", `content-length: ${enc.encode("héllo").length}`],
    "héllo",
  ),
});
add({
  name: "request body: formData (urlencoded)",
  handler: echoBody(async (r) => [...(await r.formData()).entries()]),
  send: req(
    "POST / HTTP/1.1",
    ["host: x", "content-type: application/x-www-form-urlencoded", "content-length: 11"],
    "a=1&b=x+y%21",
  ),
});
add({
  name: "request body: formData (multipart)",
  handler: echoBody(async (r) =>
    [...(await r.formData()).entries()].map(([k, v]) => [k, typeof v === "string" ? v : v.name])
  ),
  send: (() => {
    const body = '--B\r\ncontent-disposition: form-data; name="a"\r\n\r\n1\r\n' +
      '--B\r\ncontent-disposition: form-data; name="f"; filename="x.txt"\r\n' +
      "content-type: text/plain\r\n\r\nfile\r\n--B--\r\n";
    return req("POST / HTTP/1.1", [
      "host: x",
      "content-type: multipart/form-data; boundary=B",
      `content-length: ${enc.encode(body).length}`,
    ], body);
  })(),
});
add({
  name: "request body: chunked upload",
  handler: echoBody((r) => r.text()),
  send: req(
    "POST / HTTP/1.1",
    ["host: x", "transfer-encoding: chunked"],
    "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
  ),
});
add({
  name: "request body: chunked upload with a trailer",
  handler: echoBody((r) => r.text()),
  send: req(
    "POST / HTTP/1.1",
    ["host: x", "transfer-encoding: chunked"],
    "2\r\nhi\r\n0\r\nx-t: 1\r\n\r\n",
  ),
});
add({
  name: "request body: 100 KiB arrayBuffer",
  handler: echoBody(async (r) => (await r.arrayBuffer()).byteLength),
  send: req("POST / HTTP/1.1", ["host: x", "content-length: 102400"], new Uint8Array(102400)),
});
add({
  name: "request body: GET has a null body",
  handler: () => (r) => json({ body: r.body === null, used: r.bodyUsed }),
});
add({
  name: "request body: POST with content-length 0",
  handler: () => async (r) => json({ text: await r.text() }),
  send: req("POST / HTTP/1.1", ["host: x", "content-length: 0"]),
});
add({
  name: "request body: already used is a TypeError",
  handler: () => async (r) => {
    await r.text();
    try {
      await r.text();
      return json({ second: "read" });
    } catch (e) {
      return json({ second: (e as Error).constructor.name, used: r.bodyUsed });
    }
  },
  send: req("POST / HTTP/1.1", ["host: x", "content-length: 2"], "ab"),
});
add({
  name: "request body: clone() reads twice",
  handler: () => async (r) => {
    const c = r.clone();
    return json([await r.text(), await c.text()]);
  },
  send: req("POST / HTTP/1.1", ["host: x", "content-length: 3"], "abc"),
});
add({
  name: "request body: after json(), body is a used stream and clone() is a TypeError",
  handler: () => async (r) => {
    const value = await r.json();
    let clone = "cloned";
    try {
      r.clone();
    } catch (e) {
      clone = (e as Error).constructor.name;
    }
    return json({ value, used: r.bodyUsed, body: r.body !== null, locked: r.body?.locked, clone });
  },
  send: req("POST / HTTP/1.1", ["host: x", "content-length: 7"], '{"a":1}'),
});
add({
  name: "request body: blob() type of a body with a content type",
  handler: () => async (r) => {
    const blob = await r.blob();
    return json({ type: blob.type, size: blob.size, used: r.bodyUsed });
  },
  send: req(
    "POST / HTTP/1.1",
    ["host: x", "content-type: Text/Plain; Charset=UTF-8", "content-length: 9"],
    "a=1&b=%C3",
  ),
});
add({
  name: "request body: formData() of a urlencoded body",
  handler: () => async (r) => {
    const form = [...(await r.formData()).entries()];
    return json({ form, used: r.bodyUsed });
  },
  send: req(
    "POST / HTTP/1.1",
    [
      "host: x",
      "content-type: application/X-WWW-Form-URLencoded;charset=UTF-8",
      "content-length: 9",
    ],
    "a=1&b=%C3",
  ),
});
add({
  name: "request body: invalid JSON is a SyntaxError, and the body is used",
  handler: () => async (r) => {
    const error = await r.json().then(() => "parsed", (e) => (e as Error).constructor.name);
    return json({ error, used: r.bodyUsed });
  },
  send: req("POST / HTTP/1.1", ["host: x", "content-length: 3"], "{x}"),
});
add({
  name: "request body: not read by the handler",
  handler: () => () => new Response("ignored"),
  send: req("POST / HTTP/1.1", ["host: x", "content-length: 5"], "12345"),
});
add({
  name: "Expect: 100-continue with a handler that reads the body",
  handler: echoBody((r) => r.text()),
  drive: async (port) => {
    using c = await RawClient.connect(port);
    await c.write(req("POST / HTTP/1.1", ["host: x", "expect: 100-continue", "content-length: 4"]));
    const first = await c.readResponse({ timeoutMs: 5_000 });
    await c.write("body");
    const second = await c.readResponse({ timeoutMs: 5_000 });
    return { responses: [normalise(first!), normalise(second!)], after: "" };
  },
});
add({
  name: "Expect: 100-continue with a handler that does not read the body",
  handler: () => () => new Response("no thanks", { status: 417 }),
  send: req("POST / HTTP/1.1", ["host: x", "expect: 100-continue", "content-length: 4"]),
  count: 2,
  diff: {
    key: "expectContinue",
    check(deno, ffinet) {
      // Deno.serve: 100 first; serve(): the final answer, then the connection closes.
      const d = deno.responses as NormalisedResponse[];
      assertEquals(d.map((r) => r.status), [100, 417]);
      assertEquals(ffinet.responses, d.slice(1));
      assertEquals(deno.after, "closed");
      assertEquals(first(ffinet).status, 417);
      assert(first(ffinet).headers.some(([k, v]) => k === "connection" && v === "close"));
      assertEquals(ffinet.after, "closed");
    },
  },
});

add({
  name: "timeouts: a request head that never ends",
  handler: () => () => new Response("x"),
  ffinetOptions: { headerTimeoutMs: 300 },
  drive: async (port) => {
    using c = await RawClient.connect(port);
    await c.write("GET / HTTP/1.1\r\nhost: x\r\n"); // no blank line
    const end = await c.waitEnd(2_000);
    const text = dec.decode(c.pending);
    return { responses: text.split("\r\n")[0] ?? "", after: end };
  },
  diff: {
    key: "timeouts",
    check(deno, ffinet) {
      assertEquals([deno.responses, deno.after], ["", "timeout"]);
      assertEquals([ffinet.responses, ffinet.after], ["HTTP/1.1 408 Request Timeout", "eof"]);
    },
  },
});

add({
  name: "url: OPTIONS *",
  handler: echoUrl,
  send: req("OPTIONS * HTTP/1.1", ["host: x"]),
});
add({
  name: "url: HTTP/1.0 without Host",
  handler: () => (r) => json({ path: new URL(r.url).pathname, method: r.method }),
  send: req("GET /old HTTP/1.0", []),
  diff: http10Close,
});

// Through fetch(): what a real client sees
/** A fetch exchange: status, headers (without date) and body text. */
async function viaFetch(url: string, init: RequestInit = {}): Promise<Observation> {
  // A client of its own, closed at the end: its idle keep-alive connection
  // then does not hold up the server's shutdown.
  using client = Deno.createHttpClient({});
  const res = await fetch(url, { ...init, client });
  const text = await res.text();
  const headers = [...res.headers].filter(([k]) => k !== "date");
  return { responses: [], after: "", notes: [res.status, res.redirected, headers, text] };
}
add({
  name: "fetch: a streamed response",
  handler: () => () => {
    let i = 0;
    return new Response(
      new ReadableStream({
        pull(c) {
          if (i++ < 5) c.enqueue(enc.encode(`chunk${i} `));
          else c.close();
        },
      }),
      { headers: { "x-s": "1" } },
    );
  },
  drive: (port) => viaFetch(`http://127.0.0.1:${port}/`),
});
add({
  name: "fetch: a streamed upload echoed back",
  handler: () => (r) =>
    new Response(r.body, { headers: { "x-len": r.headers.get("content-length") ?? "none" } }),
  drive: (port) =>
    viaFetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      body: new ReadableStream({
        start(c) {
          c.enqueue(enc.encode("up"));
          c.enqueue(enc.encode("load"));
          c.close();
        },
      }),
    }),
});
add({
  name: "fetch: a redirect not followed",
  handler: () => () => Response.redirect("http://127.0.0.1:1/elsewhere", 307),
  drive: (port) => viaFetch(`http://127.0.0.1:${port}/`, { redirect: "manual" }),
});
add({
  name: "fetch: cookies and Set-Cookie",
  handler: () => (r) => {
    const h = new Headers({ "content-type": "text/plain" });
    h.append("set-cookie", "a=1");
    h.append("set-cookie", "b=2; Secure");
    return new Response(r.headers.get("cookie"), { headers: h });
  },
  drive: (port) => viaFetch(`http://127.0.0.1:${port}/`, { headers: { cookie: "x=1; y=2" } }),
});

// Streams and the client leaving
add({
  name: "stream: cancelled with a reason when the client disconnects",
  handler: (ctx) => () =>
    new Response(
      new ReadableStream({
        pull: (c) => tick(c, "tick\n", 10),
        cancel: (reason) =>
          ctx.note({
            cancelled: true,
            reason: reason instanceof DOMException ? reason.name : typeof reason,
          }),
      }),
    ),
  drive: async (port, ctx) => {
    const c = await RawClient.connect(port);
    await c.write(GET());
    await c.fill(5_000);
    c.close();
    await within(ctx.noted(1), 10_000, "the stream's cancel");
    return { responses: [], after: "client left" };
  },
  diff: {
    key: "cancelReason",
    check(deno, ffinet) {
      assertEquals(deno.notes, [{ cancelled: true, reason: "string" }]);
      assertEquals(ffinet.notes, [{ cancelled: true, reason: "AbortError" }]);
    },
  },
});
add({
  name: "stream: an error mid-stream ends the response",
  handler: () => () => {
    let i = 0;
    return new Response(
      new ReadableStream({
        pull(c) {
          if (i++ === 0) c.enqueue(enc.encode("start"));
          else c.error(new Error("mid-stream"));
        },
      }),
    );
  },
  drive: async (port) => {
    using c = await RawClient.connect(port);
    await c.write(GET());
    const end = await c.waitEnd(10_000);
    const text = dec.decode(c.pending);
    return {
      responses: [],
      after: end === "timeout" ? "timeout" : "ended",
      notes: [/^HTTP\/1\.1 200 /.test(text), /\r\n0\r\n\r\n$/.test(text)],
    };
  },
});

// Connection handling
add({
  name: "connection: a request with Connection: close",
  handler: () => () => new Response("bye"),
  send: req("GET / HTTP/1.1", ["host: x", "connection: close"]),
});
add({
  name: "connection: HTTP/1.0 request",
  handler: () => () => new Response("old"),
  send: req("GET / HTTP/1.0", ["host: x"]),
  diff: http10Close,
});
add({
  name: "connection: HTTP/1.0 with keep-alive",
  handler: () => () => new Response("old"),
  send: req("GET / HTTP/1.0", ["host: x", "connection: keep-alive"]),
});
add({
  name: "connection: two pipelined requests",
  handler: () => (r) => new Response(new URL(r.url).pathname),
  send: (() => {
    const a = GET("/one");
    const b = GET("/two");
    const out = new Uint8Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  })(),
  count: 2,
});
// ---------------------------------------------------------------------------

Deno.test("parity: at least 60 cases, each difference on the allow-list is used", () => {
  assert(cases.length >= 60, `only ${cases.length} cases`);
  const used = new Set(cases.map((c) => c.diff?.key).filter((k) => k !== undefined));
  for (const key of Object.keys(DIFFERENCES)) {
    assert(used.has(key as DifferenceKey), `allow-list entry ${key} is not shown by a case`);
  }
  const names = new Set(cases.map((c) => c.name));
  assertEquals(names.size, cases.length, "case names are unique");
});

Deno.test("parity: the allow-list is the README's 'Differences from Deno.serve' table", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const section = readme.split("## Differences from Deno.serve")[1] ?? "";
  assert(section !== "", "README has a 'Differences from Deno.serve' section");
  for (const [key, text] of Object.entries(DIFFERENCES)) {
    assert(section.includes(text), `README's table lacks ${key}: ${text}`);
  }
});

for (const c of cases) {
  if (c.ignore !== undefined) console.log(`parity: "${c.name}" is ignored: ${c.ignore}`);
  Deno.test({
    name: `parity: ${c.name}`,
    ignore: c.ignore !== undefined,
    fn: async () => {
      const { deno, ffinet } = await observe(c);
      if (c.diff !== undefined) {
        c.diff.check(deno, ffinet);
        return;
      }
      assertEquals(ffinet, deno);
    },
  });
}

// ---------------------------------------------------------------------------
// Beyond one request on TCP: Unix sockets, the default onListen, unref().

/** Send one request over the Unix socket `path` and read until the server closes. */
async function unixExchange(path: string, request: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(enc.encode(request));
    let out = "";
    const buf = new Uint8Array(65536);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const n = await within(conn.read(buf), Math.max(1, deadline - Date.now()), "a unix response");
      if (n === null) return out;
      out += dec.decode(buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
}

Deno.test("parity: Unix socket: req.url is http+unix://… and remoteAddr.path is the socket path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const seen: Record<string, unknown> = {};
    for (const kind of ["deno", "ffinet"] as const) {
      const path = `${dir}/${kind}.sock`;
      const handler = (r: Request, info: Deno.ServeHandlerInfo) =>
        json({
          url: r.url,
          remote: info.remoteAddr.transport === "unix"
            ? { ...info.remoteAddr, path: info.remoteAddr.path.replace(path, "SOCK") }
            : info.remoteAddr,
        });
      const server = kind === "deno"
        ? Deno.serve({ path, onListen() {} }, handler)
        : serve({ path, onListen() {} }, handler as Parameters<typeof serve>[1]);
      try {
        const text = await unixExchange(
          path,
          "GET /a/b?c=1 HTTP/1.1\r\nhost: app.local\r\nconnection: close\r\n\r\n",
        );
        seen[kind] = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4));
      } finally {
        await server.shutdown();
      }
    }
    assertEquals(seen.deno, {
      url: "http+unix://app.local/a/b?c=1",
      remote: { transport: "unix", path: "SOCK" },
    });
    assertEquals(seen.ffinet, seen.deno);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const HTTP_MOD = new URL("../../http/mod.ts", import.meta.url).href;

/** Run `code` as a module (with `serve` imported) in a new Deno process, at most 30 s. */
async function runModule(code: string) {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/main.ts`;
    await Deno.writeTextFile(file, `import { serve } from ${JSON.stringify(HTTP_MOD)};\n${code}`);
    return await runBounded(
      Deno.execPath(),
      { args: ["run", "--allow-all", "--no-lock", file], env: { NO_COLOR: "1" } },
      30_000,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parity: the default onListen writes Deno.serve's line, on the same stream", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const target of ['hostname: "0.0.0.0", port: 0', 'hostname: "127.0.0.1", port: 0', "path"]
    ) {
      const opts = target === "path" ? `path: ${JSON.stringify(`${dir}/KIND.sock`)}` : target;
      const out: Record<string, { stdout: string; stderr: string; code: number }> = {};
      for (const kind of ["deno", "ffinet"] as const) {
        const fn = kind === "deno" ? "Deno.serve" : "serve";
        const r = await runModule(
          `const s = ${fn}({ ${opts.replace("KIND", kind)} }, () => new Response("x"));\n` +
            `await s.shutdown();\n`,
        );
        out[kind] = {
          code: r.code,
          stdout: r.stdout,
          stderr: r.stderr.replace(/\d{2,5}/g, "PORT").replaceAll(kind, "KIND")
            .split("\n").filter((l) => !l.includes("legacy")).join("\n"),
        };
      }
      assertEquals(out.deno!.code, 0, JSON.stringify(out.deno));
      assertMatch(out.deno!.stderr, /^Listening on /);
      assertEquals(out.ffinet, out.deno, target);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parity: an unref'd server lets the process exit; ref() keeps it alive again", async () => {
  for (const kind of ["deno", "ffinet"] as const) {
    const fn = kind === "deno" ? "Deno.serve" : "serve";
    const start = `const s = ${fn}({ hostname: "127.0.0.1", port: 0, onListen() {} }, ` +
      `() => new Response("x"));\n`;
    // Unref'd: the process ends once its one timer has run.
    const t0 = performance.now();
    const a = await runModule(
      start + `s.unref();\nsetTimeout(() => console.log("timer ran"), 100);\n`,
    );
    const took = performance.now() - t0;
    assertEquals([a.code, a.stdout], [0, "timer ran\n"], `${kind}: ${a.stderr}`);
    assert(took < 25_000, `${kind}: the unref'd server held the process ${took} ms`);
    // unref() then ref(): the server holds the process, so an unref'd timer
    // still gets to run (and ends it).
    const b = await runModule(
      start + `s.unref();\ns.ref();\n` +
        `Deno.unrefTimer(setTimeout(() => { console.log("still alive"); Deno.exit(3); }, 300));\n`,
    );
    assertEquals([b.code, b.stdout], [3, "still alive\n"], `${kind}: ${b.stderr}`);
  }
});

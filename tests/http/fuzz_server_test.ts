/**
 * Fuzzing a running `serve()` (in a child process, so a crash is seen as an
 * exit) with mutated valid requests: at least 100,000 cases from a seeded
 * PRNG, bounded in time. Each mutant is followed on the same connection by a
 * known canary `GET /canary`; a batch ends with a `Connection: close` canary
 * and a half-close, so the server must answer everything and close.
 *
 * Every case must get well-formed responses or a close, never a hang, a crash
 * or a desynchronised stream: every response parses (status line, headers,
 * framing), canaries come back intact and in order, a server-made error (no
 * `x-id`) is the last thing on its connection, and a canary goes missing only
 * after a mutant that may carry a body (it can legitimately swallow it).
 *
 * `FUZZ_SEED=N` replays one seed; `FUZZ_CASES=N` changes the count.
 *
 * The request-line edges and limits the parser refuses (an empty chunk-size
 * line with a request smuggled behind it, too many fields, an over-long
 * method, a fragment, a misplaced `*`, a `file:` target) are also checked
 * end to end here, on `serve()` and `serveRaw()`: the status on the wire,
 * the close, and what the handler saw.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { type HttpServer, serve, serveRaw } from "../../http/mod.ts";
import { MalformedResponse, parseResponse, RawClient, type RawResponse } from "./_raw.ts";
import { spawnServerChild, USE_DENO } from "./_serve.ts";
import { prng } from "../_helpers.ts";

if (USE_DENO) {
  console.log(
    "skip: fuzz_server_test.ts: the serveRaw() fuzz and the parser-edge tests are ignored " +
      "against Deno.serve (FFINET_HTTP_TEST_SERVER=deno)",
  );
}

const enc = new TextEncoder();
const dec = new TextDecoder();

const envNumber = (name: string, fallback: number): number => {
  const v = Deno.env.get(name);
  return v === undefined || v === "" ? fallback : Number(v);
};
const SEED = envNumber("FUZZ_SEED", 0x5eed);
const CASES = envNumber("FUZZ_CASES", 100_000);
const PAIRS_PER_BATCH = 24;
const PARALLEL = 8;
const BATCH_TIMEOUT_MS = 10_000;
// About 40 s on an idle 2-core machine; the budget leaves room for a loaded one
// (at a load average of 12 on 2 cores it took 123 s).
const TOTAL_BUDGET_MS = 240_000;

function templates(id: string): string[] {
  return [
    `GET /path/x?q=${id}&r=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nx-id: ${id}\r\nUser-Agent: fuzz/1\r\nAccept: */*\r\n\r\n`,
    `HEAD /h HTTP/1.1\r\nHost: example.com\r\nx-id: ${id}\r\n\r\n`,
    `POST /echo HTTP/1.1\r\nHost: h\r\nx-id: ${id}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello`,
    `POST /echo HTTP/1.1\r\nHost: h\r\nx-id: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n3\r\nabc\r\n0\r\nt: 1\r\n\r\n`,
    `GET /ten HTTP/1.0\r\nConnection: keep-alive\r\nx-id: ${id}\r\n\r\n`,
    `GET http://127.0.0.1:8000/abs?x=${id} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nx-id: ${id}\r\n\r\n`,
    `OPTIONS * HTTP/1.1\r\nHost: h\r\nx-id: ${id}\r\n\r\n`,
    `PUT /p HTTP/1.1\r\nHost: h\r\nx-id: ${id}\r\nContent-Length: 0\r\nCookie: a=b; c=d\r\nAccept-Encoding: gzip, deflate\r\n\r\n`,
    `DELETE /d/${id} HTTP/1.1\r\nhost: h:80\r\nX-ID: ${id}\r\nConnection: keep-alive\r\n\r\n`,
  ];
}

const SPECIAL = [
  "\r",
  "\n",
  "\r\n",
  "\0",
  " ",
  "\t",
  ":",
  ";",
  '"',
  ",",
  "=",
  "/",
  "?",
  "#",
  "%",
  "\x7f",
  "\x80",
  "\xff",
  "0",
  "9",
  "f",
  "-",
  "\r\n\r\n",
  "\r\n ",
  "HTTP/1.1",
];
const HEADER_LINES = [
  "Content-Length: 0",
  "Content-Length: 3",
  "Content-Length: -1",
  "Content-Length: 1, 1",
  "Content-Length: 99999999999999999999",
  "Transfer-Encoding: chunked",
  "Transfer-Encoding: gzip",
  "Transfer-Encoding: chunked, chunked",
  "Transfer-Encoding: identity",
  "Connection: close",
  "Connection: upgrade",
  "Expect: 100-continue",
  "Expect: something",
  "Host: other",
  "Host:",
  "X-Long: " + "v".repeat(2000),
  " folded",
  ": empty-name",
  "Bad Name: x",
  "X-Ctl: a\x01b",
];

/** One mutated request (bytes) from a valid template. */
function mutate(rand: () => number, id: string): Uint8Array {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  let s = pick(templates(id));
  const x = rand();
  const rounds = x < 0.7 ? 1 : x < 0.9 ? 2 : 3;
  for (let r = 0; r < rounds; r++) {
    const pos = Math.floor(rand() * s.length);
    // Kinds 10-13 (40%): a change inside a header value or the target, mostly still valid
    // requests, so that cases reach the handler and later pipelined requests too.
    switch (Math.floor(rand() * 14)) {
      case 0: // random byte
        s = s.slice(0, pos) + String.fromCharCode(Math.floor(rand() * 256)) + s.slice(pos + 1);
        break;
      case 1: // special byte(s) replacing one
        s = s.slice(0, pos) + pick(SPECIAL) + s.slice(pos + 1);
        break;
      case 2: // insertion
        s = s.slice(0, pos) + pick(SPECIAL) + s.slice(pos);
        break;
      case 3: { // deletion of a short range
        const n = 1 + Math.floor(rand() * 8);
        s = s.slice(0, pos) + s.slice(pos + n);
        break;
      }
      case 4: { // duplication of a range
        const n = 1 + Math.floor(rand() * 24);
        s = s.slice(0, pos) + s.slice(pos, pos + n) + s.slice(pos);
        break;
      }
      case 5: { // an extra header line after the request line
        const eol = s.indexOf("\r\n");
        s = s.slice(0, eol + 2) + pick(HEADER_LINES) + "\r\n" + s.slice(eol + 2);
        break;
      }
      case 6: { // the version
        s = s.replace(
          "HTTP/1.1",
          pick(["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/1.10", "http/1.1"]),
        );
        break;
      }
      case 7: { // the method
        const sp = s.indexOf(" ");
        const method = pick(["get", "G T", "GETX", "", "PATCH", "CONNECT", "TRACE", "M-SEARCH"]);
        s = method + s.slice(sp);
        break;
      }
      case 8: { // case flip of a run
        const n = 1 + Math.floor(rand() * 16);
        const part = s.slice(pos, pos + n);
        s = s.slice(0, pos) +
          (rand() < 0.5 ? part.toUpperCase() : part.toLowerCase()) + s.slice(pos + n);
        break;
      }
      case 9: { // truncate the tail (the canary then follows a partial request)
        s = s.slice(0, Math.max(1, pos));
        break;
      }
      default: { // a printable byte (or a run) inside a header value (not Host's) or the query
        const spots: number[] = [];
        for (let i = s.indexOf(": "); i > 0; i = s.indexOf(": ", i + 1)) {
          if (!/host$/i.test(s.slice(Math.max(0, i - 4), i))) spots.push(i + 2);
        }
        const q = s.indexOf("?");
        if (q > 0) spots.push(q + 1);
        const at = spots.length > 0 ? pick(spots) : pos;
        const n = 1 + Math.floor(rand() * 4);
        let run = "";
        for (let i = 0; i < n; i++) run += String.fromCharCode(0x21 + Math.floor(rand() * 94));
        s = s.slice(0, at) + run + s.slice(at);
      }
    }
  }
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function canary(id: string, close = false): string {
  return `GET /canary HTTP/1.1\r\nHost: c\r\nx-id: ${id}\r\n${
    close ? "Connection: close\r\n" : ""
  }\r\n`;
}

interface Case {
  n: number;
  bytes: Uint8Array;
}

interface Stats {
  done: number;
  connections: number;
  responses: number;
  serverErrors: Map<number, number>;
  resets: number;
  swallowedCanaries: number;
}

/** Parse the whole stream of one batch connection; throws with context on any violation. */
function checkStream(
  stream: Uint8Array,
  ended: "eof" | "reset",
  batch: Case[],
  stats: Stats,
): number {
  let buf = stream;
  const responses: RawResponse[] = [];
  let serverError: RawResponse | undefined;
  for (;;) {
    if (buf.length === 0) break;
    if (serverError) {
      throw new MalformedResponse(
        `bytes after a server-made ${serverError.status}: ${JSON.stringify(dec.decode(buf))}`,
      );
    }
    let step;
    try {
      // A response that says it answers HEAD has no body; so does a server-made
      // error to a HEAD request (then nothing follows it).
      const probe = parseResponse(buf, true, true);
      if (probe.kind !== "response") break;
      const isHead = probe.response.headers.get("x-method") === "HEAD";
      const serverMade = !probe.response.headers.has("x-id");
      if (isHead || (serverMade && probe.consumed === buf.length)) {
        step = probe;
      } else {
        step = parseResponse(buf, false, true);
      }
    } catch (e) {
      if (ended === "reset") break; // the tail was cut by the RST
      throw e;
    }
    if (step.kind !== "response") break;
    buf = buf.subarray(step.consumed);
    const r = step.response;
    if (r.status < 200) continue; // 100 Continue
    responses.push(r);
    if (!r.headers.has("x-id")) {
      serverError = r;
      stats.serverErrors.set(r.status, (stats.serverErrors.get(r.status) ?? 0) + 1);
      if (r.status < 400) throw new MalformedResponse(`server-made ${r.status} without x-id`);
    }
  }
  stats.responses += responses.length;
  // Canaries: intact, in order; a missing one only after a mutant that may carry a body.
  let lastCanary = -1;
  let sawEnd = false;
  for (const r of responses) {
    const id = r.headers.get("x-id") ?? "";
    if (id === "end") {
      assertEquals(r.status, 200);
      assertEquals(r.text, "canary end");
      sawEnd = true;
      continue;
    }
    if (!id.startsWith("c") || !r.text.startsWith("canary ")) continue; // a mutant's x-id may read c<N>
    assert(!sawEnd, "a response after the final canary");
    const n = Number(id.slice(1));
    const index = batch.findIndex((c) => c.n === n);
    assert(index >= 0, `canary ${id} was not in this batch`);
    assert(index > lastCanary, `canary ${id} out of order`);
    assertEquals(r.status, 200, `canary ${id}`);
    assertEquals(r.text, `canary ${id}`, `canary ${id} body`);
    if (index > lastCanary + 1) {
      // Canaries went missing between two answered ones: the first mutant of the gap must be
      // able to swallow what follows it (a body, or a head its canary's lines continue);
      // the later ones in the gap then went into it too.
      const first = batch[lastCanary + 1]!;
      const text = dec.decode(first.bytes).toLowerCase();
      assert(
        text.includes("content-length") || text.includes("transfer-encoding") ||
          !text.endsWith("\r\n\r\n"),
        `canary c${first.n} vanished after a complete body-less mutant ${JSON.stringify(text)}`,
      );
      stats.swallowedCanaries += index - lastCanary - 1;
    }
    lastCanary = index;
  }
  if (ended === "reset") stats.resets++;
  if (!serverError && ended === "eof" && !sawEnd && lastCanary === batch.length - 1) {
    // All canaries answered but the final one is missing: only fine if the last mutant could
    // have swallowed it? No: the last canary came after the last mutant. A close without
    // an error after every canary but before the final one is a lost response.
    throw new MalformedResponse("the final Connection: close canary was not answered");
  }
  // Cases done: every one up to the last answered canary, and the next one (it ended the
  // connection) unless all were answered.
  return Math.min(batch.length, lastCanary + 2);
}

async function runBatch(port: number, batch: Case[], stats: Stats): Promise<number> {
  const parts: Uint8Array[] = [];
  for (const c of batch) {
    parts.push(c.bytes, enc.encode(canary(`c${c.n}`)));
  }
  parts.push(enc.encode(canary("end", true)));
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  const c = await RawClient.connect(port);
  stats.connections++;
  try {
    // Write concurrently with reading: the server may answer (and close) early.
    const writing = (async () => {
      try {
        await c.write(out);
        await c.closeWrite();
      } catch { /* the server closed first */ }
    })();
    const end = await c.waitEnd(BATCH_TIMEOUT_MS);
    await writing;
    if (end === "timeout") {
      throw new Error(
        `hang: no close within ${BATCH_TIMEOUT_MS} ms; got ${
          JSON.stringify(dec.decode(c.pending).slice(-300))
        }; batch starts with ${JSON.stringify(dec.decode(batch[0]!.bytes))}`,
      );
    }
    try {
      return checkStream(c.pending, end, batch, stats);
    } catch (e) {
      const detail = batch.map((b) => `c${b.n}: ${JSON.stringify(dec.decode(b.bytes))}`).join(
        "\n",
      );
      throw new Error(
        `${(e as Error).message}\nstream: ${
          JSON.stringify(dec.decode(c.pending))
        }\nbatch:\n${detail}`,
      );
    }
  } finally {
    c.close();
  }
}

async function fuzz(mode: "fuzz" | "fuzz-raw", cases: number): Promise<void> {
  const server = await spawnServerChild(mode);
  const rand = prng(SEED);
  const stats: Stats = {
    done: 0,
    connections: 0,
    responses: 0,
    serverErrors: new Map(),
    resets: 0,
    swallowedCanaries: 0,
  };
  let next = 0;
  const queue: Case[] = [];
  const take = (): Case[] => {
    const batch: Case[] = [];
    while (batch.length < PAIRS_PER_BATCH && (queue.length > 0 || next < cases)) {
      batch.push(queue.shift() ?? { n: next, bytes: mutate(rand, `m${next++}`) });
    }
    return batch;
  };
  const t0 = Date.now();
  try {
    const worker = async () => {
      for (;;) {
        if (Date.now() - t0 > TOTAL_BUDGET_MS) return;
        const batch = take();
        if (batch.length === 0) return;
        const done = await runBatch(server.port, batch, stats);
        stats.done += done;
        queue.unshift(...batch.slice(done));
        if (server.exited()) throw new Error("the server process died");
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    const ms = Date.now() - t0;
    console.log(
      `${mode} seed ${SEED}: ${stats.done} cases in ${ms} ms, ${stats.connections} connections, ${stats.responses} responses, server errors ${
        JSON.stringify(Object.fromEntries(stats.serverErrors))
      }, resets ${stats.resets}, canaries swallowed by bodies ${stats.swallowedCanaries}`,
    );
    assert(!server.exited(), "the server process died");
    // Still serving after all that.
    using c = await RawClient.connect(server.port);
    await c.write(canary("end", true));
    const r = await c.readResponse();
    assertEquals(r?.text, "canary end");
    assert(stats.done >= cases, `only ${stats.done} of ${cases} cases within the time budget`);
  } finally {
    await server.kill();
  }
}

Deno.test({
  name:
    `fuzz: ${CASES} mutated requests (seeded) each get a well-formed response or a close; canaries stay in sync`,
  fn: () => fuzz("fuzz", CASES),
});

Deno.test({
  name: `fuzz: serveRaw(): ${Math.round(CASES / 5)} mutated requests (seeded), the same checks`,
  ignore: USE_DENO,
  fn: () => fuzz("fuzz-raw", Math.round(CASES / 5)),
});

// ---------------------------------------------------------------------------
// Parser edges end to end: the status on the wire and what the handler saw

const CANARY = "GET /canary HTTP/1.1\r\nHost: h\r\n\r\n";
const EDGES: { name: string; send: string; status: number | null; seen: string[] }[] = [
  {
    name: "an empty chunk-size line: 400, the request smuggled behind it never runs",
    send: "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n\r\n" +
      "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    status: 400,
    seen: ["POST /a"], // serve() hands the head over before the body fails; serveRaw() does not
  },
  {
    // Read as a last chunk, the empty line would end the body at the blank
    // line after it, and the GET behind would run as a second request.
    name: "an empty chunk-size line then a blank line: 400, the GET behind it never runs",
    send: "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n\r\n\r\n" +
      "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    status: 400,
    seen: ["POST /a"],
  },
  {
    name: "101 header fields (maxHeaderCount 100): 431",
    send: "GET /many HTTP/1.1\r\nHost: h\r\n" +
      Array.from({ length: 100 }, (_, i) => `x${i}: 1\r\n`).join("") + "\r\n",
    status: 431,
    seen: [],
  },
  {
    name: "100 header fields: served",
    send: "GET /hundred HTTP/1.1\r\nHost: h\r\n" +
      Array.from({ length: 99 }, (_, i) => `x${i}: 1\r\n`).join("") + "\r\n",
    status: 200,
    seen: ["GET /hundred"],
  },
  {
    name: "a 40-byte method: 501, not 414",
    send: `${"M".repeat(40)} /${"a".repeat(9000)} HTTP/1.1\r\nHost: h\r\n\r\n`,
    status: 501,
    seen: [],
  },
  { name: "GET /#x: 400", send: "GET /#x HTTP/1.1\r\nHost: h\r\n\r\n", status: 400, seen: [] },
  { name: "GET *: 400", send: "GET * HTTP/1.1\r\nHost: h\r\n\r\n", status: 400, seen: [] },
  {
    name: "OPTIONS *: reaches the handler",
    send: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    status: 200,
    seen: ["OPTIONS *"],
  },
  {
    name: "a file: target: 400",
    send: "GET file:///etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n",
    status: 400,
    seen: [],
  },
  {
    name: "a data: target: 400",
    send: "GET data:text/plain,x HTTP/1.1\r\nHost: h\r\n\r\n",
    status: 400,
    seen: [],
  },
];

async function edges(kind: "serve" | "serveRaw"): Promise<void> {
  let seen: string[] = [];
  const options = {
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError: () => new Response(null, { status: 500 }),
  };
  const server: HttpServer = kind === "serve"
    ? serve(options, async (req) => {
      const url = new URL(req.url);
      const target = req.method === "OPTIONS" && url.pathname === "/*" ? "*" : url.pathname;
      seen.push(`${req.method} ${target}`);
      if (req.body !== null) await req.text().catch(() => {});
      return new Response(`${req.method} ${target}`);
    })
    : serveRaw({ ...options, onError() {} }, (req, res) => {
      seen.push(`${req.method} ${req.target}`);
      res.send(200, `${req.method} ${req.target}`);
    });
  const port = (server.addr as { port: number }).port;
  try {
    for (const edge of EDGES) {
      seen = [];
      using c = await RawClient.connect(port);
      await c.write(edge.send + (edge.status === 200 ? CANARY : ""));
      const first = await c.readResponse({ timeoutMs: 10_000 });
      assertEquals(first?.status, edge.status, `${kind}: ${edge.name}`);
      if (edge.status === 200) {
        assertEquals(first?.text, edge.seen[0], `${kind}: ${edge.name}`);
        assertEquals((await c.readResponse())?.text, "GET /canary", `${kind}: ${edge.name}`);
        seen.pop(); // the canary
      } else {
        // An error closes the connection: nothing else is answered.
        assertEquals(await c.waitEnd(10_000), "eof", `${kind}: ${edge.name}`);
        assertEquals(c.pending.length, 0, `${kind}: ${edge.name}: bytes after the error`);
      }
      const expected = kind === "serveRaw" && edge.status !== 200 ? [] : edge.seen;
      assertEquals(seen, expected, `${kind}: ${edge.name}: what the handler saw`);
    }
  } finally {
    await server.shutdown();
  }
}

Deno.test({
  name:
    "parser edges end to end on serve(): smuggling, field count, method, fragment, target forms",
  ignore: USE_DENO,
  fn: () => edges("serve"),
});

Deno.test({
  name: "parser edges end to end on serveRaw(): the same statuses, the handler never sees them",
  ignore: USE_DENO,
  fn: () => edges("serveRaw"),
});

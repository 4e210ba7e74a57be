/**
 * Micro-benchmarks of the HTTP parser (http/parser/) and response writer,
 * on what wrk sends with 16-deep pipelining: 16 `GET /` requests in one read.
 *
 * Run with `deno bench bench/http_parser_bench.ts`; divide the time of the
 * 16-request batches by 16 for the cost of one request.
 *
 * @module
 */
import { HttpParser } from "../http/parser/mod.ts";
import { helloWorldResponse, ResponseBuffer, writeResponse } from "../http/response.ts";

const WRK_GET = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
const BATCH = new TextEncoder().encode(WRK_GET.repeat(16));
// Sixteen different targets: every head is parsed in full (no identical-head shortcut).
const VARIED = new TextEncoder().encode(
  Array.from({ length: 16 }, (_, i) => `GET /${i} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n`)
    .join(""),
);
const browserGet = (target: string) =>
  new TextEncoder().encode(
    `GET ${target} HTTP/1.1\r\n` +
      "Host: 127.0.0.1:8080\r\n" +
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
      "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
      "Accept-Language: en-US,en;q=0.5\r\n" +
      "Accept-Encoding: gzip, deflate, br\r\n" +
      "Connection: keep-alive\r\n" +
      "\r\n",
  );
// Alternating targets: every head is parsed in full.
const BROWSER_GETS = [browserGet("/index.html?user=42"), browserGet("/style.css")];
let browserTurn = 0;

const parser = new HttpParser();
/** With the repeated-head memo (serveRaw's opt-in fast path). */
const memoParser = new HttpParser({ memo: true });
let sink = 0;

Deno.bench({
  name: "parse 16 pipelined wrk GETs (one chunk)",
  group: "parse",
  baseline: true,
  fn() {
    parser.feed(BATCH);
    for (let req = parser.next(); req !== null; req = parser.next()) sink += req.target.length;
    if (sink < 0) throw new Error("unreachable");
  },
});

Deno.bench({
  name: "parse 16 pipelined wrk GETs (one chunk, memo)",
  group: "parse",
  fn() {
    memoParser.feed(BATCH);
    for (let req = memoParser.next(); req !== null; req = memoParser.next()) {
      sink += req.target.length;
    }
  },
});

Deno.bench({
  name: "stream 16 pipelined wrk GETs (nextHead, one chunk)",
  group: "parse",
  fn() {
    parser.feed(BATCH);
    for (let req = parser.nextHead(); req !== null; req = parser.nextHead()) {
      sink += req.target.length;
    }
  },
});

Deno.bench({
  name: "parse 16 pipelined wrk GETs (chunks of 100 bytes)",
  group: "parse",
  fn() {
    for (let i = 0; i < BATCH.length; i += 100) {
      parser.feed(BATCH.subarray(i, i + 100));
      for (let req = parser.next(); req !== null; req = parser.next()) sink += req.target.length;
    }
  },
});

Deno.bench({
  name: "parse 16 pipelined GETs, 16 different targets (full parse)",
  group: "parse",
  fn() {
    parser.feed(VARIED);
    for (let req = parser.next(); req !== null; req = parser.next()) sink += req.target.length;
  },
});

Deno.bench({
  name: "parse 1 browser-like GET (7 headers, full parse)",
  group: "parse",
  fn() {
    parser.feed(BROWSER_GETS[browserTurn ^= 1]!);
    for (let req = parser.next(); req !== null; req = parser.next()) sink += req.headers.size;
  },
});

Deno.bench({
  name: "parse 1 browser-like GET (7 headers, identical head, memo)",
  group: "parse",
  fn() {
    memoParser.feed(BROWSER_GETS[0]!);
    for (let req = memoParser.next(); req !== null; req = memoParser.next()) {
      sink += req.headers.size;
    }
  },
});
Deno.bench({
  name: "helloWorldResponse x16 (cached)",
  group: "respond",
  baseline: true,
  fn() {
    for (let i = 0; i < 16; i++) sink += helloWorldResponse().length;
  },
});

Deno.bench({
  name: "writeResponse x16 (200, 13-byte string body)",
  group: "respond",
  fn() {
    for (let i = 0; i < 16; i++) sink += writeResponse(200, "Hello, World!").length;
  },
});

const out = new ResponseBuffer();

Deno.bench({
  name: "ResponseBuffer.writeHelloWorld x16",
  group: "respond",
  fn() {
    for (let i = 0; i < 16; i++) out.writeHelloWorld();
    sink += out.length;
    out.clear();
  },
});

Deno.bench({
  name: "ResponseBuffer.write x16 (200, 13-byte string body)",
  group: "respond",
  fn() {
    for (let i = 0; i < 16; i++) out.write(200, "Hello, World!");
    sink += out.length;
    out.clear();
  },
});

/**
 * Micro-benchmarks of the example HTTP server's parser and response writer,
 * on what wrk sends with 16-deep pipelining: 16 `GET /` requests in one read.
 *
 * Run with `deno bench bench/http_parser_bench.ts`; divide the time of the
 * 16-request batches by 16 for the cost of one request.
 *
 * @module
 */
import { HttpParser } from "../examples/http/parser.ts";
import { helloWorldResponse, writeResponse } from "../examples/http/response.ts";

const WRK_GET = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
const BATCH = new TextEncoder().encode(WRK_GET.repeat(16));
const BROWSER_GET = new TextEncoder().encode(
  "GET /index.html?user=42 HTTP/1.1\r\n" +
    "Host: 127.0.0.1:8080\r\n" +
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
    "Accept-Language: en-US,en;q=0.5\r\n" +
    "Accept-Encoding: gzip, deflate, br\r\n" +
    "Connection: keep-alive\r\n" +
    "\r\n",
);

const parser = new HttpParser();
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
  name: "parse 1 browser-like GET (7 headers)",
  group: "parse",
  fn() {
    parser.feed(BROWSER_GET);
    for (let req = parser.next(); req !== null; req = parser.next()) sink += req.headers.size;
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

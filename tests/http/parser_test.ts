/**
 * Tests of the HTTP request parser (whole and streamed bodies) and the response writer,
 * with a time-bounded, seeded fuzz test.
 *
 * The fuzz test is deterministic: case i uses a seed derived from a base seed
 * (0x5eed0001, or `FUZZ_SEED`) and i; only how many cases fit in the time
 * budget varies. A failure prints its case's seed; replay that case alone
 * with `FUZZ_CASE=<seed> deno test --allow-env tests/http/parser_test.ts`.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_HEADER_COUNT,
  HttpHeaders,
  HttpParseError,
  HttpParser,
  type HttpParserOptions,
  type HttpRequest,
  MAX_METHOD_BYTES,
} from "../../http/parser/mod.ts";
import {
  errorResponse,
  helloWorldResponse,
  httpDate,
  ResponseBuffer,
  STATUS_TEXT,
  writeResponse,
} from "../../http/response.ts";
import { prng } from "../_helpers.ts";

// ---------------------------------------------------------------------------
// Helpers

/** Latin-1 encoding: one byte per char (test inputs may hold any byte). */
function bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return s;
}

interface PlainRequest {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  body: string;
  keepAlive: boolean;
}

function plain(req: HttpRequest): PlainRequest {
  return {
    method: req.method,
    target: req.target,
    version: req.version,
    headers: [...req.headers],
    body: latin1(req.body),
    keepAlive: req.keepAlive,
  };
}

interface Outcome {
  requests: PlainRequest[];
  error: { status: number; reason: string } | null;
  idle: boolean;
}

/**
 * Feed `input` to `parser` cut at `cuts` (sorted offsets), calling `drain`
 * after each chunk. Each chunk goes through one reused scratch buffer that is
 * scribbled over after the drain, as a server's read buffer would be.
 */
function feedCut(parser: HttpParser, input: Uint8Array, cuts: number[], drain: () => void): void {
  const scratch = new Uint8Array(input.length);
  let start = 0;
  for (const end of [...cuts, input.length]) {
    if (end < start) continue;
    const chunk = scratch.subarray(0, end - start);
    chunk.set(input.subarray(start, end));
    start = end;
    parser.feed(chunk);
    drain();
    chunk.fill(0xaa);
  }
}

/**
 * Feed `input` cut at `cuts` (sorted offsets, {@linkcode feedCut}), taking
 * every request with `next()` after each chunk.
 */
function run(input: Uint8Array, cuts: number[] = [], options?: HttpParserOptions): Outcome {
  const parser = new HttpParser(options);
  const requests: PlainRequest[] = [];
  let calls = 0;
  try {
    feedCut(parser, input, cuts, () => {
      for (let req = parser.next(); req !== null; req = parser.next()) {
        requests.push(plain(req));
        if (++calls > input.length + 1) throw new Error("parser produced more requests than bytes");
      }
    });
  } catch (e) {
    if (!(e instanceof HttpParseError)) throw e;
    assertStrictEquals(parser.error, e);
    return { requests, error: { status: e.status, reason: e.reason }, idle: parser.idle };
  }
  return { requests, error: null, idle: parser.idle };
}

/**
 * Like {@linkcode run}, through the streaming API (`nextHead`/`readBody`):
 * a request counts once its body is complete, so the outcome must equal
 * `run`'s. The scratch buffer is scribbled over after `retain()`, as the
 * server does when it stops reading mid-chunk.
 */
function runStreaming(
  input: Uint8Array,
  cuts: number[] = [],
  options?: HttpParserOptions,
): Outcome {
  const parser = new HttpParser(options);
  const requests: PlainRequest[] = [];
  let head: HttpRequest | null = null;
  let body: number[] = [];
  try {
    feedCut(parser, input, cuts, () => {
      for (;;) {
        if (head !== null) {
          const piece = parser.readBody();
          if (piece !== null) {
            body.push(...piece);
            continue;
          }
          if (parser.inBody) break;
          requests.push({ ...plain(head), body: latin1(new Uint8Array(body)) });
          head = null;
          body = [];
        }
        const next = parser.nextHead();
        if (next === null) break;
        assertEquals(next.body.length, 0);
        if (parser.inBody) head = next;
        else requests.push(plain(next));
      }
      parser.retain();
    });
  } catch (e) {
    if (!(e instanceof HttpParseError)) throw e;
    return { requests, error: { status: e.status, reason: e.reason }, idle: parser.idle };
  }
  return { requests, error: null, idle: parser.idle };
}

function parseOne(s: string, options?: HttpParserOptions): PlainRequest {
  const out = run(bytes(s), [], options);
  assertEquals(out.error, null);
  assertEquals(out.requests.length, 1);
  return out.requests[0]!;
}

function parseError(s: string, options?: HttpParserOptions): { status: number; reason: string } {
  const out = run(bytes(s), [], options);
  if (out.error === null) throw new Error(`Expected an error for ${JSON.stringify(s)}`);
  return out.error;
}

/** Check that `response` is a well-formed HTTP/1.1 response; returns its head fields. */
function checkResponse(response: Uint8Array, omitBody = false): Map<string, string> {
  const text = latin1(response);
  const headEnd = text.indexOf("\r\n\r\n");
  assert(headEnd > 0, "response has no end of head");
  const lines = text.slice(0, headEnd).split("\r\n");
  assertMatch(lines[0]!, /^HTTP\/1\.1 [1-9]\d\d [^\r\n]*$/);
  const status = Number(lines[0]!.slice(9, 12));
  const fields = new Map<string, string>();
  for (const line of lines.slice(1)) {
    assertMatch(line, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n\0]*$/);
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    assert(!fields.has(name), `duplicate response header ${name}`);
    fields.set(name, line.slice(colon + 2));
  }
  assertMatch(
    fields.get("date") ?? "",
    /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/,
  );
  const bodyLength = response.length - (headEnd + 4);
  if (status < 200 || status === 204 || status === 304) {
    assert(!fields.has("content-length"));
    assertEquals(bodyLength, 0);
  } else if (omitBody) {
    assertEquals(bodyLength, 0);
    assertMatch(fields.get("content-length") ?? "", /^\d+$/);
  } else {
    assertEquals(fields.get("content-length"), String(bodyLength));
  }
  return fields;
}

const WRK_GET = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
/** What {@linkcode WRK_GET} parses to. */
const WRK_GET_PARSED: PlainRequest = {
  method: "GET",
  target: "/",
  version: "1.1",
  headers: [["host", "127.0.0.1:8080"]],
  body: "",
  keepAlive: true,
};

// ---------------------------------------------------------------------------
// Parsing

Deno.test("HttpParser parses a simple GET", () => {
  assertEquals(parseOne(WRK_GET), WRK_GET_PARSED);
});

Deno.test("HttpParser lowercases names, trims values and keeps field order", () => {
  const parser = new HttpParser();
  parser.feed(bytes(
    "GET /a/b?c=d&e=%20 HTTP/1.1\r\n" +
      "HOST: example.com\r\n" +
      "X-Custom-Thing:\t  spaced value \t \r\n" +
      "Accept: text/html\r\n" +
      "accept: application/json\r\n" +
      "X-Empty:\r\n" +
      "X-Latin: caf\xe9\r\n" +
      "\r\n",
  ));
  const req = parser.next()!;
  assertEquals(req.target, "/a/b?c=d&e=%20");
  assertEquals([...req.headers], [
    ["host", "example.com"],
    ["x-custom-thing", "spaced value"],
    ["accept", "text/html"],
    ["accept", "application/json"],
    ["x-empty", ""],
    ["x-latin", "caf\xe9"],
  ]);
  assertEquals(req.headers.size, 6);
  assertEquals(req.headers.get("Host"), "example.com");
  assertEquals(req.headers.get("accept"), "text/html, application/json");
  assertEquals(req.headers.getAll("ACCEPT"), ["text/html", "application/json"]);
  assertEquals(req.headers.get("x-empty"), "");
  assertEquals(req.headers.get("missing"), null);
  assert(req.headers.has("X-EMPTY"));
  assert(!req.headers.has("missing"));
  assertEquals(parser.next(), null);
  assert(parser.idle);
  assertEquals(new HttpHeaders().size, 0);
});

Deno.test("HttpParser interns repeated strings", () => {
  const parser = new HttpParser();
  parser.feed(bytes(WRK_GET + WRK_GET));
  const a = parser.next()!;
  const b = parser.next()!;
  assertStrictEquals(a.method, b.method);
  assertStrictEquals(a.headers.get("host"), "127.0.0.1:8080");
  assertStrictEquals(a.body, b.body);
  assertEquals(a.body.length, 0);
});

const MIXED = WRK_GET +
  "POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\n" +
  "hello world" +
  "\r\n" + // a stray empty line between requests is skipped
  "PUT /chunks HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
  "5;name=value\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-Trailer: t\r\n\r\n" +
  "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
  "DELETE /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

const MIXED_EXPECTED: PlainRequest[] = [
  WRK_GET_PARSED,
  {
    method: "POST",
    target: "/submit",
    version: "1.1",
    headers: [["host", "h"], ["content-length", "11"], ["content-type", "text/plain"]],
    body: "hello world",
    keepAlive: true,
  },
  {
    method: "PUT",
    target: "/chunks",
    version: "1.1",
    headers: [["host", "h"], ["transfer-encoding", "chunked"]],
    body: "hello, chunked!",
    keepAlive: true,
  },
  {
    method: "GET",
    target: "/old",
    version: "1.0",
    headers: [["connection", "keep-alive"]],
    body: "",
    keepAlive: true,
  },
  {
    method: "DELETE",
    target: "/x",
    version: "1.1",
    headers: [["host", "h"], ["connection", "close"]],
    body: "",
    keepAlive: false,
  },
];

Deno.test("HttpParser gives the same result for a split at every byte offset", () => {
  const input = bytes(MIXED);
  const whole = run(input);
  assertEquals(whole, { requests: MIXED_EXPECTED, error: null, idle: true });
  for (let k = 0; k <= input.length; k++) {
    assertEquals(run(input, [k]), whole, `split at ${k}`);
  }
  const everyByte = Array.from({ length: input.length }, (_, i) => i);
  assertEquals(run(input, everyByte), whole, "one byte at a time");
});

Deno.test("HttpParser gives the same errors for a split at every byte offset", () => {
  const cases = [
    "GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
    "GET / HTTP/1.1\nHost: h\r\n\r\n",
    "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
  ];
  for (const text of cases) {
    const input = bytes(text);
    const whole = run(input);
    assert(whole.error !== null, text);
    for (let k = 0; k <= input.length; k++) assertEquals(run(input, [k]), whole, `split at ${k}`);
    const everyByte = Array.from({ length: input.length }, (_, i) => i);
    assertEquals(run(input, everyByte), whole);
  }
});

Deno.test("HttpParser parses 16 pipelined requests from one chunk", () => {
  const parser = new HttpParser();
  parser.feed(bytes(WRK_GET.repeat(16)));
  let n = 0;
  for (let req = parser.next(); req !== null; req = parser.next()) {
    assertEquals(req.method, "GET");
    assertEquals(req.target, "/");
    assertEquals(req.headers.get("host"), "127.0.0.1:8080");
    assert(req.keepAlive);
    n++;
  }
  assertEquals(n, 16);
  assert(parser.idle);
  // A partial 17th request is kept for the next chunk.
  parser.feed(bytes(WRK_GET.repeat(2) + "GET / HT"));
  assert(parser.next() !== null);
  assert(parser.next() !== null);
  assertEquals(parser.next(), null);
  assert(!parser.idle);
  parser.feed(bytes("TP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"));
  assertEquals(parser.next()?.target, "/");
  assert(parser.idle);
});

Deno.test("HttpParser answers repeated identical heads like any other", () => {
  // Identical bodiless heads take a shortcut; near-identical ones must not.
  const variants = [
    WRK_GET,
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX: y\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 2\r\n\r\nab",
    "GET / HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n",
  ];
  const text = [0, 0, 1, 0, 2, 0, 3, 3, 0, 4, 0, 5, 0, 6, 6, 0, 0].map((i) => variants[i]!).join(
    "",
  );
  const expected = [0, 0, 1, 0, 2, 0, 3, 3, 0, 4, 0, 5, 0, 6, 6, 0, 0].map((i) =>
    run(bytes(variants[i]!)).requests[0]!
  );
  const input = bytes(text);
  assertEquals(run(input), { requests: expected, error: null, idle: true });
  for (let k = 0; k <= input.length; k += 7) assertEquals(run(input, [k]).requests, expected);
  // A head that differs from the previous one in its last byte only.
  const last = run(bytes(WRK_GET + WRK_GET.slice(0, -1) + "X"));
  assertEquals(last, { requests: [expected[0]!], error: null, idle: false });
  // A repeated head followed by a broken one still fails.
  const bad = run(bytes(WRK_GET + WRK_GET + WRK_GET.slice(0, -4) + "\r\nX : y\r\n\r\n"));
  assertEquals(bad.requests.length, 2);
  assertEquals(bad.error?.status, 400);
});

Deno.test("HttpParser assembles Content-Length bodies split across chunks", () => {
  const body = "x".repeat(1000) + "END";
  const text = `POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const input = bytes(text + WRK_GET);
  const cuts = [10, 50, text.length - body.length + 1, text.length - 500, text.length - 1];
  const out = run(input, cuts);
  assertEquals(out.error, null);
  assertEquals(out.requests.length, 2);
  assertEquals(out.requests[0]!.body, body);
  assertEquals(out.requests[1]!.target, "/");

  // The body is the parser's own copy, not a view of the fed chunk.
  const parser = new HttpParser();
  const chunk = bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
  parser.feed(chunk);
  const req = parser.next()!;
  chunk.fill(0);
  assertEquals(latin1(req.body), "abc");
  assert(req.body.buffer !== chunk.buffer);
});

Deno.test("HttpParser applies HTTP/1.0 and HTTP/1.1 keep-alive rules", () => {
  const cases: [string, string, boolean][] = [
    ["1.1", "", true],
    ["1.1", "Connection: close\r\n", false],
    ["1.1", "Connection: Close\r\n", false],
    ["1.1", "Connection: keep-alive\r\n", true],
    ["1.1", "Connection: upgrade, close\r\n", false],
    ["1.1", "Connection: foo\r\nConnection: CLOSE\r\n", false],
    ["1.0", "", false],
    ["1.0", "Connection: keep-alive\r\n", true],
    ["1.0", "Connection: Keep-Alive\r\n", true],
    ["1.0", "Connection: keep-alive, close\r\n", false],
    ["1.0", "Connection: close\r\n", false],
  ];
  for (const [version, header, keepAlive] of cases) {
    const req = parseOne(`GET / HTTP/${version}\r\nHost: h\r\n${header}\r\n`);
    assertEquals(req.keepAlive, keepAlive, `HTTP/${version} ${JSON.stringify(header)}`);
    assertEquals(req.version, version);
  }
});

Deno.test("HttpParser accepts the other valid forms", () => {
  // HTTP/1.x with x > 1 is handled as 1.1 (RFC 9110 §6.2).
  assertEquals(parseOne("GET / HTTP/1.2\r\nHost: h\r\n\r\n").version, "1.1");
  // HTTP/1.0 needs no Host.
  assertEquals(parseOne("GET / HTTP/1.0\r\n\r\n").headers, []);
  // Leading empty lines are skipped.
  assertEquals(parseOne("\r\n\r\n" + WRK_GET).target, "/");
  // Other target forms.
  assertEquals(parseOne("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").target, "*");
  assertEquals(parseOne("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n").target, "h:443");
  assertEquals(
    parseOne("GET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n").target,
    "http://h/p?q",
  );
  // Repeated equal Content-Lengths, in one field or several.
  assertEquals(
    parseOne("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc").body,
    "abc",
  );
  assertEquals(
    parseOne("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")
      .body,
    "abc",
  );
  assertEquals(parseOne("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").body, "");
  // Chunked: uppercase hex, extensions, whitespace before ";", trailers.
  assertEquals(
    parseOne(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n" +
        '1A ;ext="q"\r\n' + "z".repeat(26) + "\r\n0\r\nT: 1\r\nU: 2\r\n\r\n",
    ).body,
    "z".repeat(26),
  );
});

Deno.test("HttpParser rejects malformed requests with the right status", () => {
  const cases: [string, number, RegExp][] = [
    // request line
    ["GET /\r\nHost: h\r\n\r\n", 400, /request line/],
    ["GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, /request line/],
    ["GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, /request line/],
    [" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, /request line/],
    ["G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, /request line/],
    ["GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, /request line/],
    ["GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400, /request line/],
    ["GET / http/1.1\r\nHost: h\r\n\r\n", 400, /request line/],
    ["GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400, /request line/],
    ["GET / HTTP/11\r\nHost: h\r\n\r\n", 400, /request line/],
    ["GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, /not supported/],
    // line endings
    ["GET / HTTP/1.1\nHost: h\r\n\r\n", 400, /bare LF/],
    ["GET / HTTP/1.1\r\nHost: h\n\r\n", 400, /bare LF/],
    ["GET / HTTP/1.1\r\nHost: h\r\n\n", 400, /bare LF/],
    ["\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, /bare LF/],
    ["GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", 400, /bare CR/],
    ["GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400, /bare CR/],
    ["GET / HTTP/1.1\r\nHost: h\r\nX\r: a\r\n\r\n", 400, /bare CR/],
    // header lines
    ["GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, /without a colon/],
    ["GET / HTTP/1.1\r\nHost: h\r\nNo Colon\r\n\r\n", 400, /without a colon/],
    ["GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n", 400, /whitespace between/],
    ["GET / HTTP/1.1\r\nHost: h\r\nX-A\t: b\r\n\r\n", 400, /whitespace between/],
    ["GET / HTTP/1.1\r\nHost: h\r\nX(A): b\r\n\r\n", 400, /invalid character in header name/],
    ["GET / HTTP/1.1\r\nHost: h\r\nX\xe9: b\r\n\r\n", 400, /invalid character in header name/],
    ["GET / HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n", 400, /empty header name/],
    ["GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400, /invalid character in header value/],
    ["GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400, /invalid character in header value/],
    ["GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400, /line folding/],
    // Host
    ["GET / HTTP/1.1\r\n\r\n", 400, /missing Host/],
    ["GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, /more than one Host/],
    ["GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400, /more than one Host/],
    // Content-Length
    ["POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400, /invalid Content-Length/],
    ["POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, /invalid Content-Length/],
    ["POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", 400, /invalid Content-Length/],
    ["POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1.0\r\n\r\n", 400, /invalid Content-Length/],
    ["POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x1\r\n\r\n", 400, /invalid Content-Length/],
    ["POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400, /invalid Content-Length/],
    ["POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", 400, /invalid Content-Length/],
    ["POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n", 400, /conflicting|invalid/],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      400,
      /conflicting Content-Length/,
    ],
    // Transfer-Encoding
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      501,
      /unsupported transfer coding "gzip"/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
      400,
      /chunked is not the final/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      400,
      /chunked is not the final/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      400,
      /more than once/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
      400,
      /both Transfer-Encoding and Content-Length/,
    ],
    ["POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, /HTTP\/1\.0/],
    ["POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n", 400, /empty Transfer/],
    ["POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: a@b, chunked\r\n\r\n", 400, /malformed/],
    // chunked bodies
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
      400,
      /invalid chunk size/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n",
      400,
      /invalid chunk size/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x00\r\n",
      400,
      /invalid chunk extension/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n",
      400,
      /not followed by CRLF/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n",
      400,
      /bare LF/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad T: x\r\n\r\n",
      400,
      /whitespace between/,
    ],
    [
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + "1".repeat(5000),
      400,
      /chunk size line is too long/,
    ],
  ];
  for (const [text, status, reason] of cases) {
    const error = parseError(text);
    assertEquals(error.status, status, JSON.stringify(text));
    assertMatch(error.reason, reason, JSON.stringify(text));
  }
});

Deno.test("HttpParser rejects oversized heads with 431", () => {
  const limit = { maxHeaderBytes: 64 };
  const head = (n: number) => `GET / HTTP/1.1\r\nHost: h\r\nX: ${"a".repeat(n)}\r\n\r\n`;
  const fits = head(64 - head(0).length);
  assertEquals(fits.length, 64);
  assertEquals(parseOne(fits, limit).headers[1]![1].length, 64 - head(0).length);
  assertEquals(parseError(head(65 - head(0).length), limit).status, 431);
  assertEquals(parseError(`GET /${"a".repeat(100)} HTTP/1.1\r\n\r\n`, limit).status, 431);
  // Without an end of head: rejected as soon as the limit is passed.
  const parser = new HttpParser(limit);
  parser.feed(bytes("GET / HTTP/1.1\r\nX: " + "a".repeat(40)));
  assertEquals(parser.next(), null);
  parser.feed(bytes("a".repeat(10)));
  assertThrows(() => parser.next(), HttpParseError, "request header fields are too large");
  assertEquals(parser.error?.status, 431);
  const lineParser = new HttpParser(limit);
  lineParser.feed(bytes("GET /" + "a".repeat(59))); // 64 bytes: may still be fine
  assertEquals(lineParser.next(), null);
  lineParser.feed(bytes("a"));
  assertThrows(() => lineParser.next(), HttpParseError, "request line");
  assertEquals(lineParser.error?.status, 431);
  // The default is 16 KiB (DEFAULT_MAX_HEADER_BYTES): a head of exactly 16384 bytes passes.
  const big = (n: number) => `GET / HTTP/1.1\r\nHost: h\r\nX: ${"a".repeat(n)}\r\n\r\n`;
  assertEquals(DEFAULT_MAX_HEADER_BYTES, 16384);
  assertEquals(parseOne(big(16384 - big(0).length)).headers.length, 2);
  assertEquals(parseError(big(16385 - big(0).length)).status, 431);
  // Trailers are bounded too.
  assertEquals(
    parseError(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " +
        "a".repeat(100) + "\r\n\r\n",
      limit,
    ).status,
    431,
  );
});

Deno.test("HttpParser rejects oversized bodies with 413", () => {
  const limit = { maxBodyBytes: 10 };
  const post = (n: number) =>
    `POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ${n}\r\n\r\n${"b".repeat(n)}`;
  assertEquals(parseOne(post(10), limit).body, "b".repeat(10));
  assertEquals(parseError(post(11), limit).status, 413);
  // Reported as soon as the head is complete, before any body byte.
  const parser = new HttpParser(limit);
  parser.feed(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"));
  assertThrows(() => parser.next(), HttpParseError);
  assertEquals(parser.error?.status, 413);
  // Chunked bodies count every chunk.
  const chunked = (sizes: number[]) =>
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
    sizes.map((n) => `${n.toString(16)}\r\n${"c".repeat(n)}\r\n`).join("") + "0\r\n\r\n";
  assertEquals(parseOne(chunked([4, 6]), limit).body, "c".repeat(10));
  assertEquals(parseError(chunked([4, 7]), limit).status, 413);
  assertEquals(
    parseError(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n",
    ).status,
    413,
  );
  // The default is 1 MiB.
  assertEquals(
    parseError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n").status,
    413,
  );
});

Deno.test("HttpParser stays failed after an error", () => {
  const parser = new HttpParser();
  parser.feed(bytes(WRK_GET + "BAD\r\n\r\n" + WRK_GET));
  assertEquals(parser.next()?.target, "/"); // the valid request before the bad one
  const error = assertThrows(() => parser.next(), HttpParseError);
  assertEquals(error.status, 400);
  assertMatch(error.message, /^Cannot parse HTTP request: /);
  assertStrictEquals(parser.error, error);
  parser.feed(bytes(WRK_GET)); // ignored
  assertStrictEquals(assertThrows(() => parser.next(), HttpParseError), error);
  parser.reset();
  assertEquals(parser.error, null);
  parser.feed(bytes(WRK_GET));
  assertEquals(parser.next()?.target, "/");
});

Deno.test("HttpParser validates its options with the one message format", () => {
  const cases: [HttpParserOptions, string][] = [
    [{ maxHeaderBytes: 15 }, "maxHeaderBytes 15 is not an integer from 16 to 16777216"],
    [{ maxHeaderBytes: 2 ** 24 + 1 }, "maxHeaderBytes 16777217 is not an integer from 16 to"],
    [{ maxBodyBytes: 1.5 }, "maxBodyBytes 1.5 is not an integer from 1 to 9007199254740991"],
    [{ maxBodyBytes: 0 }, "maxBodyBytes 0 is not an integer from 1 to"],
    [{ maxTargetBytes: NaN }, "maxTargetBytes NaN is not an integer from 1 to 16777216"],
    [{ maxHeaderCount: 0 }, "maxHeaderCount 0 is not an integer from 1 to 65536"],
    [{ maxHeaderCount: "5" as never }, 'maxHeaderCount "5" is not an integer from 1 to 65536'],
  ];
  for (const [options, message] of cases) {
    assertThrows(() => new HttpParser(options), RangeError, `Cannot create HttpParser: ${message}`);
  }
  assertInstanceOf(
    new HttpParser({ maxHeaderBytes: 16, maxBodyBytes: 1, maxHeaderCount: 1, maxTargetBytes: 1 }),
    HttpParser,
  );
});

// ---------------------------------------------------------------------------
// Responses

Deno.test("writeResponse serializes status, headers, length and connection", () => {
  const res = writeResponse(404, "not here\n", {
    headers: { "X-A": "1", "x-b": "caf\xe9" },
    keepAlive: false,
  });
  const fields = checkResponse(res);
  const text = latin1(res);
  assert(text.startsWith("HTTP/1.1 404 Not Found\r\n"));
  assert(text.endsWith("\r\n\r\nnot here\n"));
  assertEquals(fields.get("x-a"), "1");
  assertEquals(fields.get("x-b"), "caf\xe9");
  assertEquals(fields.get("content-type"), "text/plain; charset=utf-8");
  assertEquals(fields.get("content-length"), "9");
  assertEquals(fields.get("connection"), "close");
  assertEquals(fields.get("date"), httpDate());

  const json = writeResponse(200, new Uint8Array([1, 2, 3]), {
    headers: [["Content-Type", "application/octet-stream"]],
  });
  const jsonFields = checkResponse(json);
  assertEquals(jsonFields.get("content-type"), "application/octet-stream");
  assertEquals(jsonFields.get("content-length"), "3");
  assert(!jsonFields.has("connection"));
  assertEquals([...json.subarray(json.length - 3)], [1, 2, 3]);

  // UTF-8 bodies are measured in bytes.
  assertEquals(checkResponse(writeResponse(200, "é")).get("content-length"), "2");
  // HTTP/1.0 clients are told about keep-alive.
  assertEquals(
    checkResponse(writeResponse(200, "x", { version: "1.0" })).get("connection"),
    "keep-alive",
  );
  // HEAD: the length of the body, not the body.
  const head = writeResponse(200, "abcdef", { omitBody: true });
  assertEquals(checkResponse(head, true).get("content-length"), "6");
  // Bodiless statuses.
  assert(!checkResponse(writeResponse(204)).has("content-length"));
  assertEquals(checkResponse(writeResponse(200)).get("content-length"), "0");
  // An unknown status has an empty reason phrase.
  assert(latin1(writeResponse(299)).startsWith("HTTP/1.1 299 \r\n"));
});

Deno.test("writeResponse rejects what would corrupt the response", () => {
  assertThrows(() => writeResponse(99), RangeError);
  assertThrows(() => writeResponse(1000), RangeError);
  assertThrows(() => writeResponse(200.5), RangeError);
  assertThrows(() => writeResponse(200, "", { headers: { "X-A": "a\r\nb" } }), TypeError);
  assertThrows(() => writeResponse(200, "", { headers: { "X A": "a" } }), TypeError);
  assertThrows(() => writeResponse(200, "", { headers: { "": "a" } }), TypeError);
  assertThrows(() => writeResponse(200, "", { headers: { "X-A": "\u0100" } }), TypeError);
  assertThrows(
    () => writeResponse(200, "", { headers: { "Content-Length": "5" } }),
    TypeError,
    "set by the writer",
  );
  assertThrows(() => writeResponse(200, "", { headers: [["connection", "x"]] }), TypeError);
  assertThrows(() => writeResponse(200, "", { contentType: "a\nb" }), TypeError);
  assertThrows(() => writeResponse(204, "x"), TypeError, "cannot have a body");
});

Deno.test("helloWorldResponse is cached and well-formed", () => {
  const a = helloWorldResponse();
  const b = helloWorldResponse({ keepAlive: true, version: "1.1" });
  // The same bytes unless the second changed between the two calls.
  if (latin1(a) === latin1(b)) assertStrictEquals(a, b);
  const fields = checkResponse(a);
  assertEquals(fields.get("content-length"), "13");
  assertEquals(fields.get("content-type"), "text/plain");
  assert(latin1(a).endsWith("\r\n\r\nHello, World!"));
  assert(!fields.has("connection"));
  assertEquals(checkResponse(helloWorldResponse({ keepAlive: false })).get("connection"), "close");
  assertEquals(
    checkResponse(helloWorldResponse({ keepAlive: true, version: "1.0" })).get("connection"),
    "keep-alive",
  );
  // A parsed request fits as the options.
  const parser = new HttpParser();
  parser.feed(bytes("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  const req = parser.next()!;
  assertEquals(checkResponse(helloWorldResponse(req)).get("connection"), "close");
});

Deno.test("httpDate is an IMF-fixdate recomputed once per second", () => {
  assertEquals(httpDate(784111777000), "Sun, 06 Nov 1994 08:49:37 GMT");
  const s = httpDate(784111777999);
  assertStrictEquals(httpDate(784111777500), s);
  assertEquals(httpDate(784111778000), "Sun, 06 Nov 1994 08:49:38 GMT");
  assertMatch(httpDate(), /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/);
});

Deno.test("errorResponse answers every parse error status and closes", () => {
  for (const status of [400, 404, 405, 413, 431, 500, 501, 503, 505]) {
    assert(STATUS_TEXT[status] !== undefined);
    const res = errorResponse(status);
    const fields = checkResponse(res);
    assertEquals(fields.get("connection"), "close");
    assert(latin1(res).startsWith(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n`));
  }
  assert(latin1(errorResponse(400, "bad header\n")).endsWith("\r\n\r\nbad header\n"));
});

Deno.test("writeResponse encodes string bodies as UTF-8 like TextEncoder", () => {
  const encoder = new TextEncoder();
  const g = new Gen(42);
  const samples = ["", "a", "é", "€", "😀", "\ud800", "a\udc00b", "x\ud83d", "\ud83d\ud83d\ude00"];
  for (let i = 0; i < 200; i++) {
    let s = "";
    for (let n = g.int(12); n > 0; n--) s += String.fromCharCode(g.int(0x10000));
    samples.push(s);
  }
  for (const body of samples) {
    const res = writeResponse(200, body);
    const expected = encoder.encode(body);
    checkResponse(res);
    assertEquals(res.subarray(res.length - expected.length), expected, JSON.stringify(body));
  }
});

Deno.test("ResponseBuffer serializes in place, grows and consumes", () => {
  const out = new ResponseBuffer({ initialSize: 64 });
  const hello = helloWorldResponse();
  for (let i = 0; i < 16; i++) out.writeHelloWorld();
  assertEquals(out.length, 16 * hello.length);
  assert(out.buffer.length >= out.length);
  const text = latin1(out.bytes());
  // The same bytes as the cached response, unless the second changed meanwhile.
  if (latin1(helloWorldResponse()) === latin1(hello)) assertEquals(text, latin1(hello).repeat(16));
  out.clear();
  assertEquals(out.length, 0);

  const options = { headers: { "x-a": "b" }, keepAlive: false, version: "1.0" } as const;
  out.write(201, "créé", options);
  out.write(204);
  const first = writeResponse(201, "créé", options).length;
  const all = out.bytes().slice();
  checkResponse(all.subarray(0, first));
  checkResponse(all.subarray(first));
  out.consume(first);
  assertEquals(out.bytes(), all.subarray(first));
  out.append(new Uint8Array([1, 2, 3]));
  assertEquals([...out.bytes().subarray(-3)], [1, 2, 3]);
  out.consume(out.length);
  assertEquals(out.length, 0);
  assertThrows(() => out.consume(1), RangeError);
  assertThrows(() => out.write(200, "", { headers: { "a b": "c" } }), TypeError);
  assertEquals(out.length, 0, "a rejected response writes nothing");
  assertThrows(() => new ResponseBuffer({ initialSize: -1 }), RangeError);
});

// ---------------------------------------------------------------------------
// Fuzzing

class Gen {
  readonly #rand: () => number;
  constructor(seed: number) {
    this.#rand = prng(seed);
  }
  float(): number {
    return this.#rand();
  }
  int(n: number): number {
    return Math.floor(this.#rand() * n);
  }
  chance(p: number): boolean {
    return this.#rand() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  string(alphabet: string, min: number, max: number): string {
    let s = "";
    const n = min + this.int(max - min + 1);
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)]!;
    return s;
  }
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
let VCHARS = "";
for (let c = 0x21; c < 0x7f; c++) VCHARS += String.fromCharCode(c);
/** VCHAR but "#": a fragment never reaches a server (RFC 9112 §3.2). */
const TARGET_CHARS = VCHARS.replace("#", "");
let VALUE_CHARS = VCHARS + "  \t";
for (let c = 0x80; c < 0x100; c += 7) VALUE_CHARS += String.fromCharCode(c);
const RESERVED_NAMES = new Set(["host", "content-length", "transfer-encoding", "connection"]);

/** A random valid request and what the parser must make of it. */
function validRequest(g: Gen): { text: string; expected: PlainRequest } {
  const method = g.chance(0.8)
    ? g.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    : g.string(TCHARS, 1, 10);
  const target = "/" + g.string(TARGET_CHARS, 0, 30);
  const version = g.chance(0.8) ? "1.1" : "1.0";
  let text = (g.chance(0.1) ? "\r\n" : "") + `${method} ${target} HTTP/${version}\r\n`;
  const headers: [string, string][] = [];
  const field = (name: string, value: string) => {
    const ows = () => g.pick(["", "", " ", "\t", "  "]);
    text += `${name}:${ows()}${value}${ows()}\r\n`;
    headers.push([name.toLowerCase(), value]);
  };
  const others = () => {
    for (let n = g.int(4); n > 0; n--) {
      const name = g.string(TCHARS, 1, 12);
      if (RESERVED_NAMES.has(name.toLowerCase())) continue;
      const value = g.chance(0.2)
        ? ""
        : g.string(VCHARS, 1, 1) + g.string(VALUE_CHARS, 0, 30) + g.string(VCHARS, 1, 1);
      field(name, value);
    }
  };
  let hostSent = false;
  if (version === "1.1" || g.chance(0.5)) {
    others();
    field(g.pick(["Host", "host", "HOST"]), g.pick(["127.0.0.1:8080", "example.com", "h"]));
    hostSent = true;
  }
  others();
  let keepAlive = version === "1.1";
  const connection = g.pick(["", "", "close", "keep-alive", "Keep-Alive", "upgrade, CLOSE"]);
  if (connection !== "") {
    field("Connection", connection);
    const tokens = connection.toLowerCase().split(",").map((t) => t.trim());
    if (tokens.includes("close")) keepAlive = false;
    else if (tokens.includes("keep-alive")) keepAlive = true;
  }
  const body = g.chance(0.5) ? "" : g.string(VALUE_CHARS + "\r\n\0", 0, 200);
  const framing = body === "" ? g.pick(["none", "length"]) : g.pick(["length", "chunked"]);
  let bodyText = "";
  if (framing === "length") {
    field("Content-Length", String(body.length));
  } else if (framing === "chunked" && version === "1.1" && hostSent) {
    field("Transfer-Encoding", g.pick(["chunked", "Chunked"]));
    let rest = body;
    while (rest.length > 0) {
      const n = 1 + g.int(Math.min(rest.length, 64));
      const hex = n.toString(16);
      bodyText += `${g.chance(0.5) ? hex : hex.toUpperCase()}${g.chance(0.2) ? ";x=y" : ""}\r\n`;
      bodyText += `${rest.slice(0, n)}\r\n`;
      rest = rest.slice(n);
    }
    bodyText += "0\r\n" + (g.chance(0.3) ? "Trailer-Field: v\r\n" : "") + "\r\n";
  } else if (framing === "chunked") {
    field("Content-Length", String(body.length));
  }
  text += "\r\n" + (bodyText === "" ? body : bodyText);
  const sentBody = framing === "none" ? "" : body;
  return {
    text,
    expected: { method, target, version, headers, body: sentBody, keepAlive },
  };
}

const ALL_BYTES = Array.from({ length: 256 }, (_, c) => String.fromCharCode(c)).join("");
const INTERESTING = [
  "GET",
  "POST",
  " ",
  "\r\n",
  "\r",
  "\n",
  ":",
  "/",
  "HTTP/1.1",
  "HTTP/1.0",
  "Host: h",
  "Content-Length: ",
  "Transfer-Encoding: chunked",
  "Connection: close",
  "0",
  "5",
  "ff",
  "\r\n\r\n",
  ";",
  ",",
  "\t",
  "\0",
  "\xff",
  "#",
  "*",
  "OPTIONS",
  "CONNECT",
  "http://h",
  "file:",
  "h:1",
  "M".repeat(33),
  "X: 1\r\n".repeat(8),
];

function mutate(g: Gen, input: string): string {
  let s = input;
  for (let n = 1 + g.int(4); n > 0; n--) {
    const at = g.int(s.length + 1);
    switch (g.int(6)) {
      case 0: // flip a byte
        if (s.length > 0) {
          const i = Math.min(at, s.length - 1);
          s = s.slice(0, i) + String.fromCharCode((s.charCodeAt(i) ^ (1 << g.int(8))) & 0xff) +
            s.slice(i + 1);
        }
        break;
      case 1: // insert a random byte
        s = s.slice(0, at) + String.fromCharCode(g.int(256)) + s.slice(at);
        break;
      case 2: // insert an interesting token
        s = s.slice(0, at) + g.pick(INTERESTING) + s.slice(at);
        break;
      case 3: // delete a run
        s = s.slice(0, at) + s.slice(at + 1 + g.int(8));
        break;
      case 4: // truncate
        s = s.slice(0, at);
        break;
      case 5: { // duplicate a run
        const len = 1 + g.int(16);
        s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
        break;
      }
    }
  }
  return s;
}

function randomCuts(g: Gen, length: number): number[] {
  const mode = g.int(4);
  if (mode === 0) return [];
  if (mode === 1) return Array.from({ length }, (_, i) => i); // byte by byte
  const cuts: number[] = [];
  for (let n = g.int(mode === 2 ? 4 : 32); n > 0; n--) cuts.push(g.int(length + 1));
  return cuts.sort((a, b) => a - b);
}

const fuzzOutput = new ResponseBuffer({ initialSize: 256 });

/** Build a response for each request (and error) the way a server would, and check it. */
function respond(out: Outcome): void {
  for (const req of out.requests) {
    const echo = req.headers[0]?.[1] ?? "";
    const options = {
      headers: [["X-Method", req.method], ["X-Echo", echo]] as [string, string][],
      keepAlive: req.keepAlive,
      version: req.version as "1.0" | "1.1",
      omitBody: req.method === "HEAD",
    };
    const res = writeResponse(200, req.target + req.body, options);
    const fields = checkResponse(res, req.method === "HEAD");
    assertEquals(fields.get("x-echo"), echo);
    assertEquals(fields.get("x-method"), req.method);
    fuzzOutput.clear();
    fuzzOutput.write(200, req.target + req.body, options);
    const buffered = fuzzOutput.bytes();
    checkResponse(buffered, req.method === "HEAD");
    assertEquals(buffered.length, res.length);
    checkResponse(helloWorldResponse({ keepAlive: req.keepAlive, version: "1.1" }));
  }
  if (out.error !== null) checkResponse(errorResponse(out.error.status));
}

function envNumber(name: string): number | undefined {
  const permission = Deno.permissions.querySync({ name: "env", variable: name });
  const value = permission.state === "granted" ? Deno.env.get(name) : undefined;
  return value === undefined ? undefined : Number(value) >>> 0;
}

/** One fuzz case, entirely determined by `seed`. */
function fuzzCase(seed: number, counts: Record<string, number>): void {
  const g = new Gen(seed);
  let input = "";
  try {
    const kind = g.int(10);
    const generated: PlainRequest[] = [];
    if (kind < 8) {
      let r = validRequest(g);
      for (let n = 1 + g.int(4); n > 0; n--) {
        // Repeats exercise the parser's identical-head shortcut.
        if (!g.chance(0.4)) r = validRequest(g);
        input += r.text;
        generated.push(r.expected);
      }
    } else {
      input = kind === 8
        ? g.string(ALL_BYTES, 0, 200)
        : Array.from({ length: g.int(40) }, () => g.pick(INTERESTING)).join("");
    }
    const mutated = kind < 8 && g.chance(0.6);
    if (mutated) input = mutate(g, input);
    const options: HttpParserOptions = mutated && g.chance(0.3)
      ? {
        maxHeaderBytes: 16 + g.int(200),
        maxBodyBytes: 1 + g.int(200),
        maxHeaderCount: 1 + g.int(8),
        maxTargetBytes: 1 + g.int(40),
      }
      : {};
    const data = bytes(input);
    const whole = run(data, [], options);
    const cuts = randomCuts(g, data.length);
    const cut = run(data, cuts, options);
    assertEquals(cut, whole, "a different chunking gave a different result");
    assertEquals(runStreaming(data, cuts, options), whole, "streaming gave a different result");
    assertEquals(run(data, cuts, { ...options, memo: true }), whole, "the memo changed the result");
    if (kind < 8 && !mutated) {
      assertEquals(whole, { requests: generated, error: null, idle: true });
      counts.valid!++;
    } else if (mutated) {
      counts.mutated!++;
    } else {
      counts.random!++;
    }
    counts.requests! += whole.requests.length;
    if (whole.error !== null) counts.errors!++;
    respond(whole);
  } catch (e) {
    const shown = JSON.stringify(input.length > 400 ? input.slice(0, 400) + "..." : input);
    throw new Error(
      `Fuzz case failed: seed ${seed} (replay it alone with FUZZ_CASE=${seed}); ` +
        `input ${shown}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

Deno.test("HttpParser survives fuzzing (seeded, about 2 seconds)", () => {
  const counts = { valid: 0, mutated: 0, random: 0, requests: 0, errors: 0 };
  const only = envNumber("FUZZ_CASE");
  if (only !== undefined) return fuzzCase(only, counts);
  const base = envNumber("FUZZ_SEED") ?? 0x5eed_0001;
  const deadline = performance.now() + 2000;
  // At least 1000 cases, however slow a loaded machine makes them: the
  // counts below need that many.
  for (let i = 0; performance.now() < deadline || i < 1000; i++) {
    fuzzCase((base + Math.imul(i, 0x9e3779b1)) >>> 0, counts);
  }
  assert(counts.valid > 100 && counts.mutated > 100 && counts.random > 10, JSON.stringify(counts));
  assert(counts.errors > 50 && counts.requests > 500, JSON.stringify(counts));
});

// ---------------------------------------------------------------------------
// Streaming bodies, limits and grammar added with the server

Deno.test("HttpParser streams a body: the head first, then the bytes as they arrive", () => {
  const parser = new HttpParser();
  parser.feed(bytes("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab"));
  const head = parser.nextHead()!;
  assertEquals([head.method, head.target, head.bodyLength, head.body.length], [
    "POST",
    "/up",
    6,
    0,
  ]);
  assert(parser.inBody);
  assertEquals(latin1(parser.readBody()!), "ab");
  assertEquals(parser.readBody(), null);
  assert(parser.inBody);
  assertThrows(() => parser.nextHead(), Error, "not read to its end");
  parser.feed(bytes("cdefGET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  assertEquals(latin1(parser.readBody()!), "cdef");
  assertEquals(parser.readBody(), null);
  assert(!parser.inBody);
  assertEquals(parser.nextHead()?.target, "/");
  assert(parser.idle);
  // Chunked: de-chunked pieces, bodyLength -1.
  parser.feed(bytes("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n"));
  assertEquals(parser.nextHead()?.bodyLength, -1);
  assertEquals(latin1(parser.readBody()!), "xy");
  assertEquals(parser.readBody(), null);
  parser.feed(bytes("0\r\n\r\n"));
  assertEquals(parser.readBody(), null);
  assert(!parser.inBody && parser.idle);
});

Deno.test("HttpParser reports Expect: 100-continue and keeps the bytes after an upgrade head", () => {
  const parser = new HttpParser();
  parser.feed(
    bytes("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n"),
  );
  assert(parser.nextHead()!.expectContinue);
  const up = new HttpParser();
  up.feed(bytes("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nraw bytes"));
  assert(!up.nextHead()!.expectContinue);
  assertEquals(latin1(up.takeBuffered()), "raw bytes");
  assert(up.idle);
});

Deno.test("HttpParser: a long target is a 414, a bad Host a 400, and the method is kept for HEAD errors", () => {
  assertEquals(
    parseError(`GET /${"a".repeat(100)} HTTP/1.1\r\nHost: h\r\n\r\n`, { maxTargetBytes: 50 })
      .status,
    414,
  );
  assertEquals(
    parseOne(`GET /${"a".repeat(49)} HTTP/1.1\r\nHost: h\r\n\r\n`, { maxTargetBytes: 50 }).target
      .length,
    50,
  );
  for (const host of ["a b", "a/b", "[zz]", "h:8x", "a@b", "[::1", "h:"]) {
    const status = host === "h:" ? null : 400;
    const out = run(bytes(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
    assertEquals(out.error?.status ?? null, status, host);
  }
  for (const host of ["example.com", "127.0.0.1:8080", "[::1]:80", "xn--d1a.example", ""]) {
    assertEquals(parseOne(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`).headers[0]![1], host);
  }
  const parser = new HttpParser({ maxTargetBytes: 10 });
  parser.feed(bytes(`HEAD /${"x".repeat(20)} HTTP/1.1\r\nHost: h\r\n\r\n`));
  const error = assertThrows(() => parser.next(), HttpParseError);
  assertEquals([error.status, error.method], [414, "HEAD"]);
});

Deno.test("HttpParser: chunk extensions follow RFC 9112 §7.1.1", () => {
  const chunked = (line: string) =>
    `POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${line}\r\nhello\r\n0\r\n\r\n`;
  for (
    const ok of ["5", "5;a", "5;a=b", "5 ;a=b", "5; a = b", '5;a="q\\"x"', "5;a;b=c", '5;a=""']
  ) {
    assertEquals(parseOne(chunked(ok)).body, "hello", ok);
  }
  for (const bad of ["5;", "5 ", "5;a=", '5;a="open', "5;=b", "5;a b", "5 x", "5;a=b;"]) {
    assertEquals(parseError(chunked(bad)).status, 400, bad);
  }
});

Deno.test("HttpParser: the repeated-head memo is opt-in and returns the same request object", () => {
  const wrk = "GET /memo HTTP/1.1\r\nHost: h\r\n\r\n";
  const on = new HttpParser({ memo: true });
  on.feed(bytes(wrk + wrk + wrk));
  const a = on.next()!, b = on.next()!, c = on.next()!;
  assertStrictEquals(b, c);
  assertEquals(plain(a), plain(c));
  const off = new HttpParser();
  off.feed(bytes(wrk + wrk));
  const d = off.next()!, e = off.next()!;
  assert(d !== e);
});

// ---------------------------------------------------------------------------
// Limits and request-line edges (each outcome also checked byte by byte and
// through the streaming API: the status never depends on how bytes arrive)

/** `run` whole, byte by byte and streamed: all three must agree; returns the outcome. */
function everySplit(text: string, options?: HttpParserOptions): Outcome {
  const data = bytes(text);
  const whole = run(data, [], options);
  const byByte = Array.from({ length: data.length }, (_, i) => i);
  assertEquals(run(data, byByte, options), whole, `byte by byte: ${JSON.stringify(text)}`);
  assertEquals(runStreaming(data, byByte, options), whole, `streamed: ${JSON.stringify(text)}`);
  return whole;
}

Deno.test("HttpParser: more than maxHeaderCount fields (default 100) is a 431, however they arrive", () => {
  const head = (n: number) =>
    "GET / HTTP/1.1\r\nHost: h\r\n" +
    Array.from({ length: n - 1 }, (_, i) => `x${i}: ${i}\r\n`).join("") + "\r\n";
  assertEquals(DEFAULT_MAX_HEADER_COUNT, 100);
  assertEquals(everySplit(head(100)).requests[0]?.headers.length, 100);
  const over = everySplit(head(101));
  assertEquals(over.error, { status: 431, reason: "more than 100 header fields" });
  assertEquals(over.requests, []);
  // Well under maxHeaderBytes: the count alone refuses it (the attack is many tiny fields).
  assert(head(101).length < DEFAULT_MAX_HEADER_BYTES / 10);
  assertEquals(everySplit(head(5), { maxHeaderCount: 5 }).error, null);
  assertEquals(everySplit(head(6), { maxHeaderCount: 5 }).error?.status, 431);
  // The memo does not let a repeated head skip the count.
  const memo = run(bytes(head(3) + head(3)), [], { maxHeaderCount: 2, memo: true });
  assertEquals([memo.requests.length, memo.error?.status], [0, 431]);
});

Deno.test("HttpParser: an over-long method is a 501, never a 414 or 431", () => {
  const method = (n: number) => "M".repeat(n);
  // 32 bytes pass (UPDATEREDIRECTREF has 17); 33 do not.
  assertEquals(MAX_METHOD_BYTES, 32);
  assertEquals(
    everySplit(`${method(32)} / HTTP/1.1\r\nHost: h\r\n\r\n`).requests[0]?.method,
    method(32),
  );
  for (
    const text of [
      `${method(33)} / HTTP/1.1\r\nHost: h\r\n\r\n`,
      `${method(20_000)} / HTTP/1.1\r\nHost: h\r\n\r\n`, // longer than maxHeaderBytes
      `${method(20_000)}`, // no end of line at all
      `${method(40)} /${"a".repeat(9000)} HTTP/1.1\r\nHost: h\r\n\r\n`, // and a long target
      `\r\n${method(40)}`,
    ]
  ) {
    const out = run(bytes(text));
    assertEquals(out.error?.status, 501, text.slice(0, 60));
    assertMatch(out.error!.reason, /method is longer than 32 bytes/);
  }
  assertEquals(everySplit(`${method(33)} / HTTP/1.1\r\nHost: h\r\n\r\n`).error?.status, 501);
  // A long target behind a short method is still a 414.
  assertEquals(run(bytes(`GET /${"a".repeat(20_000)} HTTP/1.1\r\n\r\n`)).error?.status, 414);
});

Deno.test("HttpParser: a fragment in the target is a 400 (RFC 9112 §3.2)", () => {
  for (const target of ["/#x", "/#", "/a?b#c", "http://h/p#f"]) {
    const out = everySplit(`GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`);
    assertEquals(out.error?.status, 400, target);
    assertMatch(out.error!.reason, /fragment/, target);
    assertEquals(out.requests, []);
  }
  // "%23" is an encoded "#", part of the path: fine.
  assertEquals(parseOne("GET /a%23b HTTP/1.1\r\nHost: h\r\n\r\n").target, "/a%23b");
});

Deno.test("HttpParser: asterisk-form only for OPTIONS (RFC 9110 §9.3.7); authority-form only for CONNECT", () => {
  const options = everySplit("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  assertEquals(options.requests.map((r) => [r.method, r.target]), [["OPTIONS", "*"]]);
  for (const method of ["GET", "POST", "HEAD", "CONNECT"]) {
    const out = everySplit(`${method} * HTTP/1.1\r\nHost: h\r\n\r\n`);
    assertEquals(out.error?.status, 400, method);
  }
  // "*" is the whole target, not a prefix.
  assertEquals(everySplit("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n").error?.status, 400);
  assertEquals(
    parseOne("CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n").target,
    "example.com:443",
  );
  assertEquals(parseOne("CONNECT [::1]:8443 HTTP/1.1\r\nHost: h\r\n\r\n").target, "[::1]:8443");
  for (const target of ["example.com", "example.com:", ":443", "a b:1", "http://h:1/"]) {
    assertEquals(
      run(bytes(`CONNECT ${target} HTTP/1.1\r\nHost: h\r\n\r\n`)).error?.status,
      400,
      `CONNECT ${target}`,
    );
  }
  // authority-form with any other method is a 400.
  assertEquals(everySplit("GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n").error?.status, 400);
});

Deno.test("HttpParser: absolute-form targets must be http or https URIs with an authority", () => {
  for (const target of ["http://h/x", "https://h:8443/", "HTTP://H/", "HtTpS://h?q"]) {
    assertEquals(
      everySplit(`GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`).requests[0]?.target,
      target,
    );
  }
  for (
    const target of [
      "file:///etc/passwd",
      "data:text/plain,x",
      "javascript:alert(1)",
      "ftp://h/",
      "ws://h/",
      "http:/x",
      "http:x",
      "https:",
      "1http://h/",
      "index.html",
      "?q",
    ]
  ) {
    const out = everySplit(`GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`);
    assertEquals(out.error?.status, 400, target);
    assertEquals(out.requests, [], target);
  }
});

Deno.test("HttpParser: an empty chunk-size line is a 400, and a request smuggled behind it never parses", () => {
  const smuggled = "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
  const post = "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (
    const text of [
      post + "\r\n" + smuggled, // the chunk-size line is empty
      post + "3\r\nabc\r\n\r\n" + smuggled, // after a chunk: the next size line is empty
      post + "3\r\nabc\r\n\r\n0\r\n\r\n" + smuggled,
      post + " \r\n0\r\n\r\n" + smuggled, // whitespace only
      post + ";ext\r\n0\r\n\r\n" + smuggled, // an extension without a size
    ]
  ) {
    const out = everySplit(text);
    assertEquals(out.error?.status, 400, JSON.stringify(text));
    assertMatch(out.error!.reason, /invalid chunk size/);
    assertEquals(out.requests, [], JSON.stringify(text));
  }
  // The same bytes with a size parse as one request, then the next.
  const ok = everySplit(post + "3\r\nabc\r\n0\r\n\r\n" + smuggled);
  assertEquals(ok.requests.map((r) => [r.target, r.body]), [["/a", "abc"], ["/smuggled", ""]]);
});

Deno.test("HttpParser: a request line over maxHeaderBytes is a 414 when its target is too long, else a 431, however it arrives", () => {
  const options = { maxHeaderBytes: 64, maxTargetBytes: 40 };
  // A target of 41+ bytes within the first 65 bytes of the line: the target is what is long.
  assertEquals(everySplit(`GET /${"t".repeat(70)} HTTP/1.1\r\n\r\n`, options).error?.status, 414);
  // maxTargetBytes above maxHeaderBytes: the line is too long before the target is.
  const wide = { maxHeaderBytes: 64, maxTargetBytes: 100 };
  assertEquals(everySplit(`GET /${"t".repeat(70)} HTTP/1.1\r\n\r\n`, wide).error?.status, 431);
  assertEquals(everySplit(`GET /${"t".repeat(120)} HTTP/1.1\r\n\r\n`, wide).error?.status, 431);
  // Defaults: 16 KiB of head, 8 KiB of target.
  assertEquals(everySplit(`GET /${"t".repeat(20_000)} HTTP/1.1\r\n\r\n`).error?.status, 414);
});

/**
 * How many library files one keep-alive `serve()` request runs code in,
 * from epoll to the wire. The goal is a path a reader can follow through a
 * handful of files, one per handle type (libuv's `stream.c`, mio's
 * `poll.rs`): the reactor's loop, its poller, the connection, the HTTP
 * connection and exchange, the parser, the serializer, the raw calls.
 *
 * V8's precise coverage counts, per function, the calls made between two
 * readings: after 200 warm-up requests on one connection the counts are
 * reset, one more request is sent and answered, and every library file with
 * a function that ran is listed. A split of a file on the path (or a new
 * module the path starts to call) raises the count over the bound.
 *
 * @module
 */
import { assert } from "@std/assert";
import { Session } from "node:inspector/promises";
import { serve } from "../../http/mod.ts";

/** The most library files one keep-alive request may run code in. */
const MAX_FILES = 12;

/** The repository root; library files are those under it outside these folders. */
const ROOT = new URL("../../", import.meta.url).href;
const NOT_LIBRARY = ["tests/", "bench/", "examples/"];

const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");

interface Coverage {
  result: { url: string; functions: { functionName: string; ranges: { count: number }[] }[] }[];
}

/** Read one whole response ("hi", 2 bytes of body) from `conn`; its text. */
async function readResponse(conn: Deno.Conn, buf: Uint8Array): Promise<string> {
  let text = "";
  while (!text.endsWith("\r\n\r\nhi")) {
    const n = await conn.read(buf);
    if (n === null) {
      throw new Error(`the server closed the connection after ${JSON.stringify(text)}`);
    }
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

/** The library files with a function that ran since the last reading, and one function of each. */
function filesRun(coverage: Coverage): Map<string, string> {
  const files = new Map<string, string>();
  for (const script of coverage.result) {
    if (!script.url.startsWith(ROOT)) continue;
    const path = script.url.slice(ROOT.length);
    if (NOT_LIBRARY.some((dir) => path.startsWith(dir))) continue;
    const ran = script.functions.filter((f) => (f.ranges[0]?.count ?? 0) > 0);
    if (ran.length === 0) continue;
    files.set(path, ran.find((f) => f.functionName !== "")?.functionName ?? "(anonymous)");
  }
  return files;
}

Deno.test("one keep-alive serve() request runs code in at most 12 library files", async () => {
  const session = new Session();
  session.connect();
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hi"));
  const port = (server.addr as Deno.NetAddr).port;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // A server that stops answering must not hang the test: the read fails instead.
  const guard = setTimeout(() => conn.close(), 60_000);
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.startPreciseCoverage", { callCount: true, detailed: false });
    const buf = new Uint8Array(4096);
    for (let i = 0; i < 200; i++) {
      await conn.write(REQUEST);
      await readResponse(conn, buf);
    }
    await session.post("Profiler.takePreciseCoverage"); // the counts start again from 0
    await conn.write(REQUEST);
    const response = await readResponse(conn, buf);
    // What the request started after its response went out (corked flushes,
    // the exchange's end) runs within a few turns of the loop.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const files = filesRun(await session.post("Profiler.takePreciseCoverage") as Coverage);
    await session.post("Profiler.stopPreciseCoverage");
    await session.post("Profiler.disable");

    assert(response.startsWith("HTTP/1.1 200 "), response);
    const list = [...files].map(([file, fn]) => `${file} (${fn})`).sort().join("\n  ");
    // The reading covers the whole path: a coverage that saw nothing would pass the bound.
    for (const file of ["ffi/syscalls.ts", "reactor/reactor.ts", "http/parser/parser.ts"]) {
      assert(files.has(file), `${file} did not run; files seen:\n  ${list}`);
    }
    assert(
      files.size <= MAX_FILES,
      `one keep-alive request ran code in ${files.size} library files (at most ${MAX_FILES}):\n  ${list}`,
    );
  } finally {
    clearTimeout(guard);
    try {
      conn.close();
    } catch { /* closed by the guard */ }
    session.disconnect();
    await server.shutdown();
  }
});

/**
 * A child-process server for tests that measure or stress the server from
 * outside (RSS, crashes): on 127.0.0.1, an ephemeral port, ffinet's `serve()`
 * (or `Deno.serve` with `FFINET_HTTP_TEST_SERVER=deno`). Prints
 * `listening on 127.0.0.1:PORT`.
 *
 *     _serve_child.ts [hello|fuzz|fuzz-raw]
 *
 * `hello`: "Hello, World!". `fuzz`: echoes the request's `x-id` (when it looks
 * like one the fuzzer sent) and method in headers, reads the body, and
 * answers `/canary` with `canary <id>`. `fuzz-raw`: the same on the low-level
 * `serveRaw()`.
 *
 * @module
 */
import { serve, serveRaw } from "../../http/mod.ts";

const mode = Deno.args[0] ?? "hello";
const hello = () => new Response("Hello, World!", { headers: { "content-type": "text/plain" } });

async function fuzz(req: Request): Promise<Response> {
  const raw = req.headers.get("x-id") ?? "";
  const id = /^[mc][0-9]+$|^end$/.test(raw) ? raw : "?";
  let size = 0;
  try {
    size = (await req.arrayBuffer()).byteLength;
  } catch {
    size = -1;
  }
  let path = "?";
  try {
    path = new URL(req.url).pathname;
  } catch { /* "*" and the like */ }
  const body = path === "/canary" ? `canary ${id}` : `ok ${id} ${size}`;
  return new Response(body, { headers: { "x-id": id, "x-method": req.method } });
}

const handler = mode === "fuzz" ? fuzz : hello;
const onListen = (addr: { transport: string; hostname?: string; port?: number }) =>
  console.log(`listening on ${addr.hostname}:${addr.port}`);
if (mode === "fuzz-raw") {
  serveRaw({ hostname: "127.0.0.1", port: 0, onListen }, (req, res) => {
    const raw = req.headers.get("x-id") ?? "";
    const id = /^[mc][0-9]+$|^end$/.test(raw) ? raw : "?";
    const path = req.target.split("?")[0];
    const body = path === "/canary" ? `canary ${id}` : `ok ${id} ${req.body.length}`;
    res.send(200, body, { headers: { "x-id": id, "x-method": req.method } });
  });
} else if (Deno.env.get("FFINET_HTTP_TEST_SERVER") === "deno") {
  Deno.serve({ hostname: "127.0.0.1", port: 0, onListen }, handler);
} else {
  serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen,
    onError: () => new Response("e", { status: 500 }),
  }, handler);
}

/**
 * Benchmark server for the body cases of `deno task bench --only bodies`:
 * the same handlers on ffinet's `serve()` or, with `--deno`, on `Deno.serve`.
 *
 * - `POST /upload`: reads `req.body` to the end, answers the byte count;
 * - `GET /chunks?n=N&size=S`: a stream of N chunks of S bytes (one
 *   `enqueue` per `pull`), sent chunked;
 * - `GET /file?path=P`: the file at P as `(await Deno.open(P)).readable`.
 *
 *     deno run --allow-ffi --allow-env --allow-read bench/http_bodies.ts --port 8000
 *       [--busy-wait-ms MS] [--slice-ms MS]
 *     deno run --allow-net --allow-read bench/http_bodies.ts --port 8000 --deno
 *
 * Prints `listening on HOST:PORT` once it accepts connections.
 *
 * @module
 */
import { parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage: "http_bodies.ts [--host H] [--port P] [--deno] [--busy-wait-ms MS] [--slice-ms MS]",
  defaults: { host: "127.0.0.1", port: 8000 },
  booleans: ["deno"],
  strings: { "busy-wait-ms": "", "slice-ms": "" },
});
const reactor: { busyWaitMs?: number; sliceMs?: number } = {};
if (args.strings["busy-wait-ms"] !== "") reactor.busyWaitMs = Number(args.strings["busy-wait-ms"]);
if (args.strings["slice-ms"] !== "") reactor.sliceMs = Number(args.strings["slice-ms"]);

async function handler(req: Request): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/upload") {
    let n = 0;
    for await (const chunk of req.body!) n += chunk.byteLength;
    return new Response(String(n));
  }
  if (url.pathname === "/chunks") {
    const n = Number(url.searchParams.get("n") ?? 100_000);
    const chunk = new Uint8Array(Number(url.searchParams.get("size") ?? 1024)).fill(97);
    let sent = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent++ < n) c.enqueue(chunk);
          else c.close();
        },
      }),
    );
  }
  if (url.pathname === "/file") {
    const file = await Deno.open(url.searchParams.get("path")!);
    return new Response(file.readable);
  }
  return new Response("not found", { status: 404 });
}

const onListen = (addr: { hostname: string; port: number }) =>
  console.log(`listening on ${addr.hostname}:${addr.port}`);
if (args.booleans.has("deno")) {
  Deno.serve({ hostname: args.host, port: args.port, onListen }, handler);
} else {
  // Imported only here: Deno.serve's run loads no ffinet code (and needs no --allow-ffi).
  const { serve } = await import("../http/serve.ts");
  serve({
    hostname: args.host,
    port: args.port,
    reactor,
    onListen: (a) => a.transport === "tcp" && onListen(a),
  }, handler);
}

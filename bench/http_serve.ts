/**
 * Benchmark server: ffinet's `serve()` with the same handler as
 * `../shared/bench/deno_http.ts` (`"Hello, World!"`, `text/plain`), or with
 * `--json` the JSON handler `Response.json({ message: "Hello, World!" })`.
 * `--workers N` serves on N Workers (SO_REUSEPORT) for the scaling run.
 *
 *     deno run --allow-ffi --allow-env --allow-read bench/http_serve.ts --port 8000 [--json] [--workers N]
 *
 * Prints `listening on HOST:PORT` once it accepts connections.
 *
 * @module
 */
import { serve } from "../http/serve.ts";
import { integerFlag, parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage:
    "http_serve.ts [--host H] [--port P] [--json] [--workers N] [--busy-wait-ms MS] [--slice-ms MS]",
  defaults: { host: "127.0.0.1", port: 8000 },
  booleans: ["json"],
  strings: { workers: "1", "busy-wait-ms": "", "slice-ms": "" },
});
const reactor: { busyWaitMs?: number; sliceMs?: number } = {};
if (args.strings["busy-wait-ms"] !== "") reactor.busyWaitMs = Number(args.strings["busy-wait-ms"]);
if (args.strings["slice-ms"] !== "") reactor.sliceMs = Number(args.strings["slice-ms"]);
const workers = integerFlag(args, "workers", 1, "a number of Workers");
const handler = args.booleans.has("json")
  ? () => Response.json({ message: "Hello, World!" })
  : () => new Response("Hello, World!", { headers: { "content-type": "text/plain" } });
let listening = 0;
serve({
  hostname: args.host,
  port: args.port,
  reactor,
  ...(workers > 1 ? { workers, reusePort: true } : {}),
  onListen(addr) {
    // With Workers each one reports; print once.
    if (addr.transport === "tcp" && listening++ === 0) {
      console.log(`listening on ${addr.hostname}:${addr.port}`);
    }
  },
}, handler);

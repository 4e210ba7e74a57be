/**
 * Benchmark server: ffinet's `serve({ cert, key })` with the same handler
 * as `../shared/bench/deno_http.ts` (`"Hello, World!"`, `text/plain`), over
 * TLS. For `../shared/bench/compare.sh tls`:
 *
 *     deno run -A bench/https_serve.ts --port {port} --cert {cert} --key {key} [--workers N]
 *
 * Prints `listening on HOST:PORT` once it accepts connections.
 *
 * @module
 */
import { serve } from "../http/serve.ts";
import { integerFlag, parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage: "https_serve.ts [--host H] [--port P] --cert FILE --key FILE [--workers N]",
  defaults: { host: "127.0.0.1", port: 8443 },
  strings: { cert: "", key: "", workers: "1" },
});
const certPath = args.strings.cert ?? "";
const keyPath = args.strings.key ?? "";
if (certPath === "" || keyPath === "") {
  console.error("https_serve.ts: --cert and --key are required");
  Deno.exit(2);
}
const workers = integerFlag(args, "workers", 1, "a number of Workers");
let listening = 0;
serve({
  hostname: args.host,
  port: args.port,
  cert: Deno.readTextFileSync(certPath),
  key: Deno.readTextFileSync(keyPath),
  ...(workers > 1 ? { workers } : {}),
  onListen(addr) {
    if (addr.transport === "tcp" && listening++ === 0) {
      console.log(`listening on ${addr.hostname}:${addr.port}`);
    }
  },
}, () => new Response("Hello, World!", { headers: { "content-type": "text/plain" } }));

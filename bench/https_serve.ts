/**
 * Benchmark server: ffinet's `serve({ cert, key })` with the same handler
 * as `../shared/bench/deno_http.ts` (`"Hello, World!"`, `text/plain`), over
 * TLS. For `../shared/bench/compare.sh tls`:
 *
 *     deno run -A bench/https_serve.ts --port {port} --cert {cert} --key {key} [--workers N]
 *       [--record-layer ffinet|openssl]
 *
 * `--record-layer ffinet` moves TLS 1.3 connections to ffinet's own record
 * layer after the handshake (off in the library by default); the default,
 * `openssl`, keeps OpenSSL's: the two compared on the same build.
 *
 * Prints `listening on HOST:PORT` once it accepts connections.
 *
 * @module
 */
import { serve } from "../http/serve.ts";
import { integerFlag, parseArgs } from "../examples/_args.ts";
import { recordLayerControl } from "../tls/_record.ts";

const args = parseArgs(Deno.args, {
  usage: "https_serve.ts [--host H] [--port P] --cert FILE --key FILE [--workers N]",
  defaults: { host: "127.0.0.1", port: 8443 },
  strings: { cert: "", key: "", workers: "1", "record-layer": "openssl" },
});
const recordLayer = args.strings["record-layer"];
if (recordLayer !== "ffinet" && recordLayer !== "openssl") {
  console.error("https_serve.ts: --record-layer is ffinet or openssl");
  Deno.exit(2);
}
recordLayerControl.userspace = recordLayer === "ffinet";
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

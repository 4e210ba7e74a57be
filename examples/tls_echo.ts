/**
 * A TLS echo server on ffinet's reactor: every byte a client sends over TLS
 * comes back, with the echo server's backpressure (a client that stops
 * reading is no longer read from until its queue drains). Each handshake's
 * protocol, cipher, ALPN and SNI are logged.
 *
 * Run it with exactly the permissions it needs (`--allow-read` for the PEM
 * files only):
 *
 *     deno run --allow-ffi --allow-read examples/tls_echo.ts --port 9443 --cert cert.pem --key key.pem
 *
 * and talk to it with `openssl s_client -connect 127.0.0.1:9443 -alpn echo`.
 *
 * @module
 */
import { Reactor } from "../reactor/mod.ts";
import { TlsListener } from "../tls/mod.ts";
import { parseArgs } from "./_args.ts";
import { stopSignal } from "./_signals.ts";

const args = parseArgs(Deno.args, {
  usage: "tls_echo.ts [--host H] [--port P] --cert FILE --key FILE [--passphrase TEXT] [--quiet]",
  defaults: { host: "127.0.0.1", port: 9443 },
  booleans: ["quiet"],
  strings: { cert: "", key: "", passphrase: "" },
});
if (args.strings.cert === "" || args.strings.key === "") {
  console.error("tls_echo.ts: --cert and --key are required (PEM files)");
  Deno.exit(2);
}
const quiet = args.booleans.has("quiet");

const reactor = new Reactor();
const server = TlsListener.listen(reactor, {
  host: args.host,
  port: args.port,
  tls: {
    cert: Deno.readTextFileSync(args.strings.cert!),
    key: Deno.readTextFileSync(args.strings.key!),
    ...(args.strings.passphrase ? { passphrase: args.strings.passphrase } : {}),
    alpnProtocols: ["echo", "http/1.1"],
  },
}, (conn) => {
  const i = conn.info!;
  if (!quiet) {
    console.log(`${i.protocol} ${i.cipher} alpn=${i.alpnProtocol} sni=${i.serverName}`);
  }
  conn.onData = (data) => {
    if (!conn.write(data)) conn.pause();
  };
  conn.onDrain = () => conn.resume();
});
const addr = server.address();
console.log(`listening on ${args.host}:${"port" in addr ? addr.port : args.port}`);
const running = reactor.run();
await stopSignal();
reactor.stop();
await running;
server.close();
reactor.close();

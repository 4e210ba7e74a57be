/**
 * A test and benchmark fixture: "Hello, World!" over HTTPS straight on a
 * `TlsConnection`, the smallest HTTP/1.1 responder (keep-alive, pipelining,
 * `Connection: close`) for measuring the TLS layer on its own, without
 * ffinet's HTTP server. It reads request heads only and ignores bodies.
 *
 *     deno run --allow-ffi --allow-read tests/tls/_https_hello.ts --port 8443 --cert cert.pem --key key.pem
 *
 * Side by side with Deno.serve, nginx, Bun and Node:
 *
 *     ../shared/bench/compare.sh tls -r 3 -- deno run --allow-ffi --allow-read tests/tls/_https_hello.ts --port {port} --cert {cert} --key {key}
 *
 * @module
 */
import { Reactor } from "../../reactor/mod.ts";
import { type TlsConnection, TlsListener } from "../../tls/mod.ts";
import { parseArgs } from "../../examples/_args.ts";
import { stopSignal } from "../../examples/_signals.ts";

const args = parseArgs(Deno.args, {
  usage: "_https_hello.ts [--host H] [--port P] --cert FILE --key FILE",
  defaults: { host: "127.0.0.1", port: 8443 },
  strings: { cert: "", key: "" },
});
if (args.strings.cert === "" || args.strings.key === "") {
  console.error("_https_hello.ts: --cert and --key are required (PEM files)");
  Deno.exit(2);
}

/** Request heads larger than this close the connection. */
const MAX_HEAD = 16 * 1024;
const body = "Hello, World!";
const keepAlive = new TextEncoder().encode(
  `HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
);
const closing = new TextEncoder().encode(
  `HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
);
const decoder = new TextDecoder();

function serve(conn: TlsConnection): void {
  let carry = "";
  conn.onData = (data) => {
    let text = carry + decoder.decode(data);
    for (;;) {
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) break;
      const head = text.slice(0, end);
      text = text.slice(end + 4);
      if (/\r\nconnection:\s*close/i.test(head)) {
        conn.write(closing);
        conn.close();
        return;
      }
      conn.write(keepAlive);
    }
    if (text.length > MAX_HEAD) conn.close();
    carry = text;
  };
}

const reactor = new Reactor();
const server = TlsListener.listen(reactor, {
  host: args.host,
  port: args.port,
  tls: {
    cert: Deno.readTextFileSync(args.strings.cert!),
    key: Deno.readTextFileSync(args.strings.key!),
    alpnProtocols: ["http/1.1"],
  },
}, serve);
const addr = server.address();
console.log(`listening on ${args.host}:${"port" in addr ? addr.port : args.port}`);
const running = reactor.run();
await stopSignal();
reactor.stop();
await running;
server.close();
reactor.close();

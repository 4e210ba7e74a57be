/**
 * A UDP echo server: every datagram goes back to its sender. With
 * `--reuse-port`, run several (processes or Workers) on one port and the
 * kernel spreads the datagrams among them. Replies the kernel cannot take
 * at once are dropped and counted (UDP may lose datagrams; the server never
 * blocks).
 *
 * Run it with exactly the permissions it needs:
 *
 *     deno run --allow-ffi examples/udp_echo.ts --host 127.0.0.1 --port 9003 --reuse-port
 *     # then: nc -u 127.0.0.1 9003
 *
 * @module
 */
import { DatagramSocket, formatAddress, Reactor } from "../mod.ts";
import { parseArgs } from "./_args.ts";

const args = parseArgs(Deno.args, {
  usage: "udp_echo.ts [--host H] [--port P] [--reuse-port] [--verbose]",
  defaults: { host: "127.0.0.1", port: 9003 },
  booleans: ["reuse-port", "verbose"],
});
const verbose = args.booleans.has("verbose");

const reactor = new Reactor();
const socket = DatagramSocket.open(reactor, {
  bind: { host: args.host, port: args.port },
  reusePort: args.booleans.has("reuse-port"),
});
socket.onMessage = (data, from) => {
  if (verbose) console.log(`${data.byteLength} B from ${formatAddress(from)}`);
  try {
    socket.send(data, from);
  } catch (e) {
    console.error((e as Error).message); // e.g. EMSGSIZE; keep serving
  }
};
socket.onError = (error) => console.error((error as Error).message);
const addr = socket.address();
console.log(`listening on ${args.host}:${"port" in addr ? addr.port : args.port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  reactor.addSignalListener(sig, () => reactor.stop());
}
await reactor.run();
const { received, sent, dropped } = socket.stats;
socket.close();
reactor.close();
console.log(`bye: ${received} received, ${sent} echoed, ${dropped} dropped`);

/**
 * The seeds' epoll echo server, on ffinet's public API: every byte a client
 * sends comes back. Backpressure: when a client stops reading, the server
 * stops reading from it until its queue drains.
 *
 * Run it with exactly the permissions it needs:
 *
 *     deno run --allow-ffi examples/echo_server.ts --host 127.0.0.1 --port 9000
 *
 * @module
 */
import { Listener, Reactor } from "../mod.ts";
import { integerFlag, parseArgs } from "./_args.ts";

const args = parseArgs(Deno.args, {
  usage: "echo_server.ts [--host H] [--port P] [--reuse-port] [--busy-wait-ms N] [--slice-ms N]",
  defaults: { host: "127.0.0.1", port: 9000 },
  booleans: ["reuse-port"],
  strings: { "busy-wait-ms": "10", "slice-ms": "10" },
});
const busyWaitMs = integerFlag(args, "busy-wait-ms", 0, "a whole number of milliseconds");
const sliceMs = integerFlag(args, "slice-ms", 1, "a whole number of milliseconds");

// A dedicated server: the reactor may keep this thread for up to 10 ms while
// traffic flows (Deno's own timers and I/O wait that long at most).
const reactor = new Reactor({ busyWaitMs, sliceMs });
const listener = Listener.listen(
  reactor,
  { host: args.host, port: args.port, reusePort: args.booleans.has("reuse-port") },
  (conn) => {
    conn.onData = (data) => {
      if (!conn.write(data)) conn.pause();
    };
    conn.onDrain = () => conn.resume();
  },
);
const addr = listener.address();
console.log(`listening on ${args.host}:${"port" in addr ? addr.port : args.port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  reactor.addSignalListener(sig, () => reactor.stop());
}
await reactor.run();
listener.close();
reactor.close();

/**
 * A line-based chat server: every line a client sends goes to every other
 * client, prefixed with the sender's address. A slow reader never holds the
 * others back: the server never waits for a recipient. A recipient whose
 * output queue passes `--max-queue` bytes (it is not reading) is
 * disconnected, and lines longer than `--max-line` bytes disconnect their
 * sender.
 *
 * Run it with exactly the permissions it needs:
 *
 *     deno run --allow-ffi examples/chat_server.ts --host 127.0.0.1 --port 9002
 *     # then, in several terminals: nc 127.0.0.1 9002
 *
 * @module
 */
import { type Connection, Listener, Reactor } from "../mod.ts";
import { parseArgs } from "./_args.ts";
import { peerName } from "./_peer.ts";

const args = parseArgs(Deno.args, {
  usage: "chat_server.ts [--host H] [--port P] [--max-queue BYTES] [--max-line BYTES]",
  defaults: { host: "127.0.0.1", port: 9002 },
  strings: { "max-queue": String(256 * 1024), "max-line": "4096" },
});
const maxQueue = Number(args.strings["max-queue"]);
const maxLine = Number(args.strings["max-line"]);
if (!(maxQueue > 0) || !(maxLine > 0)) {
  console.error("--max-queue and --max-line must be positive numbers of bytes");
  Deno.exit(2);
}

interface Client {
  name: string;
  /** The unfinished line received so far. */
  partial: Uint8Array;
}

const encoder = new TextEncoder();
const reactor = new Reactor();
const clients = new Map<Connection, Client>();
let dropped = 0;

/** Send `bytes` to everyone but `from`; disconnect whoever has stopped reading. */
function broadcast(bytes: Uint8Array, from?: Connection): void {
  for (const conn of clients.keys()) {
    if (conn === from || conn.state !== "open") continue;
    if (conn.writableLength + bytes.byteLength > maxQueue) {
      dropped++;
      console.log(
        `${clients.get(conn)!.name} is not reading (${conn.writableLength} B queued): dropped`,
      );
      conn.abort();
      continue;
    }
    conn.write(bytes); // past its high-water mark it just queues, up to maxQueue
  }
}

function tooLong(conn: Connection): void {
  conn.write(encoder.encode(`* lines are limited to ${maxLine} bytes; bye\n`));
  conn.close();
}

function onLineData(conn: Connection, client: Client, data: Uint8Array): void {
  let start = 0;
  for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) {
    const part = data.subarray(start, nl + 1);
    const line = new Uint8Array(client.partial.byteLength + part.byteLength);
    line.set(client.partial);
    line.set(part, client.partial.byteLength);
    client.partial = new Uint8Array(0);
    start = nl + 1;
    if (line.byteLength > maxLine) {
      tooLong(conn);
      return;
    }
    const prefix = encoder.encode(`[${client.name}] `);
    const message = new Uint8Array(prefix.byteLength + line.byteLength);
    message.set(prefix);
    message.set(line, prefix.byteLength);
    broadcast(message, conn);
  }
  const rest = data.subarray(start);
  if (client.partial.byteLength + rest.byteLength > maxLine) {
    tooLong(conn);
    return;
  }
  if (rest.byteLength > 0) {
    const joined = new Uint8Array(client.partial.byteLength + rest.byteLength);
    joined.set(client.partial);
    joined.set(rest, client.partial.byteLength);
    client.partial = joined;
  }
}

const listener = Listener.listen(
  reactor,
  {
    host: args.host,
    port: args.port,
    connection: { highWaterMark: Math.min(64 * 1024, maxQueue) },
  },
  (conn) => {
    const client: Client = {
      name: peerName(conn),
      partial: new Uint8Array(0),
    };
    clients.set(conn, client);
    conn.write(encoder.encode(`* welcome ${client.name}; ${clients.size} online\n`));
    broadcast(encoder.encode(`* ${client.name} joined\n`), conn);
    conn.onData = (data) => onLineData(conn, client, data);
    conn.onClose = () => {
      clients.delete(conn);
      broadcast(encoder.encode(`* ${client.name} left\n`));
    };
  },
);

const addr = listener.address();
console.log(`listening on ${args.host}:${"port" in addr ? addr.port : args.port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  reactor.addSignalListener(sig, () => reactor.stop());
}
await reactor.run();
listener.close();
for (const conn of clients.keys()) conn.abort();
reactor.close();
console.log(`bye (${dropped} slow clients dropped)`);

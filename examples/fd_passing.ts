/**
 * Handing accepted connections to other processes (`SCM_RIGHTS`): the parent
 * accepts TCP connections and passes each accepted fd, round robin, over a
 * Unix socket to one of `--workers` child processes (this same script run
 * with `--child`). The child serves the connection (a greeting naming its
 * pid, then an echo) while the parent keeps nothing of it.
 *
 * Run it with exactly the permissions it needs (`--allow-run` starts the
 * children, `--allow-read` finds `deno` and probes the private socket file,
 * `--allow-write` makes and removes its private directory):
 *
 *     deno run --allow-ffi --allow-read --allow-write --allow-run examples/fd_passing.ts --port 9004
 *     # then: nc 127.0.0.1 9004   →  "served by pid 12345"
 *
 * @module
 */
import { connect, Connection, Listener, Reactor, Socket } from "../mod.ts";
import { integerFlag, parseArgs } from "./_args.ts";
import { peerName } from "./_peer.ts";

const args = parseArgs(Deno.args, {
  usage: "fd_passing.ts [--host H] [--port P] [--workers N] | --child --socket PATH",
  defaults: { host: "127.0.0.1", port: 9004 },
  booleans: ["child"],
  strings: { workers: "2", socket: "" },
});
const encoder = new TextEncoder();
const reactor = new Reactor();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  reactor.addSignalListener(sig, () => reactor.stop());
}

if (args.booleans.has("child")) {
  await child(args.strings.socket!);
} else {
  await parent();
}

/** A worker: receive fds from the parent and serve each as a connection. */
async function child(path: string): Promise<void> {
  const pid = Deno.pid;
  const conns = new Set<Connection>();
  const control = await connect(reactor, { path }, { receiveFds: 8 });
  control.onData = () => {}; // one marker byte per fd
  control.onFds = (fds) => {
    for (const fd of fds) {
      // The fd shares the parent's open file: already non-blocking.
      const conn = new Connection(reactor, new Socket(fd));
      conns.add(conn);
      const peer = peerName(conn);
      console.log(`pid ${pid} serves ${peer}`);
      conn.write(encoder.encode(`served by pid ${pid}\n`));
      conn.onData = (data) => {
        if (!conn.write(data)) conn.pause();
      };
      conn.onDrain = () => conn.resume();
      conn.onClose = () => conns.delete(conn);
    }
  };
  control.onClose = () => reactor.stop(); // the parent is gone
  await reactor.run();
  control.close();
  for (const conn of conns) conn.close();
  reactor.close();
}

/** The acceptor: spawn workers, accept, hand each fd over, keep nothing. */
async function parent(): Promise<void> {
  const count = integerFlag(args, "workers", 1, "a positive whole number");
  const dir = Deno.makeTempDirSync({ prefix: "ffinet-fd-passing-" });
  const path = `${dir}/workers.sock`;
  const workers: Connection[] = [];
  let ready!: () => void;
  const allReady = new Promise<void>((resolve) => ready = resolve);
  const control = Listener.listen(reactor, { path, mode: 0o600 }, (conn) => {
    workers.push(conn);
    conn.onClose = () => workers.splice(workers.indexOf(conn), 1);
    if (workers.length === count) ready();
  });
  const script = new URL(import.meta.url).pathname;
  const children = Array.from({ length: count }, () =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-ffi",
        "--allow-read",
        "--allow-write",
        script,
        "--child",
        "--socket",
        path,
      ],
      stdin: "null",
    }).spawn());
  const running = reactor.run();
  await Promise.race([allReady, running]);

  let next = 0;
  const listener = Listener.listen(reactor, { host: args.host, port: args.port }, (conn) => {
    const worker = workers[next++ % workers.length];
    try {
      if (worker === undefined) throw new Error("no worker is left");
      worker.sendFds([conn.fd], new Uint8Array([1]));
    } catch (e) {
      console.error(
        `Cannot hand over ${peerName(conn)}: ${(e as Error).message}`,
      );
    }
    conn.close(); // our copy only: the worker's copy keeps the connection open
  });
  const addr = listener.address();
  console.log(`listening on ${args.host}:${"port" in addr ? addr.port : args.port}`);
  await running;
  listener.close();
  for (const worker of [...workers]) worker.close();
  control.close();
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch { /* already gone */ }
  }
  await Promise.all(children.map((c) => c.status));
  reactor.close();
  Deno.removeSync(dir, { recursive: true });
}

/**
 * An echo server that runs out of file descriptors on purpose: it lowers its
 * own RLIMIT_NOFILE (soft) to `--limit` (default 64), then serves. Clients
 * past the limit are accepted and closed at once (the listener's EMFILE
 * trick) instead of making the server spin or stall; the connections it
 * holds keep being served, and new ones are taken as soon as fds free up.
 * The listener's counters are printed every second.
 *
 * Run it with exactly the permissions it needs (`--allow-run` starts the
 * hammering child, `--allow-read` finds `deno` for it):
 *
 *     deno run --allow-ffi --allow-read --allow-run examples/emfile.ts --port 9005 --clients 200
 *
 * `--clients N` starts a child process (this script with `--hammer`) that
 * holds N connections, pings on each every 200 ms, and reports how many are
 * served and how many were shed; `--seconds S` ends the run. Without it, hammer
 * the server yourself, e.g. with
 * `deno run --allow-net --allow-ffi examples/emfile.ts --hammer --port 9005 --clients 200`.
 *
 * @module
 */
import { Listener, Reactor } from "../mod.ts";
import { RLIMIT } from "../ffi/constants.ts";
import { listOpenFds } from "../ffi/fd.ts";
import { getrlimit, setrlimit } from "../ffi/process.ts";
import { integerFlag, parseArgs } from "./_args.ts";

const args = parseArgs(Deno.args, {
  usage: "emfile.ts [--host H] [--port P] [--limit N] [--clients N] [--seconds S] | " +
    "--hammer --port P --clients N [--seconds S]",
  defaults: { host: "127.0.0.1", port: 9005 },
  booleans: ["hammer"],
  strings: { limit: "64", clients: "0", seconds: "0" },
});
const wholeNumber = (name: string): number => integerFlag(args, name, 0, "a whole number");
const clients = wholeNumber("clients");
const seconds = wholeNumber("seconds");

if (args.booleans.has("hammer")) await hammer();
else await serve();

/** The server, at its fd limit. */
async function serve(): Promise<void> {
  const reactor = new Reactor();
  const listener = Listener.listen(reactor, { host: args.host, port: args.port }, (conn) => {
    conn.onData = (data) => {
      if (!conn.write(data)) conn.pause();
    };
    conn.onDrain = () => conn.resume();
  });
  const addr = listener.address();
  const port = "port" in addr ? addr.port : args.port;

  // A child hammering us must be started while fds are still to be had.
  const child = clients > 0
    ? new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-ffi",
        new URL(import.meta.url).pathname,
        "--hammer",
        "--port",
        String(port),
        "--clients",
        String(clients),
        "--seconds",
        String(seconds || 5),
      ],
      stdin: "null",
    }).spawn()
    : undefined;

  // New fds take the lowest free numbers below the soft limit.
  const saved = getrlimit(RLIMIT.NOFILE);
  const open = listOpenFds();
  let limit = wholeNumber("limit");
  let free = 0;
  for (let fd = 0; fd < limit; fd++) if (!open.has(fd)) free++;
  while (free < 4) if (!open.has(limit++)) free++; // leave room for a few connections
  setrlimit(RLIMIT.NOFILE, { soft: limit, hard: saved.hard });
  console.log(`RLIMIT_NOFILE soft limit ${limit}: ${free} fds free for connections`);
  console.log(`listening on ${args.host}:${port}`);

  let lastEvents = 0;
  reactor.setInterval(() => {
    const { accepted, shed, pauses } = listener.stats;
    const events = reactor.stats.events;
    console.log(
      `accepted ${accepted}, shed ${shed}, pauses ${pauses}, open connections ` +
        `${reactor.stats.registrations - 1}, reactor events/s ${events - lastEvents}`,
    );
    lastEvents = events;
  }, 1000);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    reactor.addSignalListener(sig, () => reactor.stop());
  }
  child?.status.then(() => reactor.stop());
  await reactor.run();
  setrlimit(RLIMIT.NOFILE, saved);
  listener.close();
  reactor.close();
  if (child !== undefined) {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  }
}

/** The client side: hold `--clients` connections and ping on each. */
async function hammer(): Promise<void> {
  const encoder = new TextEncoder();
  let served = 0;
  let shed = 0;
  let echoes = 0;
  const conns = new Set<Deno.TcpConn>();
  const handle = async (conn: Deno.TcpConn): Promise<void> => {
    const buf = new Uint8Array(64);
    let answered = false;
    try {
      for (;;) {
        await conn.write(encoder.encode("ping\n"));
        const n = await conn.read(buf);
        if (n === null) break;
        echoes++;
        if (!answered) {
          answered = true;
          served++;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    } catch { /* reset: treated as closed */ }
    if (!answered) shed++;
    conns.delete(conn);
    try {
      conn.close();
    } catch { /* closed */ }
  };
  const tasks: Promise<void>[] = [];
  for (let i = 0; i < clients; i++) {
    try {
      const conn = await Deno.connect({ hostname: args.host, port: args.port });
      conns.add(conn);
      tasks.push(handle(conn));
    } catch (e) {
      console.error(`connect: ${(e as Error).message}`);
      break;
    }
  }
  const report = setInterval(() => {
    console.log(`clients: ${conns.size} open, ${served} served, ${shed} shed, ${echoes} echoes`);
  }, 1000);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const conn of conns) conn.close();
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, stop);
  const timer = seconds > 0 ? setTimeout(stop, seconds * 1000) : undefined;
  await Promise.all(tasks);
  clearTimeout(timer);
  clearInterval(report);
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(sig, stop);
  console.log(`clients done: ${served} served, ${shed} shed, ${echoes} echoes`);
}

/**
 * An echo server on a Unix stream socket: a filesystem path (created with
 * `--mode`, removed on exit, a stale file from a dead server replaced), or
 * a Linux abstract name written `@name` (no file at all).
 *
 * Run it with exactly the permissions it needs (`--allow-read` to find a
 * stale socket file, `--allow-write` to replace it and to remove the socket
 * on exit; an `@name` needs neither):
 *
 *     deno run --allow-ffi --allow-read --allow-write examples/unix_echo.ts --path /tmp/echo.sock
 *     # then: nc -U /tmp/echo.sock   (or, with --path @ffinet-echo: socat - ABSTRACT-CONNECT:ffinet-echo)
 *
 * Without those permissions a file path is refused at once (exit 2): the
 * socket file could not be removed on exit, and the next run would fail
 * with EADDRINUSE.
 *
 * `--host`/`--port` are accepted like every example's, and unused here.
 *
 * @module
 */
import { formatAddress, Listener, Reactor } from "../mod.ts";
import { parseArgs } from "./_args.ts";

const args = parseArgs(Deno.args, {
  usage: "unix_echo.ts [--path PATH | --path @abstract-name] [--mode OCTAL]",
  strings: { path: "/tmp/ffinet-echo.sock", mode: "" },
});
const given = args.strings.path!;
const path = given.startsWith("@") ? `\0${given.slice(1)}` : given;
const modeText = args.strings.mode!;
if (modeText !== "" && !/^[0-7]{3,4}$/.test(modeText)) {
  console.error(`--mode ${modeText} is not an octal file mode such as 660`);
  Deno.exit(2);
}

if (!given.startsWith("@")) {
  const granted = (name: "read" | "write") =>
    Deno.permissions.querySync({ name, path: given }).state === "granted";
  if (!granted("read") || !granted("write")) {
    console.error(
      `--path ${given} needs --allow-read and --allow-write (to replace a stale socket file ` +
        "and remove the socket on exit); an abstract --path @name needs neither",
    );
    Deno.exit(2);
  }
}

const reactor = new Reactor();
const listener = Listener.listen(
  reactor,
  modeText === "" ? { path } : { path, mode: parseInt(modeText, 8) },
  (conn) => {
    conn.onData = (data) => {
      if (!conn.write(data)) conn.pause();
    };
    conn.onDrain = () => conn.resume();
  },
);
console.log(`listening on ${formatAddress(listener.address())}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  reactor.addSignalListener(sig, () => reactor.stop());
}
await reactor.run();
listener.close(); // removes the socket file
reactor.close();

/**
 * The suite-level fd balance: a representative sequence of everything that
 * opens fds (a reactor, TCP and Unix listeners, connections both ways, data
 * through them, datagram sockets, a syslog Logger, a pid file, fd passing,
 * a connect that fails, a busy reactor's yield fds) runs many times, and the
 * process ends with exactly the fds it started with: same numbers, same
 * targets. (Deno runs every test file in the same process, so this is the
 * check a whole-suite "fds before == fds after" would make; every other
 * fd-opening test also wraps itself in `withFdCheck`.)
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { PidFile } from "../daemon/pidfile.ts";
import { Logger } from "../daemon/syslog.ts";
import { ErrnoError } from "../ffi/errno.ts";
import { closeFd, listOpenFds, pipe } from "../ffi/fd.ts";
import { recvFds, sendFds } from "../ffi/fd_passing.ts";
import type { InetAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";
import {
  connect,
  type Connection,
  DatagramSocket,
  Interest,
  Listener,
  Reactor,
} from "../reactor/mod.ts";
import { sleep, waitFor } from "./_helpers.ts";

const ROUNDS = 15;
const encoder = new TextEncoder();

/** One round of everything; closes all it opens. */
async function round(dir: string, i: number): Promise<number> {
  const reactor = new Reactor();
  const running = reactor.run();
  let echoed = 0;
  try {
    const serverConns: Connection[] = [];
    const echo = (conn: Connection) => {
      serverConns.push(conn);
      conn.onData = (data) => conn.write(data);
    };
    const tcp = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, echo);
    const tcp6 = Listener.listen(reactor, { host: "::1", port: 0 }, echo);
    const unixPath = `${dir}/r${i}.sock`;
    const unix = Listener.listen(reactor, { path: unixPath, mode: 0o600 }, echo);
    try {
      const clients = await Promise.all([
        connect(reactor, { port: (tcp.address() as InetAddress).port }),
        connect(reactor, { host: "::1", port: (tcp6.address() as InetAddress).port }),
        connect(reactor, { path: unixPath }),
        connect(reactor, { port: (tcp.address() as InetAddress).port }),
      ]);
      for (const [k, c] of clients.entries()) {
        c.onData = (data) => {
          echoed += data.byteLength;
        };
        c.write(encoder.encode(`round ${i} client ${k}`.padEnd(32, ".")));
      }
      await waitFor(() => echoed === 32 * clients.length, 5000, "the echoes");
      // Half of them close gracefully, half reset; the server side follows.
      clients.forEach((c, k) => k % 2 === 0 ? c.close() : c.abort());
      await waitFor(
        () =>
          serverConns.length === clients.length && serverConns.every((c) => c.state === "closed"),
        5000,
        "the server side to close",
      );

      // A refused connect leaves nothing behind.
      const port = (tcp.address() as InetAddress).port;
      tcp.close();
      await assertRejects(() => connect(reactor, { port }), ErrnoError, "ECONNREFUSED");
    } finally {
      tcp.close();
      tcp6.close();
      unix.close();
    }

    // Datagrams both ways, and a logger talking to a receiver.
    const logPath = `${dir}/log${i}.sock`;
    const receiver = DatagramSocket.open(reactor, { bind: { path: logPath } });
    const udpA = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
    const udpB = DatagramSocket.open(reactor, { connect: udpA.address() });
    const log = new Logger({ path: logPath, ident: "balance" });
    try {
      udpB.send(encoder.encode("ping"));
      log.info("round", i);
      await waitFor(
        () => udpA.stats.received === 1 && receiver.stats.received === 1,
        5000,
        "the datagrams",
      );
    } finally {
      log.close();
      udpB.close();
      udpA.close();
      receiver.close();
    }

    // A pid file, fd passing, and a reactor busy long enough to open its yield fds.
    const pidFile = PidFile.acquire(`${dir}/r${i}.pid`);
    pidFile.release();
    const [a, b] = Socket.pair();
    const [pr, pw] = pipe({ nonblock: true });
    try {
      sendFds(a.fd, [pr, pw], new Uint8Array([i & 0xff]));
      const got = recvFds(b.fd, new Uint8Array(1), 2);
      assertEquals(got.fds.length, 2);
      got.fds.forEach(closeFd);
      sys.write(pw, new Uint8Array([1]));
      const busy = reactor.register(pr, Interest.READABLE, () => {});
      await sleep(10);
      busy.deregister();
    } finally {
      a.close();
      b.close();
      closeFd(pr);
      closeFd(pw);
    }
  } finally {
    await sleep(5);
    reactor.stop();
    await running;
    reactor.close();
  }
  return echoed;
}

Deno.test(`fd balance: ${ROUNDS} rounds of reactors, listeners, connections, datagrams, logger, pid file leave the fd table exactly as it was`, async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ffinet-balance-" });
  try {
    await round(dir, -1); // warm up: Deno's own lazily opened fds, if any
    const before = listOpenFds();
    let bytes = 0;
    for (let i = 0; i < ROUNDS; i++) bytes += await round(dir, i);
    const after = listOpenFds();
    const changed = [
      ...[...after].filter(([fd, t]) => before.get(fd) !== t).map(([fd, t]) => `+${fd} -> ${t}`),
      ...[...before].filter(([fd, t]) => after.get(fd) !== t).map(([fd, t]) => `-${fd} -> ${t}`),
    ];
    console.log(
      `${ROUNDS} rounds, ${bytes} bytes echoed; ${before.size} fds before, ${after.size} after`,
    );
    assertEquals(changed, [], "the fd table changed");
    assertEquals(after.size, before.size);
    assert(bytes === ROUNDS * 4 * 32);
    assertEquals([...Deno.readDirSync(dir)], [], "socket or pid files left behind");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/**
 * What an accepted connection costs the listener and the epoll set: its
 * `TCP_NODELAY` comes from the listening socket (Linux copies it at
 * accept), and its close leaves the epoll set, also when no
 * `EPOLL_CTL_DEL` preceded it; a connection whose socket was sent to
 * another holder with `sendFds()` is still taken out of the set.
 *
 * The epoll set is read from `/proc/self/fdinfo/<epfd>` (one `tfd:` line per
 * watched fd), so the tests check what the kernel holds.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { Connection, Listener, Reactor } from "../../reactor/mod.ts";
import { Socket } from "../../ffi/socket.ts";
import { closeFd } from "../../ffi/fd.ts";
import { recvFds } from "../../ffi/fd_passing.ts";
import { readProcFile } from "../../ffi/process.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { bytes, connectLoopback, runFor } from "./_util.ts";

/** The fds the epoll instance `epfd` watches (the `tfd:` lines of its fdinfo). */
function watched(epfd: number): number[] {
  return readProcFile(`/proc/self/fdinfo/${epfd}`).split("\n")
    .filter((line) => line.startsWith("tfd:"))
    .map((line) => Number(line.split(/\s+/)[1]));
}

/** Accept `count` connections from fresh loopback clients on `listener`. */
async function acceptSome(
  reactor: Reactor,
  listener: Listener,
  count: number,
): Promise<{ conns: Connection[]; clients: Socket[] }> {
  const conns: Connection[] = [];
  listener.onConnection = (conn) => {
    conns.push(conn);
    if (conns.length === count) reactor.stop();
  };
  const port = (listener.address() as InetAddress).port;
  const clients: Socket[] = [];
  for (let i = 0; i < count; i++) clients.push(connectLoopback(port));
  await runFor(reactor, 5000);
  assertEquals(conns.length, count, "every connection was accepted");
  return { conns, clients };
}

Deno.test("accept: TCP_NODELAY is set on the listening socket and every accepted socket has it", async () => {
  await using reactor = new Reactor();
  using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 });
  assertEquals(listener.socket.getOption("noDelay"), true, "set once, on the listener");
  const { conns, clients } = await acceptSome(reactor, listener, 3);
  try {
    for (const conn of conns) assertEquals(conn.socket.getOption("noDelay"), true);
  } finally {
    for (const conn of conns) conn.close();
    for (const c of clients) c.close();
  }
});

Deno.test("accept: with noDelay false neither the listener nor an accepted socket has TCP_NODELAY", async () => {
  await using reactor = new Reactor();
  using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0, noDelay: false });
  assertEquals(listener.socket.getOption("noDelay"), false);
  const { conns, clients } = await acceptSome(reactor, listener, 1);
  try {
    assertEquals(conns[0]!.socket.getOption("noDelay"), false);
  } finally {
    conns[0]!.close();
    clients[0]!.close();
  }
});

Deno.test("accept: a closed connection leaves the epoll set; one whose socket was sent elsewhere too", async () => {
  await using reactor = new Reactor();
  using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 });
  const { conns, clients } = await acceptSome(reactor, listener, 2);
  const [plain, sent] = conns as [Connection, Connection];
  const [a, b] = Socket.pair();
  const carrier = new Connection(reactor, a);
  let copy = -1;
  try {
    const before = watched(reactor.epfd);
    assert(before.includes(plain.fd) && before.includes(sent.fd), `watched: ${before}`);

    // The only descriptor of its socket: its close takes it out of the set.
    const plainFd = plain.fd;
    plain.close();
    assertEquals(plain.state, "closed");
    assert(!watched(reactor.epfd).includes(plainFd), "a closed connection stayed in the epoll set");

    // Its socket sent to another holder: the file outlives the close here,
    // so the close must take it out of the set explicitly.
    const sentFd = sent.fd;
    carrier.sendFds([sentFd], bytes("x"));
    const got = recvFds(b.fd, new Uint8Array(8), 4);
    assertEquals(got.fds.length, 1, "the socket arrived");
    copy = got.fds[0]!;
    sent.close();
    assert(
      !watched(reactor.epfd).includes(sentFd),
      "a connection whose socket lives on elsewhere stayed in the epoll set after its close",
    );
    assertEquals(reactor.stats.registrations, 2, "the listener and the carrier are left");
  } finally {
    if (copy >= 0) closeFd(copy);
    carrier.close();
    b.close();
    for (const c of clients) c.close();
  }
});

/**
 * Unix sockets: the socket file's mode comes from fchmod before bind (never
 * a chmod of the path), a planted symlink is never followed, the stale-path
 * probe never blocks (a squatter with a full accept queue), `mode` is
 * refused for abstract names, fd truncation reaches the app, and datagram
 * replies go to the exact bytes of a peer's name.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { ErrnoError } from "../../ffi/errno.ts";
import { closeFd, pipe } from "../../ffi/fd.ts";
import { sendFds } from "../../ffi/fd_passing.ts";
import { umask } from "../../ffi/process.ts";
import type { UnixAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import { Connection, DatagramSocket, Listener, Reactor } from "../../reactor/mod.ts";
import { countFds, waitFor, withFdCheck } from "../_helpers.ts";
import { bytes, onReactor, text } from "./_util.ts";
import { countFdsAroundReactor } from "../ffi/_emulation.ts";

async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-unix-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("unix listen: mode comes from fchmod before bind, exactly, whatever the umask; no path chmod", () =>
  withFdCheck(() =>
    withTempDir(async (dir) => {
      await using reactor = new Reactor();
      const chmodCalls: unknown[] = [];
      const { chmodSync, chmod } = Deno;
      // Any chmod by path would be the symlink-following bug: make it loud.
      Deno.chmodSync = (...args: unknown[]) => {
        chmodCalls.push(args);
        throw new Error("chmod by path");
      };
      Deno.chmod = (...args: unknown[]) => {
        chmodCalls.push(args);
        return Promise.reject(new Error("chmod by path"));
      };
      const oldMask = umask(0o022);
      try {
        for (const mode of [0o666, 0o660, 0o600, 0o640]) {
          const path = `${dir}/s${mode.toString(8)}`;
          const l = Listener.listen(reactor, { path, mode });
          assertEquals(Deno.lstatSync(path).mode! & 0o777, mode, `mode ${mode.toString(8)}`);
          assert(Deno.lstatSync(path).isSocket);
          l.close();
        }
        // The umask is restored.
        assertEquals(umask(0o022), 0o022);
      } finally {
        umask(oldMask);
        Deno.chmodSync = chmodSync;
        Deno.chmod = chmod;
      }
      assertEquals(chmodCalls, []);
    })
  ));

Deno.test("unix listen: a symlink planted at the path is never followed; its target keeps its mode", () =>
  withFdCheck(() =>
    withTempDir(async (dir) => {
      await using reactor = new Reactor();
      const target = `${dir}/secret`;
      Deno.writeTextFileSync(target, "root only", { mode: 0o600 });
      Deno.chmodSync(target, 0o600);
      const path = `${dir}/app.sock`;
      Deno.symlinkSync(target, path);
      const e = assertThrows(() => Listener.listen(reactor, { path, mode: 0o666 }), ErrnoError);
      assertEquals(e.code, "EADDRINUSE");
      assertEquals(Deno.statSync(target).mode! & 0o777, 0o600, "the symlink's target was chmodded");
      assert(Deno.lstatSync(path).isSymlink, "the planted symlink was removed");
      assertEquals(Deno.readTextFileSync(target), "root only");
    })
  ));

Deno.test("unix listen: a squatter with a full accept queue is refused with EADDRINUSE at once (no blocking probe)", () =>
  withFdCheck(() =>
    withTempDir(async (dir) => {
      await using reactor = new Reactor();
      const path = `${dir}/busy.sock`;
      using squatter = Socket.create("unix", "stream");
      squatter.bind({ family: "unix", path });
      squatter.listen(0);
      // Fill its accept queue: non-blocking connects until EAGAIN.
      const clients: Socket[] = [];
      try {
        for (let i = 0; i < 64; i++) {
          const c = Socket.create("unix", "stream");
          clients.push(c);
          if (c.connect({ family: "unix", path }) === "in-progress") break; // EAGAIN: full
        }
        assert(clients.length < 64, "the squatter's queue never filled");
        const start = performance.now();
        const e = assertThrows(() => Listener.listen(reactor, { path }), ErrnoError);
        const took = performance.now() - start;
        assertEquals(e.code, "EADDRINUSE");
        assert(e.message.includes("another server is listening"), e.message);
        assert(took < 1000, `listen took ${took} ms`);
        assert(Deno.lstatSync(path).isSocket, "the live server's socket file was removed");
      } finally {
        for (const c of clients) c.close();
      }
    })
  ));

Deno.test("unix listen: mode with an abstract name is refused before any socket; without mode it listens", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const before = countFds();
    const name = `\0ffinet-test-${Deno.pid}-${Math.random()}`;
    assertThrows(
      () => Listener.listen(reactor, { path: name, mode: 0o600 }),
      TypeError,
      "any local user can connect",
    );
    assertEquals(countFds(), before);
    using l = Listener.listen(reactor, { path: name });
    assertEquals((l.address() as UnixAddress).path, name);
  }));

Deno.test("unix connection: more fds than receiveFds reach onFds as truncated (all closed), then data flows", () =>
  withFdCheck(async () => {
    await onReactor(async (reactor) => {
      const [a, b] = Socket.pair();
      const conn = new Connection(reactor, a, { receiveFds: 1 });
      const seen: { fds: number[]; truncated: boolean }[] = [];
      let got = "";
      conn.onFds = (fds, _conn, info) => seen.push({ fds, truncated: info.truncated });
      conn.onData = (data) => got += text(data);
      const pipes = [pipe(), pipe(), pipe()];
      const before = countFdsAroundReactor();
      assertEquals(sendFds(b.fd, pipes.map(([r]) => r), bytes("three")), 5);
      await waitFor(() => got === "three", 2000, "the data sent with the fds");
      assertEquals(seen, [{ fds: [], truncated: true }]);
      assertEquals(conn.truncatedFds, 1);
      assertEquals(countFdsAroundReactor(), before, "the cut-off fds were not closed");
      // One fd fits: it arrives, not truncated.
      assertEquals(sendFds(b.fd, [pipes[0]![0]], bytes("one")), 3);
      await waitFor(() => seen.length === 2, 2000, "the second message");
      assertEquals(seen[1]!.truncated, false);
      assertEquals(seen[1]!.fds.length, 1);
      closeFd(seen[1]!.fds[0]!);
      for (const [r, w] of pipes) {
        closeFd(r);
        closeFd(w);
      }
      conn.close();
      b.close();
      await waitFor(() => reactor.stats.registrations === 0, 2000, "the connection to close");
    });
  }));

Deno.test("unix datagrams: replies reach the exact peer when two names differ only in invalid UTF-8 bytes", () =>
  withFdCheck(async () => {
    await onReactor(async (reactor) => {
      const tag = `ffinet-${Deno.pid}-${Math.floor(Math.random() * 1e9)}`;
      const nameOf = (last: number) => new Uint8Array([0, ...bytes(tag), last]);
      const serverName = `\0${tag}-server`;
      using server = DatagramSocket.open(reactor, { bind: { path: serverName } });
      server.onMessage = (data, from) => server.send(data, from); // echo to the sender
      const peers = [0xff, 0xfe].map((last) => {
        const name = nameOf(last);
        const s = DatagramSocket.open(reactor, {
          bind: { family: "unix", path: "", bytes: name } as UnixAddress,
        });
        const got: string[] = [];
        s.onMessage = (data) => got.push(text(data));
        return { s, got };
      });
      try {
        peers[0]!.s.send(bytes("to ff"), { family: "unix", path: serverName });
        peers[1]!.s.send(bytes("to fe"), { family: "unix", path: serverName });
        await waitFor(
          () => peers[0]!.got.length === 1 && peers[1]!.got.length === 1,
          2000,
          "both replies",
        );
        assertEquals(peers[0]!.got, ["to ff"]);
        assertEquals(peers[1]!.got, ["to fe"]);
      } finally {
        for (const p of peers) p.s.close();
      }
    });
  }));

/**
 * Security properties: every fd the library opens is close-on-exec (checked
 * with `fcntl(F_GETFD)` on every new fd, and end to end: a child process
 * inherits none of them, while a deliberately inheritable control fd does
 * reach it); Unix socket files get the configured mode whatever the umask;
 * pid files refuse symlinks and are never group- or world-writable; and, as
 * root, a server binds a privileged port and then drops to nobody/nogroup.
 */
import { DENO_SPAWN_SKIP, skipped } from "./_emulation.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { AlreadyRunningError, PidFile } from "../../daemon/pidfile.ts";
import { Logger } from "../../daemon/syslog.ts";
import { closeFd, eventfd, isCloexec, listOpenFds, pipe } from "../../ffi/fd.ts";
import { recvFds, sendFds } from "../../ffi/fd_passing.ts";
import { chmodSocketFile, getuid, readProcFile, umask } from "../../ffi/process.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import * as sys from "../../ffi/syscalls.ts";
import {
  connect,
  type Connection,
  DatagramSocket,
  Interest,
  Listener,
  Reactor,
} from "../../reactor/mod.ts";
import { startScript } from "../_example_server.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";

const decoder = new TextDecoder();

/** Run `fn` in a fresh temp dir, removed afterwards. */
async function inTempDir(fn: (dir: string) => unknown): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "ffinet-security-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Which of `fds` a child process (`sh`) has open. */
async function inheritedBy(fds: number[]): Promise<number[]> {
  const out = await new Deno.Command("sh", {
    args: [
      "-c",
      'for fd in "$@"; do [ -e "/proc/$$/fd/$fd" ] && echo "$fd"; done; exit 0',
      "sh",
      ...fds.map(String),
    ],
    stdin: "null",
  }).output();
  assert(out.success, decoder.decode(out.stderr));
  return decoder.decode(out.stdout).split("\n").filter((l) => l !== "").map(Number);
}

Deno.test("security: every fd the library opens is close-on-exec, and a child process inherits none", () =>
  withFdCheck(() =>
    inTempDir(async (dir) => {
      const before = listOpenFds();
      const reactor = new Reactor();
      const running = reactor.run();
      const cleanups: (() => void)[] = [];
      try {
        // TCP and Unix listeners (each with its spare /dev/null fd), and accepted connections.
        const accepted: Connection[] = [];
        const onConn = (c: Connection) => {
          accepted.push(c);
        };
        const tcp = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, onConn);
        cleanups.push(() => tcp.close());
        const unix = Listener.listen(reactor, { path: `${dir}/s.sock`, mode: 0o600 }, onConn);
        cleanups.push(() => unix.close());
        const c1 = await connect(reactor, { port: (tcp.address() as InetAddress).port });
        cleanups.push(() => c1.close());
        const c2 = await connect(reactor, { path: `${dir}/s.sock` });
        cleanups.push(() => c2.close());
        await waitFor(() => accepted.length === 2, 5000, "two accepted connections");
        cleanups.push(() => accepted.forEach((c) => c.close()));

        // Datagram sockets, a syslog Logger connected to a receiver, raw sockets.
        const receiver = DatagramSocket.open(reactor, { bind: { path: `${dir}/log.sock` } });
        cleanups.push(() => receiver.close());
        const log = new Logger({ path: `${dir}/log.sock`, ident: "security" });
        cleanups.push(() => log.close());
        log.info("hello");
        assert(log.connected);
        const udp = DatagramSocket.open(reactor, { bind: { host: "::1", port: 0 } });
        cleanups.push(() => udp.close());
        const raw = Socket.create("inet6", "stream");
        cleanups.push(() => raw.close());
        const [pa, pb] = Socket.pair("seqpacket");
        cleanups.push(() => (pa.close(), pb.close()));
        const accepting = Socket.create("inet", "stream");
        cleanups.push(() => accepting.close());
        accepting.bind({ family: "inet", address: "127.0.0.1", port: 0 });
        accepting.listen();
        const dialer = Socket.create("inet", "stream", { nonblocking: false });
        cleanups.push(() => dialer.close());
        dialer.connect(accepting.localAddress());
        let viaAccept: Socket | null = null;
        await waitFor(() => (viaAccept = accepting.accept()) !== null, 5000, "Socket.accept");
        cleanups.push(() => viaAccept!.close());

        // fds received over SCM_RIGHTS, pipes, eventfds and the pid file.
        const [ua, ub] = Socket.pair();
        cleanups.push(() => (ua.close(), ub.close()));
        const [pr, pw] = pipe();
        cleanups.push(() => (closeFd(pr), closeFd(pw)));
        assertEquals(sendFds(ua.fd, [pr], new Uint8Array([1])), 1);
        const got = recvFds(ub.fd, new Uint8Array(4), 1);
        assertEquals(got.fds.length, 1);
        cleanups.push(() => got.fds.forEach(closeFd));
        const efd = eventfd();
        cleanups.push(() => closeFd(efd));
        const pidFile = PidFile.acquire(`${dir}/test.pid`);
        cleanups.push(() => pidFile.release());

        // A reactor busy for a whole slice (its yield path opens what it needs).
        const [br, bw] = pipe({ nonblock: true });
        sys.write(bw, new Uint8Array([1]));
        let spins = 0;
        const busy = reactor.register(br, Interest.READABLE, () => {
          spins++;
        });
        await sleep(50);
        busy.deregister();
        closeFd(br);
        closeFd(bw);
        assert(spins > 0);

        // An inherited listening fd without FD_CLOEXEC gets it when adopted.
        const inherited = Socket.create("inet", "stream", { cloexec: false });
        inherited.bind({ family: "inet", address: "127.0.0.1", port: 0 });
        inherited.listen();
        assert(!isCloexec(inherited.fd));
        const adopted = Listener.listen(reactor, { fd: inherited.release() });
        cleanups.push(() => adopted.close());
        assert(isCloexec(adopted.socket.fd));

        const opened = [...listOpenFds()].filter(([fd, target]) => before.get(fd) !== target);
        const kinds = new Set(
          opened.map(([, t]) => t.replace(/\[\d+\]$/, "").replace(/^\/.*/, "file")),
        );
        console.log(`${opened.length} fds opened by the library: ${[...kinds].sort().join(", ")}`);
        assert(opened.length >= 25, `only ${opened.length} new fds`);
        for (const want of ["anon_inode:[eventpoll]", "anon_inode:[eventfd]"]) {
          assert(opened.some(([, t]) => t === want), `no ${want} among the new fds`);
        }
        assert(opened.some(([, t]) => t === "/dev/null"), "no spare /dev/null fd");
        assert(opened.some(([, t]) => t.endsWith("/test.pid")), "no pid file fd");
        const leaky = opened.filter(([fd]) => !isCloexec(fd));
        assertEquals(leaky.map(([fd, t]) => `${fd} -> ${t}`), [], "fds without FD_CLOEXEC");

        // End to end: a child sees the inheritable control fd and none of the library's.
        const [cr, cw] = pipe({ cloexec: false });
        try {
          const seen = await inheritedBy([cr, cw, ...opened.map(([fd]) => fd)]);
          assertEquals(seen, [cr, cw], "the child process inherited library fds");
        } finally {
          closeFd(cr);
          closeFd(cw);
        }
      } finally {
        for (const cleanup of cleanups.reverse()) cleanup();
        await sleep(20); // let the reactor see the closes
        reactor.stop();
        await running;
        reactor.close();
      }
    })
  ));

Deno.test("security: Unix socket files get the configured mode whatever the umask; the umask is restored", () =>
  withFdCheck(() =>
    inTempDir((dir) => {
      const reactor = new Reactor();
      const old = umask(0); // the most permissive umask: the mode must not depend on it
      try {
        for (const mode of [0o600, 0o660, 0o640, 0o700]) {
          const path = `${dir}/m${mode.toString(8)}.sock`;
          const l = Listener.listen(reactor, { path, mode });
          try {
            const info = Deno.lstatSync(path);
            assert(info.isSocket);
            assertEquals((info.mode! & 0o777).toString(8), mode.toString(8), path);
            assertEquals(umask(0), 0, "the umask was not restored");
          } finally {
            l.close();
          }
          assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound, undefined, "not removed");
        }
        umask(0o077);
        const path = `${dir}/default.sock`;
        const l = Listener.listen(reactor, { path });
        try {
          assertEquals(Deno.lstatSync(path).mode! & 0o077, 0, "the umask was ignored");
        } finally {
          l.close();
        }
      } finally {
        umask(old);
        reactor.close();
      }
    })
  ));

/** Whether `strace` can trace a child here (installed, and ptrace allowed). */
async function straceWorks(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("strace", {
      args: ["-qq", "-e", "trace=none", "true"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.success ? undefined : `strace cannot trace: ${decoder.decode(out.stderr).trim()}`;
  } catch {
    return "strace is not installed";
  }
}

const UMASK_TEST =
  "security: listening on a Unix path with a mode never changes the process-wide umask (strace)";
Deno.test({
  name: UMASK_TEST,
  ignore: skipped(UMASK_TEST, DENO_SPAWN_SKIP),
  fn: () =>
    withFdCheck(() =>
      inTempDir(async (dir) => {
        const noStrace = await straceWorks();
        if (noStrace !== undefined) {
          console.log(`skip: ${UMASK_TEST}: ${noStrace}`);
          return;
        }
        // umask(2) is process-wide: any change, however brief, applies to
        // files other threads create meanwhile. Modes the umask 022 narrows
        // (group/world-writable) must still come out exact, with no umask call.
        const script = `${dir}/umask.ts`;
        Deno.writeTextFileSync(
          script,
          `import { Listener, Reactor } from "${new URL("../../mod.ts", import.meta.url).href}";
const reactor = new Reactor();
const modes = [];
for (const mode of [0o666, 0o660, 0o622, 0o600]) {
  const path = ${JSON.stringify(dir)} + "/u.sock";
  const l = Listener.listen(reactor, { path, mode });
  modes.push((Deno.lstatSync(path).mode & 0o777).toString(8));
  l.close();
}
reactor.close();
console.log(modes.join(" "));
`,
        );
        const trace = `${dir}/trace.txt`;
        const out = await new Deno.Command("sh", {
          args: [
            "-c",
            'umask 022; exec strace -f -qq -e trace=umask -o "$1" "$2" run --no-config -A "$3"',
            "sh",
            trace,
            Deno.execPath(),
            script,
          ],
          stdin: "null",
        }).output();
        assertEquals(out.code, 0, decoder.decode(out.stderr));
        assertEquals(decoder.decode(out.stdout).trim(), "666 660 622 600");
        const calls = Deno.readTextFileSync(trace).split("\n").filter((l) => l.includes("umask("));
        assertEquals(calls, [], "the process changed its umask");
      })
    ),
});

Deno.test("security: chmodSocketFile changes a socket's inode only: never a symlink's target or a file", () =>
  withFdCheck(() =>
    inTempDir((dir) => {
      const victim = `${dir}/victim`;
      Deno.writeTextFileSync(victim, "x", { mode: 0o600 });
      Deno.chmodSync(victim, 0o600);
      Deno.symlinkSync(victim, `${dir}/link.sock`);
      assertThrows(() => chmodSocketFile(`${dir}/link.sock`, 0o666), Error);
      assertThrows(() => chmodSocketFile(victim, 0o666), Error, "is not a socket");
      assertEquals(Deno.statSync(victim).mode! & 0o777, 0o600, "the target's mode changed");
      assertThrows(() => chmodSocketFile(`${dir}/missing.sock`, 0o600), Error, "ENOENT");
      const s = Socket.create("unix", "stream");
      try {
        s.bind({ family: "unix", path: `${dir}/ok.sock` });
        chmodSocketFile(`${dir}/ok.sock`, 0o640);
        assertEquals(Deno.lstatSync(`${dir}/ok.sock`).mode! & 0o777, 0o640);
        assertThrows(() => chmodSocketFile(`${dir}/ok.sock`, 0o10000), RangeError);
      } finally {
        s.close();
      }
    })
  ));

Deno.test("security: pid files refuse symlinks and hard links, and are never group/world-writable", () =>
  withFdCheck(() =>
    inTempDir((dir) => {
      const old = umask(0); // even with no umask at all
      try {
        // A symlink to a file someone cares about: refused, the file untouched.
        const victim = `${dir}/victim`;
        Deno.writeTextFileSync(victim, "precious\n");
        Deno.symlinkSync(victim, `${dir}/link.pid`);
        assertThrows(() => PidFile.acquire(`${dir}/link.pid`), Error, "symbolic link");
        assertEquals(Deno.readTextFileSync(victim), "precious\n");
        // A dangling symlink: refused, its target not created.
        Deno.symlinkSync(`${dir}/created-through-link`, `${dir}/dangling.pid`);
        assertThrows(() => PidFile.acquire(`${dir}/dangling.pid`), Error, "symbolic link");
        assertThrows(() => Deno.lstatSync(`${dir}/created-through-link`), Deno.errors.NotFound);
        // A hard link to another file.
        Deno.linkSync(victim, `${dir}/hard.pid`);
        assertThrows(() => PidFile.acquire(`${dir}/hard.pid`), Error, "hard links");
        assertEquals(Deno.readTextFileSync(victim), "precious\n");

        // Not group/world-writable, even with umask 0.
        const path = `${dir}/ok.pid`;
        const p = PidFile.acquire(path);
        try {
          assertEquals(Deno.lstatSync(path).mode! & 0o777, 0o600);
          assert(isCloexec(p.fd));
          assertThrows(() => PidFile.acquire(path), AlreadyRunningError);
        } finally {
          p.release();
        }
        for (const mode of [0o666, 0o646, 0o664, 0o1644]) {
          assertThrows(() => PidFile.acquire(path, { mode }), RangeError, "group/world write");
        }
        // A stale world-writable file left behind is narrowed.
        Deno.writeTextFileSync(path, "999999\n", { mode: 0o666 });
        Deno.chmodSync(path, 0o666);
        const q = PidFile.acquire(path, { mode: 0o600 });
        try {
          assertEquals(Deno.lstatSync(path).mode! & 0o777, 0o600);
        } finally {
          q.release();
        }
      } finally {
        umask(old);
      }
    })
  ));

const isRoot = getuid() === 0;

const DROP_TEST =
  "security: as root, a server binds a privileged port, drops to 65534 and still serves";
Deno.test({
  name: DROP_TEST,
  ignore: skipped(DROP_TEST, isRoot ? DENO_SPAWN_SKIP : "not root: cannot bind a privileged port"),
  fn: () =>
    withFdCheck(() =>
      inTempDir(async (dir) => {
        const lib = (path: string) => new URL(`../../${path}`, import.meta.url).href;
        const script = `${dir}/drop.ts`;
        Deno.writeTextFileSync(
          script,
          `import { Listener, Reactor, Socket } from "${lib("mod.ts")}";
import { getuid, setgid, setgroups, setuid } from "${lib("ffi/process.ts")}";
const reactor = new Reactor();
let listener;
let port = 0;
for (let p = 1023; p > 512 && listener === undefined; p--) {
  try {
    listener = Listener.listen(reactor, { host: "127.0.0.1", port: p }, (conn) => {
      conn.onData = (data) => conn.write(data);
      conn.onClose = () => reactor.stop();
    });
    port = p;
  } catch (e) {
    if (e.code !== "EADDRINUSE") throw e;
  }
}
if (listener === undefined) throw new Error("no free privileged port");
setgroups([]);
setgid(65534);
setuid(65534);
let rebind = "bound";
try {
  using s = Socket.create("inet", "stream");
  s.bind({ family: "inet", address: "127.0.0.1", port: port - 1 });
} catch (e) {
  rebind = e.code;
}
let regain = "regained";
try {
  setuid(0);
} catch (e) {
  regain = e.code;
}
console.log(\`uid \${getuid()} rebind \${rebind} regain \${regain}\`);
console.log(\`listening on 127.0.0.1:\${port}\`);
await reactor.run();
listener.close();
reactor.close();
`,
        );
        const server = await startScript(script, {
          flags: ["--no-config", "--allow-ffi"],
          cwd: dir,
        });
        try {
          const port = server.port;
          const out = server.output();
          assertMatch(out, /^listening on 127\.0\.0\.1:\d+$/m);
          assert(port < 1024);
          const unprivilegedStart = Number(
            readProcFile("/proc/sys/net/ipv4/ip_unprivileged_port_start").trim(),
          );
          const [, uid, rebind, regain] = out.match(/^uid (\d+) rebind (\S+) regain (\S+)$/m) ?? [];
          assertEquals(uid, "65534", out);
          if (port - 1 < unprivilegedStart) assertEquals(rebind, "EACCES", "rebind after the drop");
          assertEquals(regain, "EPERM", "setuid(0) after the drop");

          const status = readProcFile(`/proc/${server.pid}/status`);
          assertMatch(status, /^Uid:\t65534\t65534\t65534\t65534$/m);
          assertMatch(status, /^Gid:\t65534\t65534\t65534\t65534$/m);
          assertMatch(status, /^Groups:[ \t]*$/m);

          // The socket bound as root still serves.
          const s = Socket.create("inet", "stream", { nonblocking: false });
          try {
            s.setOption("receiveTimeout", 10_000);
            assertEquals(s.connect({ family: "inet", address: "127.0.0.1", port }), "connected");
            assertEquals(s.write(new TextEncoder().encode("dropped")), 7);
            const buf = new Uint8Array(7);
            let n = 0;
            while (n < 7) {
              const r = s.read(buf.subarray(n));
              assert(r !== null && r > 0, "no echo");
              n += r!;
            }
            assertEquals(decoder.decode(buf), "dropped");
          } finally {
            s.close();
          }
          const result = await server.status;
          assertEquals(result.code, 0, server.output());
        } finally {
          await server.stop();
        }
      })
    ),
});

Deno.test({
  name:
    "security: the permission model: without --allow-ffi a clear error; --allow-ffi alone serves TCP",
  ignore: skipped(
    "security: the permission model: without --allow-ffi a clear error; --allow-ffi alone serves TCP",
    DENO_SPAWN_SKIP,
  ),
}, () =>
  withFdCheck(() =>
    inTempDir(async (dir) => {
      const script = `${dir}/perm.ts`;
      Deno.writeTextFileSync(
        script,
        `import { Listener, Reactor } from "${new URL("../../mod.ts", import.meta.url).href}";
const reactor = new Reactor();
const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 });
console.log("listening", "port" in listener.address());
listener.close();
reactor.close();
`,
      );
      const run = (flags: string[]) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "--no-config", "--no-prompt", ...flags, script],
          cwd: dir,
          stdin: "null",
        }).output();
      const [without, withFfi] = await Promise.all([run([]), run(["--allow-ffi"])]);
      assertEquals(without.success, false);
      assertMatch(decoder.decode(without.stderr), /Cannot load libc: ffinet needs --allow-ffi/);
      assertEquals(withFfi.code, 0, decoder.decode(withFfi.stderr));
      assertEquals(decoder.decode(withFfi.stdout), "listening true\n");
    })
  ));

/**
 * The listening socket's setup for `Listener`: adopting an
 * inherited fd, binding a Unix socket with an exact mode (fchmod before
 * bind, never a path), probing a stale socket file without blocking, and the
 * spare fd of the EMFILE trick. Internal (not exported by `mod.ts`).
 *
 * @module
 */
import { F, O } from "../ffi/constants.ts";
import { EADDRINUSE, ECONNREFUSED, ENOENT, ErrnoError } from "../ffi/errno.ts";
import { fchmod, openFile, umask } from "../ffi/process.ts";
import type { SocketAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";

export function openIdleFd(): number {
  try {
    return openFile("/dev/null", O.RDONLY | O.CLOEXEC);
  } catch {
    return -1;
  }
}

export function adoptListeningFd(fd: number): Socket {
  const flags = sys.fcntl(fd, F.GETFL, 0);
  if (flags < 0) throw new ErrnoError("fcntl", -flags, { detail: `inherited fd ${fd}` });
  const socket = new Socket(fd);
  let listening: boolean;
  try {
    listening = socket.getOption("acceptConnections");
  } catch (e) {
    socket.release();
    throw new Error(`Cannot listen on fd ${fd}: it is not a socket`, { cause: e });
  }
  if (!listening) {
    socket.release();
    throw new Error(`Cannot listen on fd ${fd}: it is not a listening socket`);
  }
  const r = sys.fcntl(fd, F.SETFL, flags | O.NONBLOCK);
  if (r < 0) throw new ErrnoError("fcntl", -r, { detail: `inherited fd ${fd}` });
  sys.fcntl(fd, F.SETFD, F.FD_CLOEXEC);
  return socket;
}

/**
 * Bind a Unix socket with exactly `mode`: Linux creates the socket file with
 * the socket inode's mode less the umask, so `fchmod` the socket first and,
 * only if the umask would take bits away from `mode`, narrow the umask for
 * the `bind` call. No path is touched after the file exists.
 */
export function bindUnix(socket: Socket, path: string, mode: number | undefined): void {
  const addr: SocketAddress = { family: "unix", path };
  if (mode === undefined) {
    socket.bind(addr);
    return;
  }
  fchmod(socket.fd, mode);
  const old = currentUmask();
  const needed = old & ~mode; // keep every umask bit the caller did not ask for
  if (needed === old) {
    socket.bind(addr);
    return;
  }
  umask(needed);
  try {
    socket.bind(addr);
  } finally {
    umask(old);
  }
}

/** The umask, read without changing it (`/proc/self/status`, Linux >= 4.7). */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m !== null) return parseInt(m[1]!, 8);
  } catch { /* no /proc: fall back below */ }
  const old = umask(0o077); // briefly the strictest sensible mask, never a looser one
  umask(old);
  return old;
}

/**
 * Remove a socket file left by a dead server; refuse one that a live server
 * holds. The probe is a non-blocking connect: a server whose accept queue is
 * full answers EAGAIN, which means someone is listening.
 */
export function removeStaleSocket(path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch {
    return;
  }
  if (!info.isSocket) return; // bind will report EADDRINUSE for a non-socket file
  const probe = Socket.create("unix", "stream"); // non-blocking
  try {
    probe.connect({ family: "unix", path }); // "connected" or "in-progress" (EAGAIN)
  } catch (e) {
    if (e instanceof ErrnoError && (e.errno === ECONNREFUSED || e.errno === ENOENT)) {
      Deno.removeSync(path);
    }
    return;
  } finally {
    probe.close();
  }
  throw new ErrnoError("bind", EADDRINUSE, {
    detail: `${path}: another server is listening on it`,
  });
}

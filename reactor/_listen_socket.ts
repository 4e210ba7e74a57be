/**
 * The listening socket's setup for `Listener`: adopting an
 * inherited fd, binding a Unix socket with an exact mode (fchmod before
 * bind, then the file's inode through `O_PATH`; the umask is never
 * changed), probing a stale socket file without blocking, and the
 * spare fd of the EMFILE trick. Internal (not exported by `mod.ts`).
 *
 * @module
 */
import { F, O } from "../ffi/constants.ts";
import { EADDRINUSE, ECONNREFUSED, ENOENT, ErrnoError } from "../ffi/errno.ts";
import { chmodSocketFile, fchmod, openFile, unlink } from "../ffi/process.ts";
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
 * Bind a Unix socket with exactly `mode`, never touching the process-wide
 * umask (other threads create files meanwhile). `fchmod` on the socket first
 * makes the file Linux creates at `bind` no wider than `mode` (it gets the
 * socket's mode less the umask); then the file is given exactly `mode`
 * through an `O_PATH` handle on that inode (`chmodSocketFile`), which puts
 * back any bit the umask took and follows no symlink.
 */
export function bindUnix(socket: Socket, path: string, mode: number | undefined): void {
  const addr: SocketAddress = { family: "unix", path };
  if (mode === undefined) {
    socket.bind(addr);
    return;
  }
  fchmod(socket.fd, mode);
  socket.bind(addr);
  if (path.startsWith("\0")) return; // an abstract name has no file
  try {
    chmodSocketFile(path, mode);
  } catch (e) {
    try {
      unlink(path);
    } catch { /* gone already */ }
    throw e;
  }
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

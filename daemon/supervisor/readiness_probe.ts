/**
 * Readiness for apps that cannot send `READY=1` (`readiness: "listen"`):
 * read from `/proc`, without connecting (a probe connection on a shared
 * listening socket could be accepted by any worker, old or new).
 *
 * - Shared socket: a worker is ready once one of its epoll instances
 *   watches the listening socket, i.e. it is really waiting to accept
 *   (`/proc/<pid>/fdinfo/<epoll fd>` lists each watched file's inode).
 * - `SO_REUSEPORT` (the app binds itself): ready once it owns a TCP socket
 *   in `LISTEN` state (`/proc/<pid>/net/tcp{,6}` matched against the
 *   socket inodes in `/proc/<pid>/fd`).
 *
 * @example
 * ```ts
 * import { acceptsConnections } from "./readiness_probe.ts";
 * import { socketInode } from "./listen_sockets.ts";
 * function ready(pid: number, sharedFd: number): boolean {
 *   return acceptsConnections(pid, new Set([socketInode(sharedFd)]));
 * }
 * ```
 *
 * @module
 */
import { listOpenFds } from "../../ffi/fd.ts";
import { readProcFile } from "../../ffi/process.ts";

function epollWatches(pid: number, fd: number): Set<number> {
  const out = new Set<number>();
  try {
    const info = readProcFile(`/proc/${pid}/fdinfo/${fd}`);
    for (const m of info.matchAll(/^tfd:.*\bino:([0-9a-f]+)/gm)) out.add(parseInt(m[1]!, 16));
  } catch { /* closed meanwhile */ }
  return out;
}

function listeningInodes(pid: number): Set<number> {
  const out = new Set<number>();
  for (const file of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = readProcFile(`/proc/${pid}/net/${file}`);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === "0A") out.add(Number(f[9])); // st == TCP_LISTEN; inode column
    }
  }
  return out;
}

/**
 * Whether process `pid` is waiting to accept: on one of the shared
 * sockets `inodes` (epoll watches it), or, when `inodes` is empty, on any
 * TCP socket of its own in `LISTEN` state. False when it is gone.
 *
 * @example
 * ```ts
 * import { acceptsConnections } from "./readiness_probe.ts";
 * // SO_REUSEPORT mode: a LISTEN socket of its own
 * console.log(acceptsConnections(Deno.pid, new Set()));
 * ```
 */
export function acceptsConnections(pid: number, inodes: ReadonlySet<number>): boolean {
  let fds: Map<number, string>;
  try {
    fds = listOpenFds(pid);
  } catch {
    return false;
  }
  if (inodes.size > 0) {
    for (const [fd, target] of fds) {
      if (target !== "anon_inode:[eventpoll]") continue;
      for (const ino of epollWatches(pid, fd)) if (inodes.has(ino)) return true;
    }
    return false;
  }
  const own = new Set<number>();
  for (const target of fds.values()) {
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m !== null) own.add(Number(m[1]));
  }
  if (own.size === 0) return false;
  for (const ino of listeningInodes(pid)) if (own.has(ino)) return true;
  return false;
}

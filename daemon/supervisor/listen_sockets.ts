/**
 * The listening sockets a supervisor hands its workers: bound once by the
 * supervisor (TCP host/port or a Unix path), or taken over from the
 * supervisor's own socket activation (`LISTEN_FDS`), and described for the
 * workers' `LISTEN_FDS` / `LISTEN_FDNAMES`.
 *
 * @example
 * ```ts
 * import { closeListenSockets, openListenSockets } from "./listen_sockets.ts";
 * const sockets = openListenSockets([{ host: "127.0.0.1", port: 0 }]);
 * console.log(sockets[0]!.address); // "127.0.0.1:<a free port>"
 * closeListenSockets(sockets);
 * ```
 *
 * @module
 */
import { ipAddress } from "../../ffi/sockaddr.ts";
import { formatAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import { readProcFile } from "../../ffi/process.ts";
import { setNonBlocking } from "../../ffi/fd.ts";
import { listenFds } from "../../reactor/sd_notify.ts";
import { checkInteger, integerOption } from "../../ffi/validate.ts";

/** A socket the supervisor binds for its workers. */
export type ListenSpec =
  | {
    /** The address (default `127.0.0.1`). */
    host?: string;
    /** The TCP port (0 picks a free one). */
    port: number;
    /** `listen(2)` backlog (default 511). */
    backlog?: number;
    /** Its `LISTEN_FDNAMES` name (default `"http"`). */
    name?: string;
  }
  | {
    /** A Unix socket path (a stale socket file there is replaced). */
    path: string;
    /** Its file mode (default 0o660). */
    mode?: number;
    /** `listen(2)` backlog (default 511). */
    backlog?: number;
    /** Its `LISTEN_FDNAMES` name (default `"http"`). */
    name?: string;
  };

/** A listening socket the workers get. */
export interface ListenSocket {
  /** The fd in the supervisor (close-on-exec). */
  fd: number;
  /** Its `LISTEN_FDNAMES` name. */
  name: string;
  /** `127.0.0.1:8080`, `[::1]:8080` or a Unix path. */
  address: string;
  /** Whether the supervisor bound it (and so closes it, and removes a Unix path). */
  owned: boolean;
  /** The Unix path it bound, to remove at the end. */
  path: string | null;
  /** The socket's inode (`socket:[N]`), to recognise it in a worker's `/proc`. */
  inode: number;
}

const NAME = /^[A-Za-z0-9_.-]{1,255}$/;

/**
 * Check `specs` without taking any resource: ports, backlogs, names, modes.
 * Throws `RangeError` naming the bad field.
 *
 * @example
 * ```ts
 * import { validateListenSpecs } from "./listen_sockets.ts";
 * validateListenSpecs([{ port: 8080 }]);
 * ```
 */
export function validateListenSpecs(specs: readonly ListenSpec[]): void {
  for (const [i, s] of specs.entries()) {
    const where = `listen[${i}]`;
    if ("path" in s) {
      if (typeof s.path !== "string" || s.path === "" || s.path.includes("\0")) {
        throw new RangeError(`Cannot create supervisor: ${where}.path is not a usable path`);
      }
      if (s.mode !== undefined && (!Number.isInteger(s.mode) || s.mode < 0 || s.mode > 0o777)) {
        throw new RangeError(`Cannot create supervisor: ${where}.mode must be 0..0o777`);
      }
    } else {
      checkInteger("create supervisor", `${where}.port`, s.port, 0, 65535);
    }
    integerOption("create supervisor", `${where}.backlog`, s.backlog, 1, 1, 0x7fffffff);
    if (s.name !== undefined && !NAME.test(s.name)) {
      throw new RangeError(
        `Cannot create supervisor: ${where}.name must be 1-255 of [A-Za-z0-9_.-] (no ':')`,
      );
    }
  }
}

/**
 * The inode of the socket behind `fd` in `pid` (default this process).
 *
 * @example
 * ```ts
 * import { closeListenSockets, openListenSockets, socketInode } from "./listen_sockets.ts";
 * const sockets = openListenSockets([{ port: 0 }]);
 * console.log(socketInode(sockets[0]!.fd) === sockets[0]!.inode); // true
 * closeListenSockets(sockets);
 * ```
 */
export function socketInode(fd: number, pid: number | "self" = "self"): number {
  try {
    const m = /ino:\s*(\d+)/.exec(readProcFile(`/proc/${pid}/fdinfo/${fd}`));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

function describe(sock: Socket): string {
  try {
    return formatAddress(sock.localAddress());
  } catch {
    return "unknown";
  }
}

/**
 * Bind every spec (all or none: on a failure the ones bound are closed).
 * Sockets are close-on-exec, `SO_REUSEADDR`, non-blocking.
 *
 * @example
 * ```ts
 * import { closeListenSockets, openListenSockets } from "./listen_sockets.ts";
 * const [http] = openListenSockets([{ port: 0 }]);
 * console.log(http!.name, http!.address); // "http" "127.0.0.1:<port>"
 * closeListenSockets([http!]);
 * ```
 */
export function openListenSockets(specs: readonly ListenSpec[]): ListenSocket[] {
  validateListenSpecs(specs);
  const out: ListenSocket[] = [];
  try {
    for (const s of specs) {
      const name = s.name ?? "http";
      if ("path" in s) {
        try {
          if (Deno.lstatSync(s.path).isSocket) Deno.removeSync(s.path);
        } catch { /* absent */ }
        const sock = Socket.create("unix", "stream");
        try {
          sock.bind({ family: "unix", path: s.path });
          Deno.chmodSync(s.path, s.mode ?? 0o660);
          sock.listen(s.backlog ?? 511);
        } catch (e) {
          sock.close();
          throw e;
        }
        out.push({
          fd: sock.release(),
          name,
          address: s.path,
          owned: true,
          path: s.path,
          inode: 0,
        });
      } else {
        const addr = ipAddress(s.host ?? "127.0.0.1", s.port);
        const sock = Socket.create(addr.family, "stream");
        try {
          sock.setOption("reuseAddress", true);
          sock.bind(addr);
          sock.listen(s.backlog ?? 511);
        } catch (e) {
          sock.close();
          throw e;
        }
        const address = describe(sock);
        out.push({ fd: sock.release(), name, address, owned: true, path: null, inode: 0 });
      }
      out[out.length - 1]!.inode = socketInode(out[out.length - 1]!.fd);
    }
    return out;
  } catch (e) {
    closeListenSockets(out);
    throw e;
  }
}

/**
 * The sockets this process was given by socket activation (`listenFds()`,
 * which also makes them close-on-exec and clears `LISTEN_*`), or `[]`.
 * They are made non-blocking: a worker's accept loop must not hang.
 *
 * @example
 * ```ts
 * import { inheritedListenSockets } from "./listen_sockets.ts";
 * function inherited(): number {
 *   return inheritedListenSockets().length; // 0 unless started with LISTEN_FDS
 * }
 * ```
 */
export function inheritedListenSockets(): ListenSocket[] {
  return listenFds().map(({ fd, name }) => {
    // systemd passes blocking sockets unless NonBlocking=true; O_NONBLOCK
    // lives in the open file description, so this reaches every worker.
    setNonBlocking(fd, true);
    return {
      fd,
      name,
      address: describe(new Socket(fd)),
      owned: false,
      path: null,
      inode: socketInode(fd),
    };
  });
}

/**
 * Close the sockets the supervisor bound (and remove their Unix paths);
 * inherited ones are closed too, as the supervisor is their only holder.
 *
 * @example
 * ```ts
 * import { closeListenSockets, openListenSockets } from "./listen_sockets.ts";
 * const sockets = openListenSockets([{ port: 0 }, { port: 0, name: "admin" }]);
 * closeListenSockets(sockets);
 * ```
 */
export function closeListenSockets(sockets: readonly ListenSocket[]): void {
  for (const s of sockets) {
    try {
      new Socket(s.fd).close();
    } catch { /* already closed */ }
    if (s.path !== null) {
      try {
        Deno.removeSync(s.path);
      } catch { /* gone */ }
    }
  }
}

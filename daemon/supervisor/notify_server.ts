/**
 * The supervisor's side of `sd_notify`: a Unix datagram socket in a private
 * directory that workers find through `NOTIFY_SOCKET`, read on a
 * {@linkcode Reactor}. `SO_PASSCRED` makes the kernel attach the sender's
 * pid to every datagram (`SCM_CREDENTIALS`), so a message is credited to the
 * process that really sent it, never to a pid it claims.
 *
 * @example
 * ```ts
 * import { NotifyServer } from "./notify_server.ts";
 * import { Reactor } from "@ffinet/ffinet/reactor";
 * const reactor = new Reactor();
 * const server = NotifyServer.open(reactor, (m) => console.log(m.pid, m.fields.get("READY")));
 * console.log(server.path); // give workers NOTIFY_SOCKET=<this path>
 * server.close();
 * reactor.close();
 * ```
 *
 * @module
 */
import { EAGAIN } from "../../ffi/errno.ts";
import { MSG, SCM, SO, SOL } from "../../ffi/constants.ts";
import { CMSG_SPACE, IovecArray, Msghdr } from "../../ffi/msghdr.ts";
import { Socket } from "../../ffi/socket.ts";
import { close, setsockopt } from "../../ffi/syscalls.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { getuid, kill } from "../../ffi/process.ts";
import { Interest } from "../../reactor/interest.ts";
import type { Reactor } from "../../reactor/reactor.ts";
import type { Registration } from "../../reactor/poller.ts";

/** One datagram received on the notify socket. */
export interface NotifyMessage {
  /** The sender's pid, from the kernel (`SCM_CREDENTIALS`), or 0 when absent. */
  pid: number;
  /** The sender's uid. */
  uid: number;
  /** The sender's gid. */
  gid: number;
  /** `KEY=value` lines, in order (a later key wins). */
  fields: Map<string, string>;
}

/** Options for {@linkcode NotifyServer.open}. */
export interface NotifyServerOptions {
  /**
   * Workers that run as this uid/gid: the socket is given to them (0600)
   * and the directory made search-only for others (0711).
   */
  owner?: { uid: number; gid: number };
}

const MAX_DATAGRAM = 4096;
/** Notify directories are `<tmp>/ffinet-notify-<pid>-<random>`. */
const DIR_PREFIX = "ffinet-notify-";

/**
 * Remove the notify directories a supervisor killed with SIGKILL left
 * behind: ours (same uid, a real directory) whose pid no longer exists. A
 * recycled pid only keeps a leftover a while longer.
 */
function removeStaleDirs(): void {
  let tmp: string;
  try {
    tmp = Deno.env.get("TMPDIR") || "/tmp";
  } catch {
    return;
  }
  const uid = getuid();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(tmp)];
  } catch {
    return;
  }
  for (const entry of entries) {
    const m = /^ffinet-notify-([0-9]{1,10})-/.exec(entry.name);
    if (m === null || !entry.isDirectory || entry.isSymlink) continue;
    const pid = Number(m[1]);
    if (pid === Deno.pid || pidExists(pid)) continue;
    const path = `${tmp}/${entry.name}`;
    try {
      const info = Deno.lstatSync(path);
      if (!info.isDirectory || info.uid !== uid) continue;
      Deno.removeSync(path, { recursive: true });
    } catch { /* raced with its owner or another cleaner */ }
  }
}

function pidExists(pid: number): boolean {
  if (pid <= 0 || pid > 0x7fffffff) return true;
  try {
    kill(pid, 0);
    return true;
  } catch (e) {
    return !(e instanceof ErrnoError && e.code === "ESRCH");
  }
}
const UCRED_SIZE = 12;
const decoder = new TextDecoder();

/**
 * Parse the text of a notification into its `KEY=value` lines; lines
 * without `=` are ignored, as systemd does.
 *
 * @example
 * ```ts
 * import { parseNotification } from "./notify_server.ts";
 * parseNotification("READY=1\nSTATUS=up").get("STATUS"); // "up"
 * ```
 */
export function parseNotification(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return fields;
}

/** A `NOTIFY_SOCKET` served on a reactor. */
export class NotifyServer {
  readonly #dir: string;
  readonly #path: string;
  readonly #socket: Socket;
  readonly #reg: Registration<undefined>;
  readonly #buf = new Uint8Array(MAX_DATAGRAM);
  readonly #control = new Uint8Array(CMSG_SPACE(UCRED_SIZE) + 64);
  readonly #msg: Msghdr;
  #closed = false;

  private constructor(
    dir: string,
    socket: Socket,
    reactor: Reactor,
    onMessage: (m: NotifyMessage) => void,
  ) {
    this.#dir = dir;
    this.#path = `${dir}/notify`;
    this.#socket = socket;
    this.#msg = new Msghdr({ iov: new IovecArray([this.#buf]), control: this.#control });
    this.#reg = reactor.register(socket.fd, Interest.READABLE, () => this.#drain(onMessage));
  }

  /**
   * Create the private directory `$TMPDIR/ffinet-notify-<pid>-…` (mode
   * 0700; 0711 with `owner`; the ones of supervisors that no longer exist
   * are removed first) and bind
   * the socket in it, with `SO_PASSCRED`; messages go to `onMessage` from
   * the reactor.
   *
   * @example
   * ```ts
   * import { NotifyServer } from "./notify_server.ts";
   * import type { Reactor } from "@ffinet/ffinet/reactor";
   * function open(reactor: Reactor, uid: number, gid: number): NotifyServer {
   *   const owner = { uid, gid };
   *   return NotifyServer.open(reactor, (m) => console.log(m.pid, m.fields), { owner });
   * }
   * ```
   */
  static open(
    reactor: Reactor,
    onMessage: (m: NotifyMessage) => void,
    options: NotifyServerOptions = {},
  ): NotifyServer {
    removeStaleDirs();
    const dir = Deno.makeTempDirSync({ prefix: `${DIR_PREFIX}${Deno.pid}-` });
    let socket: Socket | undefined;
    try {
      Deno.chmodSync(dir, 0o700);
      socket = Socket.create("unix", "dgram");
      const one = new Uint8Array(new Int32Array([1]).buffer);
      const r = setsockopt(socket.fd, SOL.SOCKET, SO.PASSCRED, one);
      if (r < 0) throw new ErrnoError("setsockopt", -r, { detail: "SO_PASSCRED" });
      socket.bind({ family: "unix", path: `${dir}/notify` });
      if (options.owner !== undefined) {
        // Workers of another user need to reach the socket, nothing more:
        // the directory becomes search-only for others (0711, still ours),
        // the socket theirs alone (0600).
        Deno.chownSync(`${dir}/notify`, options.owner.uid, options.owner.gid);
        Deno.chmodSync(`${dir}/notify`, 0o600);
        Deno.chmodSync(dir, 0o711);
      }
      return new NotifyServer(dir, socket, reactor, onMessage);
    } catch (e) {
      socket?.close();
      Deno.removeSync(dir, { recursive: true });
      throw new Error(`Cannot open the notify socket: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The socket's path, the workers' `NOTIFY_SOCKET`. @example `server.path` */
  get path(): string {
    return this.#path;
  }

  #drain(onMessage: (m: NotifyMessage) => void): void {
    for (let i = 0; i < 64; i++) {
      this.#control.fill(0);
      const n = this.#msg.recvmsg(this.#socket.fd, MSG.DONTWAIT | MSG.CMSG_CLOEXEC);
      if (n === -EAGAIN) return;
      if (n < 0) return; // nothing sensible to do with a receive error on a datagram socket
      let pid = 0, uid = -1, gid = -1;
      for (const c of this.#msg.controlMessages()) {
        if (c.level === SOL.SOCKET && c.type === SCM.CREDENTIALS && c.data.byteLength >= 12) {
          const v = new DataView(c.data.buffer, c.data.byteOffset, c.data.byteLength);
          pid = v.getInt32(0, true);
          uid = v.getUint32(4, true);
          gid = v.getUint32(8, true);
        } else if (c.level === SOL.SOCKET && c.type === SCM.RIGHTS) {
          // Nobody may plant fds in the supervisor: close what came.
          const v = new DataView(c.data.buffer, c.data.byteOffset, c.data.byteLength);
          for (let o = 0; o + 4 <= c.data.byteLength; o += 4) {
            close(v.getInt32(o, true));
          }
        }
      }
      if ((this.#msg.flags & MSG.TRUNC) !== 0) continue; // oversized: ignored
      const fields = parseNotification(decoder.decode(this.#buf.subarray(0, n)));
      try {
        onMessage({ pid, uid, gid, fields });
      } catch { /* the handler's failure is not the socket's */ }
    }
  }

  /**
   * Stop reading, close the socket and remove its directory. Idempotent.
   *
   * @example
   * ```ts
   * import type { NotifyServer } from "./notify_server.ts";
   * function shutdown(server: NotifyServer): void {
   *   server.close();
   * }
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reg.registered) this.#reg.deregister();
    this.#socket.close();
    try {
      Deno.removeSync(this.#dir, { recursive: true });
    } catch { /* already gone */ }
  }
}

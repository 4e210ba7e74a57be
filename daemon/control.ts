/**
 * The control socket of `deno task serve`: a Unix stream socket (mode 0600,
 * beside the pid file in a private directory) that the supervisor serves
 * with a tiny line protocol, and the clients of `serve status|reload|stop|upgrade`
 * use. The verbs are the server's handlers (one per row of `serve`'s command
 * table, `cli/commands.ts`), plus `ping`.
 *
 * Protocol: the client sends one command line (`ping`, `status`, ..., at
 * most {@linkcode MAX_REQUEST_BYTES} bytes with the `\n`); the
 * server answers with one line of JSON and closes:
 * `{"ok":true,"pid":1234,"data":...}` or `{"ok":false,"pid":1234,"error":"..."}`.
 * `pid` is the supervisor's own pid, so a client can check that the pid
 * file and the socket name the same process before acting.
 *
 * @example
 * ```ts
 * import { ControlServer, controlRequest } from "./control.ts";
 * const dir = Deno.makeTempDirSync();
 * const server = ControlServer.listen({
 *   path: `${dir}/serve.sock`,
 *   handlers: { status: () => ({ workers: [] }) },
 * });
 * const reply = await controlRequest(`${dir}/serve.sock`, "status");
 * console.log(reply.pid === Deno.pid, reply.data); // true { workers: [] }
 * await server.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { ErrnoError } from "../ffi/errno.ts";
import { F } from "../ffi/constants.ts";
import { integerOption } from "../ffi/validate.ts";
import { fchmod, getuid } from "../ffi/process.ts";
import { Socket } from "../ffi/socket.ts";
import { close as closeFd, fcntl } from "../ffi/syscalls.ts";
import { connect } from "../reactor/connect.ts";
import type { Connection } from "../reactor/connection.ts";
import { Listener } from "../reactor/listener.ts";
import { Reactor } from "../reactor/reactor.ts";

/**
 * A command of the control protocol: `ping`, which every server answers,
 * or a verb the server has a handler for (`serve`'s command table,
 * `cli/commands.ts`, names them): a lowercase word.
 */
export type ControlCommand = string;

/** What a verb looks like: anything else is refused before it is sent. */
const VERB = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * The longest request line the server reads, `\n` included.
 *
 * @example
 * ```ts
 * import { MAX_REQUEST_BYTES } from "./control.ts";
 * console.log(MAX_REQUEST_BYTES); // 64
 * ```
 */
export const MAX_REQUEST_BYTES = 64;

/**
 * What the server does for each command: the handler's result (any JSON
 * value) is the reply's `data`; a throw or rejection is an error reply with
 * its message. The verbs are the handlers' names (plus `ping`): any other
 * line answers `unknown command`.
 *
 * - `status`: the status data;
 * - `stop`: begin stopping (return at once: the reply is sent before the
 *   stop completes);
 * - `reload`: resolve once the rolling restart is done, reject when it
 *   failed;
 * - `upgrade`: resolve with `{ pid }` of the new supervisor, or reject
 *   with why the old one stays in charge.
 */
export type ControlHandlers = Readonly<Record<string, () => unknown>>;

/** Options for {@linkcode ControlServer.listen}. */
export interface ControlServerOptions {
  /** The socket path (an existing stale socket there is replaced). */
  path: string;
  /** The handlers. */
  handlers: ControlHandlers;
  /** How long a client may take to send its line, in ms (default 5000). */
  requestTimeoutMs?: number;
  /**
   * An already listening socket to serve (one handed over by the previous
   * supervisor), instead of binding `path`; the path is then left in place
   * on close unless bound here.
   */
  fd?: number;
}

/** Whether a server accepts connections on the Unix socket at `path`. */
function answers(path: string): boolean {
  const probe = Socket.create("unix", "stream");
  try {
    probe.connect({ family: "unix", path });
    return true; // connected, or in progress: someone listens
  } catch {
    return false; // ECONNREFUSED: a stale file
  } finally {
    probe.close();
  }
}

/**
 * Bind a Unix stream socket at `path` with mode 0600 (set on the socket
 * before `bind`, so the file is never more open than that), replacing a
 * stale socket file; the caller holds the pid file lock, so no live server
 * owns it.
 */
function bindControlSocket(path: string): Socket {
  let isSocket = false;
  try {
    isSocket = Deno.lstatSync(path).isSocket === true;
  } catch { /* nothing there */ }
  if (isSocket) {
    if (answers(path)) {
      throw new Error(
        `Cannot listen on control socket: EADDRINUSE (a live server answers on ${path})`,
      );
    }
    Deno.removeSync(path);
  }
  const socket = Socket.create("unix", "stream");
  try {
    fchmod(socket.fd, 0o600);
    socket.bind({ family: "unix", path });
    socket.listen(16);
    return socket;
  } catch (e) {
    socket.close();
    throw e;
  }
}

/** One reply of the control protocol. */
export interface ControlReply {
  /** Whether the command succeeded. */
  ok: boolean;
  /** The supervisor's pid. */
  pid: number;
  /** The command's data (`status`), when it has some. */
  data?: unknown;
  /** Why it failed, when `ok` is false. */
  error?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The control socket server, on a reactor.
 *
 * @example
 * ```ts
 * import { ControlServer } from "./control.ts";
 * import type { Supervisor } from "@ffinet/ffinet/daemon";
 * async function serveControl(sup: Supervisor, finished: Promise<void>): Promise<void> {
 *   const control = ControlServer.listen({
 *     path: "/run/ffinet/serve.sock",
 *     handlers: { status: () => sup.status(), stop: () => sup.stop(), reload: () => sup.reload() },
 *   });
 *   await finished;
 *   await control.close();
 * }
 * ```
 */
export class ControlServer {
  /** The socket path. */
  readonly path: string;
  /** Accepting on the socket; null while another process answers on it. */
  #listener: Listener | null;
  /** The socket kept (close-on-exec copy) while not accepting, to resume; else -1. */
  #kept = -1;
  readonly #reactor: Reactor;
  readonly #ownReactor: boolean;
  readonly #loop: Promise<void> | null;
  readonly #handlers: ControlHandlers;
  readonly #timeoutMs: number;
  readonly #conns = new Set<Connection>();
  #ownsPath: boolean;
  #closed = false;

  private constructor(
    options: ControlServerOptions,
    handlers: ControlHandlers,
    timeoutMs: number,
  ) {
    this.path = options.path;
    this.#handlers = handlers;
    this.#timeoutMs = timeoutMs;
    this.#ownReactor = true; // a reactor of its own, run until close()
    // The socket is bound here, not by Listener, so that this server alone
    // decides whether the path goes on close: after a hand-over (an
    // upgrade) the path belongs to the next supervisor.
    this.#ownsPath = options.fd === undefined;
    const socket = options.fd === undefined
      ? bindControlSocket(options.path)
      : new Socket(options.fd);
    this.#reactor = new Reactor();
    try {
      this.#listener = this.#listen(socket.fd);
    } catch (e) {
      this.#reactor.close();
      socket.close();
      this.#removePath();
      throw e;
    }
    this.#loop = this.#ownReactor ? this.#reactor.run() : null;
  }

  #listen(fd: number): Listener {
    return Listener.listen(this.#reactor, { fd, backlog: 16 }, (conn) => this.#accept(conn));
  }

  /** The listening socket's fd (what an upgrade passes on). @example `control.fd` */
  get fd(): number {
    return this.#listener?.socket.fd ?? this.#kept;
  }

  /** Whether this server accepts connections now. @example `control.accepting` */
  get accepting(): boolean {
    return this.#listener !== null;
  }

  /**
   * Stop accepting, for a hand-over: the listening fd leaves the reactor and
   * is closed (an event already read for it is dropped), so from now on only
   * another process holding the same socket (the next supervisor) accepts;
   * connections queue in the backlog until it does. Connections already
   * accepted are still answered. A close-on-exec copy of the socket is kept
   * for {@linkcode ControlServer.resumeAccepting} until
   * {@linkcode ControlServer.handedOver} or close. Idempotent.
   *
   * @example
   * ```ts
   * import type { ControlServer } from "./control.ts";
   * function yieldTo(control: ControlServer, go: () => void): void {
   *   control.stopAccepting(); // before the next one may answer
   *   go();
   * }
   * ```
   */
  stopAccepting(): void {
    if (this.#closed || this.#listener === null) return;
    const copy = fcntl(this.#listener.socket.fd, F.DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      throw new ErrnoError("fcntl", -copy, { detail: "F_DUPFD_CLOEXEC of the control socket" });
    }
    this.#kept = copy;
    this.#listener.close();
    this.#listener = null;
  }

  /**
   * Accept again after {@linkcode ControlServer.stopAccepting} (the hand-over
   * failed: this process stays in charge). Idempotent.
   *
   * @example
   * ```ts
   * import type { ControlServer } from "./control.ts";
   * function stayInCharge(control: ControlServer): void {
   *   control.resumeAccepting();
   * }
   * ```
   */
  resumeAccepting(): void {
    if (this.#closed || this.#listener !== null || this.#kept < 0) return;
    this.#listener = this.#listen(this.#kept);
    this.#kept = -1;
  }

  /**
   * The hand-over is done: another process serves the socket and owns the
   * path. Stops accepting if it still did, closes the copy of the socket,
   * and leaves the path in place on {@linkcode ControlServer.close}.
   * Connections already accepted are still answered until close.
   *
   * @example
   * ```ts
   * import type { ControlServer } from "./control.ts";
   * async function handOver(control: ControlServer): Promise<void> {
   *   control.handedOver();
   *   await control.close();
   * }
   * ```
   */
  handedOver(): void {
    this.#ownsPath = false;
    this.#listener?.close();
    this.#listener = null;
    this.#dropKept();
  }

  #dropKept(): void {
    if (this.#kept < 0) return;
    closeFd(this.#kept);
    this.#kept = -1;
  }

  #removePath(): void {
    if (!this.#ownsPath) return;
    this.#ownsPath = false;
    try {
      if (Deno.lstatSync(this.path).isSocket) Deno.removeSync(this.path);
    } catch { /* already gone */ }
  }

  /**
   * Bind the socket (mode 0600) and start serving. Throws `RangeError` for a
   * bad option and an `ErrnoError` when the path cannot be bound.
   *
   * @example
   * ```ts
   * import { controlRequest, ControlServer } from "./control.ts";
   * const dir = await Deno.makeTempDir();
   * const control = ControlServer.listen({
   *   path: `${dir}/serve.sock`,
   *   handlers: { status: () => ({ workers: 2 }) },
   * });
   * console.log((await controlRequest(control.path, "status")).data); // { workers: 2 }
   * await control.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static listen(options: ControlServerOptions): ControlServer {
    const timeoutMs = integerOption(
      "listen on control socket",
      "requestTimeoutMs",
      options.requestTimeoutMs,
      5000,
      1,
      3_600_000,
    );
    if (typeof options.path !== "string" || !options.path.startsWith("/")) {
      throw new RangeError(
        `Cannot listen on control socket: path "${options.path}" is not absolute`,
      );
    }
    const handlers = handlerTable(options.handlers);
    return new ControlServer(options, handlers, timeoutMs);
  }

  #accept(conn: Connection): void {
    if (this.#closed) return conn.close();
    this.#conns.add(conn);
    let line = "";
    let answered = false;
    const timer = this.#reactor.setTimeout(() => {
      if (!answered) this.#reply(conn, { ok: false, error: "request timed out" });
    }, this.#timeoutMs);
    conn.onClose = () => {
      timer.cancel();
      this.#conns.delete(conn);
    };
    conn.onData = (data) => {
      if (answered) return;
      line += decoder.decode(data, { stream: true });
      const nl = line.indexOf("\n");
      if (nl < 0) {
        if (line.length >= MAX_REQUEST_BYTES) {
          answered = true;
          this.#reply(conn, { ok: false, error: "request line too long" });
        }
        return;
      }
      answered = true;
      timer.cancel();
      void this.#run(conn, line.slice(0, nl).trim());
    };
    conn.onEnd = () => {
      if (!answered) {
        answered = true;
        this.#reply(conn, { ok: false, error: "empty request" });
      }
    };
  }

  async #run(conn: Connection, command: string): Promise<void> {
    if (command === "ping") return this.#reply(conn, { ok: true });
    const handler = VERB.test(command) && Object.hasOwn(this.#handlers, command)
      ? this.#handlers[command]
      : undefined;
    if (handler === undefined) {
      return this.#reply(conn, {
        ok: false,
        error: `unknown command "${command.slice(0, MAX_REQUEST_BYTES)}"`,
      });
    }
    try {
      const data = await handler();
      this.#reply(conn, data === undefined ? { ok: true } : { ok: true, data });
    } catch (e) {
      this.#reply(conn, { ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  }

  #reply(conn: Connection, reply: Omit<ControlReply, "pid">): void {
    if (conn.state !== "open") return;
    conn.write(encoder.encode(JSON.stringify({ ...reply, pid: Deno.pid }) + "\n"));
    conn.close();
  }

  /**
   * Stop serving: close the listener (removing the socket file) and every
   * open connection, and stop the reactor if it is the server's own.
   * Idempotent.
   *
   * @example
   * ```ts
   * import type { ControlServer } from "./control.ts";
   * async function shutdown(control: ControlServer): Promise<void> {
   *   await control.close();
   * }
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) {
      await this.#loop;
      return;
    }
    this.#closed = true;
    this.#listener?.close();
    this.#listener = null;
    this.#dropKept();
    this.#removePath();
    for (const c of this.#conns) c.abort();
    this.#conns.clear();
    if (this.#ownReactor) {
      this.#reactor.stop();
      await this.#loop;
      this.#reactor.close();
    }
  }
}

/** Options for {@linkcode controlRequest}. */
export interface ControlRequestOptions {
  /** How long to wait for the reply, in ms (default 10 000; `reload` may take a while). */
  timeoutMs?: number;
}

/**
 * Thrown by {@linkcode controlRequest} when there is no server to ask: no
 * socket, or nobody listening on it (a stale socket file).
 *
 * @example
 * ```ts
 * import { controlRequest, ControlUnavailableError } from "./control.ts";
 * try {
 *   await controlRequest("/nonexistent/serve.sock", "ping");
 * } catch (e) {
 *   if (e instanceof ControlUnavailableError) console.log("not running");
 * }
 * ```
 */
export class ControlUnavailableError extends Error {
  /** Build it with the reason. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ControlUnavailableError";
  }
}

/**
 * Send one command to the control socket at `path` and return the reply.
 * The socket must be a socket owned by the caller (or root). Never waits
 * past `timeoutMs`. Rejects with {@linkcode ControlUnavailableError} when
 * nobody serves the path.
 *
 * @example
 * ```ts
 * import { controlRequest } from "./control.ts";
 * async function status(): Promise<unknown> {
 *   const reply = await controlRequest("/run/ffinet/serve.sock", "status");
 *   return reply.data;
 * }
 * ```
 */
export function controlRequest(
  path: string,
  command: ControlCommand,
  options: ControlRequestOptions = {},
): Promise<ControlReply> {
  let timeoutMs: number;
  try {
    timeoutMs = integerOption(
      "query control socket",
      "timeoutMs",
      options.timeoutMs,
      10_000,
      1,
      3_600_000,
    );
  } catch (e) {
    return Promise.reject(e);
  }
  if (typeof command !== "string" || !VERB.test(command)) {
    return Promise.reject(
      new RangeError(`Cannot query control socket: unknown command "${command}"`),
    );
  }
  return Promise.resolve().then(() => request(path, command, timeoutMs));
}

/** A private copy of the handlers, checked once: no later change or getter reaches the server. */
function handlerTable(handlers: ControlHandlers): ControlHandlers {
  const table: Record<string, () => unknown> = Object.create(null);
  for (const [verb, fn] of Object.entries(handlers)) {
    if (!VERB.test(verb) || verb === "ping") {
      throw new RangeError(`Cannot listen on control socket: "${verb}" is not a command name`);
    }
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot listen on control socket: the "${verb}" handler is not a function`,
      );
    }
    table[verb] = fn;
  }
  return table;
}

async function request(
  path: string,
  command: ControlCommand,
  timeoutMs: number,
): Promise<ControlReply> {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ControlUnavailableError(`Cannot query control socket: ${path} does not exist`);
    }
    throw e;
  }
  if (!info.isSocket) {
    throw new Error(`Cannot query control socket: ${path} is not a socket`);
  }
  const uid = getuid();
  if (info.uid !== null && info.uid !== uid && info.uid !== 0) {
    throw new Error(
      `Cannot query control socket: ${path} is owned by uid ${info.uid}, not by uid ${uid}`,
    );
  }
  const reactor = new Reactor();
  const loop = reactor.run();
  let conn: Connection | null = null;
  try {
    try {
      conn = await connect(reactor, { path }, { timeoutMs });
    } catch (e) {
      if (e instanceof ErrnoError && (e.code === "ECONNREFUSED" || e.code === "ENOENT")) {
        throw new ControlUnavailableError(
          `Cannot query control socket: nobody listens on ${path}`,
          { cause: e },
        );
      }
      throw e;
    }
    const c = conn;
    const text = await new Promise<string>((resolve, reject) => {
      let got = "";
      const timer = reactor.setTimeout(() => {
        reject(
          new Error(`Cannot query control socket: no reply from ${path} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      c.onData = (data) => {
        got += decoder.decode(data, { stream: true });
        if (got.includes("\n") || got.length > 1 << 20) {
          timer.cancel();
          resolve(got);
        }
      };
      c.onClose = (_c, error) => {
        timer.cancel();
        if (error !== undefined && got === "") {
          reject(new Error(`Cannot query control socket: ${error.message}`, { cause: error }));
        } else resolve(got);
      };
      c.write(encoder.encode(command + "\n"));
    });
    const line = text.split("\n")[0] ?? "";
    let reply: unknown;
    try {
      reply = JSON.parse(line);
    } catch {
      throw new Error(`Cannot query control socket: bad reply from ${path}: ${line.slice(0, 200)}`);
    }
    if (
      typeof reply !== "object" || reply === null ||
      typeof (reply as ControlReply).ok !== "boolean" ||
      !Number.isInteger((reply as ControlReply).pid)
    ) {
      throw new Error(`Cannot query control socket: bad reply from ${path}: ${line.slice(0, 200)}`);
    }
    return reply as ControlReply;
  } finally {
    conn?.abort();
    reactor.stop();
    await loop;
    reactor.close();
  }
}

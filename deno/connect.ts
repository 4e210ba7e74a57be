/**
 * {@linkcode connect}: a client connection with the shape of
 * `Deno.connect`'s, on ffinet's `connect`.
 *
 * @module
 */
import { connect as connectConnection } from "../reactor/connect.ts";
import type { Connection } from "../reactor/connection.ts";
import { toDenoError } from "./_errors.ts";
import { FfiConn, wrapLeased } from "./conn.ts";
import {
  connectOptionsOf,
  type FfiTcpConnectOptions,
  type FfiUnixConnectOptions,
  validateAdapterOptions,
} from "./options.ts";
import { acquire } from "./shared_reactor.ts";

/**
 * Connect over TCP, like `Deno.connect`. Failures reject with Deno's error
 * classes (`Deno.errors.ConnectionRefused`, `TimedOut`, ...).
 *
 * @example
 * ```ts
 * import { connect } from "@ffinet/ffinet/deno";
 *
 * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
 * conn.close();
 * ```
 */
export function connect(options: FfiTcpConnectOptions): Promise<FfiConn<Deno.NetAddr>>;
/**
 * Connect to a Unix socket, like `Deno.connect({ transport: "unix", path })`.
 *
 * @example
 * ```ts
 * import { connect } from "@ffinet/ffinet/deno";
 *
 * const conn = await connect({ transport: "unix", path: "/run/app.sock" });
 * conn.close();
 * ```
 */
export function connect(options: FfiUnixConnectOptions): Promise<FfiConn<Deno.UnixAddr>>;
/**
 * Connect over TCP or to a Unix socket.
 *
 * @example
 * ```ts
 * import { connect } from "@ffinet/ffinet/deno";
 *
 * const conn = await connect({ port: 8080 });
 * conn.close();
 * ```
 */
export async function connect(
  options: FfiTcpConnectOptions | FfiUnixConnectOptions,
): Promise<FfiConn<Deno.NetAddr> | FfiConn<Deno.UnixAddr>> {
  validateAdapterOptions("connect", options);
  const { connect: connectOptions, conn: connOptions } = connectOptionsOf(options);
  const lease = acquire(options.reactor);
  let conn: Connection;
  try {
    conn = await connectConnection(
      lease.reactor,
      options.transport === "unix"
        ? { path: options.path }
        : { host: options.hostname ?? "127.0.0.1", port: options.port },
      connectOptions,
    );
  } catch (e) {
    lease.release();
    throw toDenoError(e);
  }
  return wrapLeased(conn, lease, (c) => new FfiConn<Deno.NetAddr>(c, connOptions));
}

/**
 * A connection's peer address as text, for example servers' logs.
 *
 * @module
 */
import { type Connection, formatAddress } from "../mod.ts";

/**
 * The peer's address as text, or "(gone)" when it reset before we could ask
 * (getpeername fails with ENOTCONN then).
 *
 * @example
 * ```ts ignore
 * console.log(`${peerName(conn)} joined`);
 * ```
 */
export function peerName(conn: Connection): string {
  try {
    return formatAddress(conn.remoteAddress());
  } catch {
    return "(gone)";
  }
}

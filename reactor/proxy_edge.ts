/**
 * Listener options for servers at the edge or behind a balancer, checked
 * before any socket is made and applied to the listening socket:
 *
 * - `deferAccept` (`TCP_DEFER_ACCEPT`): a connection is handed over only
 *   once the client has sent data. Guards against connections that
 *   handshake and then sit silent (port scanners, idle-connection floods):
 *   they cost a SYN-queue slot, never an fd or a callback.
 * - `fastOpen` (`TCP_FASTOPEN`): accept data carried in the SYN from
 *   clients holding a Fast Open cookie; saves a round trip per new
 *   connection (the kernel's `net.ipv4.tcp_fastopen` must enable the server
 *   side, bit 2).
 * - `incomingCpu` (`SO_INCOMING_CPU`): ties the listener to a CPU; in an
 *   `SO_REUSEPORT` group of per-CPU listeners (Linux 6.1+), the kernel
 *   prefers the one whose CPU handles the SYN, keeping a connection's
 *   packets and its process on one CPU's caches.
 *
 * Together with `proxyProtocol` these make the `ListenOptions` of
 * `Listener.listen`.
 *
 * @module
 */
import type { Socket } from "../ffi/socket.ts";
import { checkProxyProtocolOptions, type ProxyProtocolOptions } from "./proxy_gate.ts";

/** The edge options of `ListenOptions`. */
export interface EdgeListenOptions {
  /** Read a PROXY protocol header from trusted peers before handing connections over. */
  proxyProtocol?: ProxyProtocolOptions;
  /** `TCP_DEFER_ACCEPT` in seconds, 0–3600 (0: off). TCP only. */
  deferAccept?: number;
  /** `TCP_FASTOPEN` queue length, 0–65535 (0: off). TCP only. */
  fastOpen?: number;
  /** `SO_INCOMING_CPU`: a CPU number, 0–8191. */
  incomingCpu?: number;
}

function intOption(name: string, value: number | undefined, max: number): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`Cannot listen: ${name} must be an integer in 0-${max}, got ${value}`);
  }
}

/**
 * Validate the edge options (`unixPath`: the listener is a Unix socket, where
 * the TCP options make no sense). Throws `RangeError`/`TypeError` naming the
 * option.
 *
 * @example
 * ```ts
 * import { checkEdgeOptions } from "./proxy_edge.ts";
 * checkEdgeOptions({ deferAccept: 5, fastOpen: 256, incomingCpu: 0 }, false);
 * ```
 */
export function checkEdgeOptions(options: EdgeListenOptions, unixPath: boolean): void {
  intOption("deferAccept", options.deferAccept, 3600);
  intOption("fastOpen", options.fastOpen, 65535);
  intOption("incomingCpu", options.incomingCpu, 8191);
  if (unixPath && (options.deferAccept !== undefined || options.fastOpen !== undefined)) {
    throw new TypeError("Cannot listen: deferAccept and fastOpen apply to TCP listeners only");
  }
  if (options.proxyProtocol !== undefined) checkProxyProtocolOptions(options.proxyProtocol);
}

/**
 * Apply the socket options among `options` to a listening socket.
 *
 * @example
 * ```ts
 * import { applyEdgeOptions, checkEdgeOptions, type EdgeListenOptions } from "./proxy_edge.ts";
 * import { Socket } from "../ffi/socket.ts";
 * const options: EdgeListenOptions = { deferAccept: 5 };
 * checkEdgeOptions(options, false);
 * const socket = Socket.create("inet", "stream");
 * applyEdgeOptions(socket, options);
 * socket.close();
 * ```
 */
export function applyEdgeOptions(socket: Socket, options: EdgeListenOptions): void {
  if (options.deferAccept !== undefined) socket.setOption("deferAccept", options.deferAccept);
  if (options.fastOpen !== undefined) socket.setOption("fastOpen", options.fastOpen);
  if (options.incomingCpu !== undefined) socket.setOption("incomingCpu", options.incomingCpu);
}

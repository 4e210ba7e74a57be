/**
 * ffinet socket addresses as Deno's address objects.
 *
 * @module
 */
import type { SocketAddress } from "../ffi/sockaddr.ts";
import type { FfiAddr } from "./options.ts";

/** `{ transport: "tcp", hostname, port }` or `{ transport: "unix", path }`. */
export function toDenoAddr(addr: SocketAddress): FfiAddr {
  if (addr.family === "unix") return { transport: "unix", path: addr.path };
  return { transport: "tcp", hostname: addr.address, port: addr.port };
}

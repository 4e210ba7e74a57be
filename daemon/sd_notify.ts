/**
 * systemd's protocol for services: `sd_notify(3)` and socket activation
 * (`sd_listen_fds(3)`). The implementation lives in `reactor/sd_notify.ts` so
 * that servers built on the reactor (`http/`) use it without the daemon layer;
 * this module re-exports it for the daemon's users.
 *
 * @example
 * ```ts
 * import { listenFds, notify } from "./sd_notify.ts";
 * const fds = listenFds(); // [] unless started by socket activation
 * console.log(fds.length, notify("READY=1")); // notify is false without NOTIFY_SOCKET
 * ```
 *
 * @module
 */
export * from "../reactor/sd_notify.ts";

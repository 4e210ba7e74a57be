/**
 * Running servers as Unix daemons: syslog without blocking, pid files,
 * detaching by re-exec with a readiness channel, a supervisor that restarts
 * crashed workers, and systemd's `sd_notify` / socket activation.
 *
 * @example
 * ```ts ignore
 * import { createLogger, Supervisor } from "./mod.ts";
 * const log = createLogger({ ident: "myd", perror: true });
 * ```
 *
 * @module
 */
export * from "./syslog.ts";
export * from "./pidfile.ts";
export * from "./sd_notify.ts";
export * from "./detach.ts";
export * from "./supervisor.ts";

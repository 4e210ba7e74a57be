/**
 * Running servers as Unix daemons: syslog without blocking, pid files,
 * detaching by re-exec with a readiness channel, a supervisor that restarts
 * crashed workers, and systemd's `sd_notify` / socket activation.
 *
 * @example
 * ```ts
 * import { createLogger, Supervisor } from "./mod.ts";
 * async function main(): Promise<void> {
 *   using log = createLogger({ ident: "myd", perror: true });
 *   await using sup = new Supervisor({ app: "./server.ts", listen: { port: 8080 }, logger: log });
 *   await sup.start();
 *   await sup.finished;
 * }
 * ```
 *
 * @module
 */
export * from "./syslog.ts";
export * from "./pidfile.ts";
export * from "./sd_notify.ts";
export * from "./detach.ts";
export * from "./supervisor.ts";

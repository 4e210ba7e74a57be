/**
 * Running servers as Unix daemons: syslog without blocking, pid files,
 * detaching by re-exec with a readiness channel, a supervisor that restarts
 * crashed workers, and systemd's `sd_notify` / socket activation.
 *
 * Layout: `supervisor/` holds the {@linkcode Supervisor} and what it runs
 * (worker processes and their command line, the private `NOTIFY_SOCKET`,
 * restart backoff, listening sockets, privilege drop, self-upgrade);
 * `cli/` holds `deno task serve` (arguments, the command table and its
 * clients, worker output), entered through `cli.ts`. The pieces both use
 * sit here: `pidfile.ts`, `control.ts` (the control socket), `detach.ts`,
 * `syslog.ts` and `sd_notify.ts`.
 *
 * @example
 * ```ts
 * import { createLogger, Supervisor } from "@ffinet/ffinet/daemon";
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
export {
  createLogger,
  formatLogMessage,
  Logger,
  type LoggerOptions,
  type LoggerStats,
  type SyslogFacilityName,
  type SyslogLevel,
  type SyslogPriorityName,
} from "./syslog.ts";
export {
  AlreadyRunningError,
  defaultPidfilePath,
  ensurePrivateDir,
  PidFile,
  type PidFileOptions,
  type PidFileStatus,
  readPidFile,
  RUNTIME_DIR_ENV,
  runtimeDir,
} from "./pidfile.ts";
export {
  type Environment,
  formatNotifyState,
  type ListenFd,
  listenFds,
  type ListenFdsOptions,
  notify,
  type NotifyOptions,
  type NotifyState,
  parseListenFds,
  parseWatchdog,
  SD_LISTEN_FDS_START,
  watchdogInterval,
} from "./sd_notify.ts";
export {
  DAEMON_ENV,
  DAEMON_PERMISSIONS,
  DAEMON_SIGNALS,
  type DaemonInfo,
  daemonize,
  DaemonizeError,
  type DaemonizeOptions,
  type DaemonizeResult,
  enterDaemon,
  type EnterDaemonOptions,
  isDaemon,
  notifyFailure,
  notifyReady,
  resetSignalMask,
} from "./detach.ts";
export { Supervisor } from "./supervisor/supervisor.ts";
export {
  type ListenSpec,
  type ReadinessMode,
  type RestartPolicyOptions,
  type SupervisorCounters,
  type SupervisorEvent,
  type SupervisorLogger,
  type SupervisorOptions,
  type SupervisorState,
  type SupervisorStatus,
  WORKER_PERMISSIONS,
  type WorkerExit,
  type WorkerState,
  type WorkerStatus,
} from "./supervisor/types.ts";

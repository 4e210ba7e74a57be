/**
 * libc's `syslog(3)` family, bound safely:
 *
 * - {@linkcode syslog} always passes a fixed `"%s"` format and the message as
 *   its argument, so a message such as `"%n"` is logged as text and can
 *   never be interpreted as a format.
 * - {@linkcode openlog} keeps the ident string's buffer referenced for as long
 *   as libc may read it (glibc stores the pointer, it does not copy it):
 *   until the next `openlog` replaces it or {@linkcode closelog} drops it.
 * - Control characters in an ident or a message (newline, CR, NUL, …) are
 *   escaped as rsyslog does, `#` and three octal digits (`"\n"` becomes
 *   `#012`), so no text can end a log line early or forge another one.
 *
 * The syslog state is process-wide: use these from one isolate (one Worker)
 * only.
 *
 * @module
 */
import { libc } from "./libc.ts";

/** System is unusable. */
export const LOG_EMERG = 0;
/** Action must be taken immediately. */
export const LOG_ALERT = 1;
/** Critical conditions. */
export const LOG_CRIT = 2;
/** Error conditions. */
export const LOG_ERR = 3;
/** Warning conditions. */
export const LOG_WARNING = 4;
/** Normal but significant condition. */
export const LOG_NOTICE = 5;
/** Informational. */
export const LOG_INFO = 6;
/** Debug-level messages. */
export const LOG_DEBUG = 7;

/** Kernel messages. */
export const LOG_KERN = 0 << 3;
/** Random user-level messages (the default facility). */
export const LOG_USER = 1 << 3;
/** Mail system. */
export const LOG_MAIL = 2 << 3;
/** System daemons. */
export const LOG_DAEMON = 3 << 3;
/** Security/authorization messages. */
export const LOG_AUTH = 4 << 3;
/** Messages generated internally by syslogd. */
export const LOG_SYSLOG = 5 << 3;
/** Line printer subsystem. */
export const LOG_LPR = 6 << 3;
/** Network news subsystem. */
export const LOG_NEWS = 7 << 3;
/** UUCP subsystem. */
export const LOG_UUCP = 8 << 3;
/** Clock daemon. */
export const LOG_CRON = 9 << 3;
/** Security/authorization messages (private). */
export const LOG_AUTHPRIV = 10 << 3;
/** FTP daemon. */
export const LOG_FTP = 11 << 3;
/** Reserved for local use. */
export const LOG_LOCAL0 = 16 << 3;
/** Reserved for local use. */
export const LOG_LOCAL1 = 17 << 3;
/** Reserved for local use. */
export const LOG_LOCAL2 = 18 << 3;
/** Reserved for local use. */
export const LOG_LOCAL3 = 19 << 3;
/** Reserved for local use. */
export const LOG_LOCAL4 = 20 << 3;
/** Reserved for local use. */
export const LOG_LOCAL5 = 21 << 3;
/** Reserved for local use. */
export const LOG_LOCAL6 = 22 << 3;
/** Reserved for local use. */
export const LOG_LOCAL7 = 23 << 3;

/** `openlog` option: log the pid with each message. */
export const LOG_PID = 0x01;
/** `openlog` option: log to the console if the logger cannot be reached. */
export const LOG_CONS = 0x02;
/** `openlog` option: delay opening the connection until the first message (the default). */
export const LOG_ODELAY = 0x04;
/** `openlog` option: open the connection immediately. */
export const LOG_NDELAY = 0x08;
/** `openlog` option: do not wait for console forks (ignored by glibc). */
export const LOG_NOWAIT = 0x10;
/** `openlog` option: also write each message to stderr. */
export const LOG_PERROR = 0x20;

/** The mask that extracts the priority from a priority|facility value. */
export const LOG_PRIMASK = 0x07;
/** The mask that extracts the facility from a priority|facility value. */
export const LOG_FACMASK = 0x03f8;

/**
 * `LOG_MASK(p)`: the {@linkcode setlogmask} bit of one priority.
 *
 * @example
 * ```ts
 * import { LOG_ERR, LOG_MASK } from "@ffinet/ffinet/ffi";
 * LOG_MASK(LOG_ERR); // 8
 * ```
 */
export function LOG_MASK(priority: number): number {
  return 1 << priority;
}

/**
 * `LOG_UPTO(p)`: the {@linkcode setlogmask} bits of every priority from
 * `LOG_EMERG` through `p`.
 *
 * @example
 * ```ts
 * import { LOG_UPTO, LOG_WARNING } from "@ffinet/ffinet/ffi";
 * LOG_UPTO(LOG_WARNING); // 0b11111 = 31
 * ```
 */
export function LOG_UPTO(priority: number): number {
  return (1 << (priority + 1)) - 1;
}

/**
 * Facility values by name, as in `<syslog.h>`'s `facilitynames`
 * (`"security"` is an alias of `"auth"`).
 *
 * @example
 * ```ts
 * import { facilityByName } from "@ffinet/ffinet/ffi";
 * facilityByName.daemon; // 24
 * ```
 */
export const facilityByName: Readonly<Record<string, number>> = Object.freeze({
  auth: LOG_AUTH,
  authpriv: LOG_AUTHPRIV,
  cron: LOG_CRON,
  daemon: LOG_DAEMON,
  ftp: LOG_FTP,
  kern: LOG_KERN,
  lpr: LOG_LPR,
  mail: LOG_MAIL,
  news: LOG_NEWS,
  security: LOG_AUTH,
  syslog: LOG_SYSLOG,
  user: LOG_USER,
  uucp: LOG_UUCP,
  local0: LOG_LOCAL0,
  local1: LOG_LOCAL1,
  local2: LOG_LOCAL2,
  local3: LOG_LOCAL3,
  local4: LOG_LOCAL4,
  local5: LOG_LOCAL5,
  local6: LOG_LOCAL6,
  local7: LOG_LOCAL7,
});

/**
 * Priority values by name, as in `<syslog.h>`'s `prioritynames`
 * (`"panic"`, `"error"` and `"warn"` are aliases).
 *
 * @example
 * ```ts
 * import { priorityByName } from "@ffinet/ffinet/ffi";
 * priorityByName.warning; // 4
 * ```
 */
export const priorityByName: Readonly<Record<string, number>> = Object.freeze({
  emerg: LOG_EMERG,
  panic: LOG_EMERG,
  alert: LOG_ALERT,
  crit: LOG_CRIT,
  err: LOG_ERR,
  error: LOG_ERR,
  warning: LOG_WARNING,
  warn: LOG_WARNING,
  notice: LOG_NOTICE,
  info: LOG_INFO,
  debug: LOG_DEBUG,
});

function lookup(kind: string, table: Readonly<Record<string, number>>, name: string): number {
  const key = name.toLowerCase();
  if (!Object.hasOwn(table, key)) {
    throw new RangeError(`Cannot resolve syslog ${kind}: unknown name "${name}"`);
  }
  return table[key]!;
}

/**
 * The facility value for a name such as `"daemon"` or `"local3"`
 * (case-insensitive). Throws `RangeError` for an unknown name.
 *
 * @example
 * ```ts
 * import { resolveFacility } from "@ffinet/ffinet/ffi";
 * resolveFacility("local0"); // 128
 * ```
 */
export function resolveFacility(name: string): number {
  return lookup("facility", facilityByName, name);
}

/**
 * The priority value for a name such as `"info"` or `"err"`
 * (case-insensitive). Throws `RangeError` for an unknown name.
 *
 * @example
 * ```ts
 * import { resolvePriority } from "@ffinet/ffinet/ffi";
 * resolvePriority("debug"); // 7
 * ```
 */
export function resolvePriority(name: string): number {
  return lookup("priority", priorityByName, name);
}

const encoder = new TextEncoder();
/** C0 control characters but TAB, and DEL: what {@linkcode escapeSyslogControls} rewrites. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\x00-\x08\x0a-\x1f\x7f]/g;
/** Digits of an rsyslog escape: `#` and three octal digits. */
const OCTAL_DIGITS = 3;

/**
 * `text` with every control character but TAB (newline, CR, NUL, ESC, DEL …)
 * written as rsyslog writes it, `#` and three octal digits: `"a\nb"` becomes
 * `"a#012b"`. What {@linkcode syslog} and {@linkcode openlog} log.
 *
 * @example
 * ```ts
 * import { escapeSyslogControls } from "@ffinet/ffinet/ffi";
 * escapeSyslogControls("user\nroot logged in"); // "user#012root logged in"
 * ```
 */
export function escapeSyslogControls(text: string): string {
  return text.replace(
    CONTROL_CHARS,
    (c) => "#" + c.charCodeAt(0).toString(8).padStart(OCTAL_DIGITS, "0"),
  );
}

/** The one format `syslog` is ever called with. */
const FORMAT = encoder.encode("%s\0");
/** The ident buffer libc points at while a log is open. */
let identBuffer: Uint8Array | null = null;

/**
 * `openlog(3)`: set the ident prepended to every message, the `LOG_*`
 * options and the default facility. The ident's bytes stay referenced here
 * until the next `openlog` with an ident or {@linkcode closelog}. Control
 * characters in it are escaped (see {@linkcode escapeSyslogControls}). A `null`
 * ident keeps the current one (glibc's behaviour); the program name is used
 * when none was ever set or after {@linkcode closelog}.
 *
 * @example
 * ```ts
 * import { closelog, LOG_DAEMON, LOG_PID, openlog } from "@ffinet/ffinet/ffi";
 * openlog("mydaemon", LOG_PID, LOG_DAEMON);
 * closelog();
 * ```
 */
export function openlog(ident: string | null, option: number, facility: number): void {
  if (ident === null) {
    // glibc keeps its current ident pointer for a NULL ident, so the buffer
    // it points at (if any) must stay referenced.
    libc.openlog(null, option, facility);
    return;
  }
  const next = encoder.encode(escapeSyslogControls(ident) + "\0");
  libc.openlog(next, option, facility);
  identBuffer = next; // only now may the previous ident be collected
}

/**
 * `syslog(3)`: log `message` at `priority` (a `LOG_*` priority, optionally
 * or-ed with a facility). The message is always passed as the argument of a
 * fixed `"%s"` format, so `%` sequences in it are logged literally, and its
 * control characters are escaped (see {@linkcode escapeSyslogControls}), so a
 * newline, CR or NUL can neither cut it short nor forge a second line.
 *
 * @example
 * ```ts
 * import { LOG_INFO, LOG_USER, setlogmask, syslog } from "@ffinet/ffinet/ffi";
 * const old = setlogmask(0x100); // let nothing through for this example
 * syslog(LOG_USER | LOG_INFO, "100% done");
 * setlogmask(old);
 * ```
 */
export function syslog(priority: number, message: string): void {
  libc.syslog(priority, FORMAT, encoder.encode(escapeSyslogControls(message) + "\0"));
}

/**
 * `closelog(3)`: close the connection to the logger and forget the ident
 * (glibc resets it to the program name), releasing its buffer.
 *
 * @example
 * ```ts
 * import { closelog } from "@ffinet/ffinet/ffi";
 * closelog();
 * ```
 */
export function closelog(): void {
  libc.closelog();
  identBuffer = null;
}

/**
 * `setlogmask(3)`: set which priorities are logged (see {@linkcode LOG_MASK}
 * and {@linkcode LOG_UPTO}) and return the previous mask; 0 only reads it.
 *
 * @example
 * ```ts
 * import { LOG_UPTO, LOG_NOTICE, setlogmask } from "@ffinet/ffinet/ffi";
 * const old = setlogmask(LOG_UPTO(LOG_NOTICE));
 * setlogmask(old);
 * ```
 */
export function setlogmask(mask: number): number {
  return libc.setlogmask(mask);
}

/**
 * The ident bytes currently handed to libc (for tests and diagnostics),
 * or `null` when no ident is set.
 *
 * @example
 * ```ts
 * import { currentIdent } from "@ffinet/ffinet/ffi";
 * currentIdent(); // null before openlog
 * ```
 */
export function currentIdent(): string | null {
  return identBuffer === null ? null : new TextDecoder().decode(identBuffer.subarray(0, -1));
}

/**
 * OpenSSL's error queue as text, and the error ffinet throws when an
 * OpenSSL call fails: "Cannot load certificate: error:0480006C:PEM
 * routines::no start line".
 *
 * OpenSSL keeps a per-thread queue of errors. Every failing call in ffinet
 * takes the whole queue at once ({@linkcode takeOpenSslErrors}), so an old
 * error never shows up in a later message, and clears it before a call
 * whose failure it reports ({@linkcode clearOpenSslErrors}).
 *
 * @module
 */
import { openssl } from "./openssl.ts";
import { checkInteger } from "./validate.ts";

/** How many queued errors one message carries at most (the queue holds 16). */
const MAX_ERRORS = 16;
/** `ERR_error_string_n` needs at least 256 bytes for its longest text. */
const TEXT_BYTES = 256;
const text = new Uint8Array(TEXT_BYTES);
const TEXT_SIZE = BigInt(TEXT_BYTES);
const decoder = new TextDecoder();

/**
 * Empty this thread's OpenSSL error queue (before a call whose failure will
 * be reported, so the report names only its own errors).
 *
 * @example
 * ```ts
 * import { clearOpenSslErrors } from "./openssl_error.ts";
 * clearOpenSslErrors();
 * ```
 */
export function clearOpenSslErrors(): void {
  openssl().crypto.ERR_clear_error();
}

/**
 * Take every error queued on this thread, oldest first, as OpenSSL's own
 * text ("error:0A000086:SSL routines::certificate verify failed"). The
 * queue is empty afterwards.
 *
 * @example
 * ```ts
 * import { takeOpenSslErrors } from "./openssl_error.ts";
 * console.log(takeOpenSslErrors()); // [] when nothing failed
 * ```
 */
export function takeOpenSslErrors(): string[] {
  const { crypto } = openssl();
  const out: string[] = [];
  for (;;) {
    const code = crypto.ERR_get_error();
    if (code === 0n || (code as unknown) === 0) break;
    if (out.length < MAX_ERRORS) out.push(errorText(code));
  }
  return out;
}

/** OpenSSL's text for the packed error code `code` (`ERR_error_string_n`). */
function errorText(code: bigint): string {
  text.fill(0);
  openssl().crypto.ERR_error_string_n(code, text, TEXT_SIZE);
  const end = text.indexOf(0);
  return decoder.decode(text.subarray(0, end < 0 ? TEXT_BYTES : end));
}

/** `ERR_LIB_SSL`, as `ERR_PACK` shifts it. */
const ERR_LIB_SSL_PACKED = 20 * 2 ** 23;

/**
 * OpenSSL's text for SSL-library reason `reason`, as its error queue would
 * hold it ("error:0A000119:SSL routines::decryption failed or bad record
 * mac"); reasons 1000 + n name the alert n received from the peer.
 *
 * @example
 * ```ts
 * import { sslReasonText } from "./openssl_error.ts";
 * sslReasonText(281); // "error:0A000119:SSL routines::decryption failed or bad record mac"
 * ```
 */
export function sslReasonText(reason: number): string {
  checkInteger("name SSL error", "reason", reason, 0, 0x7fffff);
  return errorText(BigInt(ERR_LIB_SSL_PACKED + reason));
}

/**
 * An OpenSSL call failed. `message` reads "Cannot <action>: <detail or
 * OpenSSL's errors>"; `errors` holds OpenSSL's error queue as it was.
 *
 * @example
 * ```ts
 * import { OpenSslError } from "@ffinet/ffinet/tls";
 * const e = new OpenSslError("load certificate", ["error:0480006C:PEM routines::no start line"]);
 * console.log(e.message); // Cannot load certificate: error:0480006C:PEM routines::no start line
 * ```
 */
export class OpenSslError extends Error {
  /** OpenSSL's error queue at the failure, oldest first (may be empty). */
  readonly errors: readonly string[];
  /** What was being done ("load certificate", "complete TLS handshake" …). */
  readonly action: string;
  /** ffinet's own reason, when it has one ("the key is encrypted and no passphrase was given"). */
  readonly detail: string | undefined;

  /**
   * `errors` defaults to the queue taken now; `detail` (when given) comes
   * first in the message, the queue after it.
   */
  constructor(action: string, errors: readonly string[] = takeOpenSslErrors(), detail?: string) {
    const parts = [detail, errors.join("; ")].filter((p) => p !== undefined && p !== "");
    super(`Cannot ${action}: ${parts.join(": ") || "OpenSSL reported no reason"}`);
    this.name = "OpenSslError";
    this.errors = errors;
    this.action = action;
    this.detail = detail;
  }
}

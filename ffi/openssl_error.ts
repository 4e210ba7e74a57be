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
    if (out.length < MAX_ERRORS) {
      text.fill(0);
      crypto.ERR_error_string_n(code, text, TEXT_SIZE);
      const end = text.indexOf(0);
      out.push(decoder.decode(text.subarray(0, end < 0 ? TEXT_BYTES : end)));
    }
  }
  return out;
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

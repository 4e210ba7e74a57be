/**
 * errno: reading it safely, naming it, and the typed error ffinet throws.
 *
 * errno is read through an `Int32Array` over `__errno_location()`, fetched once
 * per isolate (each Worker is its own thread with its own errno). It must be
 * read in the very next expression after the failing call: any JavaScript that
 * allocates in between can run a GC whose own syscalls overwrite it.
 *
 * @module
 */
import { libc } from "./libc.ts";

const errnoPointer = libc.__errno_location();
if (errnoPointer === null) throw new Error("Cannot read errno: __errno_location returned NULL");

/**
 * A live view of this thread's errno. Read `errnoCell[0]` immediately after
 * a call that returned -1, before anything else runs.
 *
 * @example
 * ```ts
 * import { errnoCell } from "@ffinet/ffinet/ffi";
 * import { libc } from "@ffinet/ffinet/ffi";
 * if (libc.close(-1) < 0) console.log(errnoCell[0]); // 9 (EBADF)
 * ```
 */
export const errnoCell: Int32Array = new Int32Array(
  Deno.UnsafePointerView.getArrayBuffer(errnoPointer, 4),
);

const NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  8: "ENOEXEC",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  15: "ENOTBLK",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  25: "ENOTTY",
  26: "ETXTBSY",
  27: "EFBIG",
  28: "ENOSPC",
  29: "ESPIPE",
  30: "EROFS",
  31: "EMLINK",
  32: "EPIPE",
  33: "EDOM",
  34: "ERANGE",
  35: "EDEADLK",
  36: "ENAMETOOLONG",
  37: "ENOLCK",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  40: "ELOOP",
  42: "ENOMSG",
  43: "EIDRM",
  44: "ECHRNG",
  45: "EL2NSYNC",
  46: "EL3HLT",
  47: "EL3RST",
  48: "ELNRNG",
  49: "EUNATCH",
  50: "ENOCSI",
  51: "EL2HLT",
  52: "EBADE",
  53: "EBADR",
  54: "EXFULL",
  55: "ENOANO",
  56: "EBADRQC",
  57: "EBADSLT",
  59: "EBFONT",
  60: "ENOSTR",
  61: "ENODATA",
  62: "ETIME",
  63: "ENOSR",
  64: "ENONET",
  65: "ENOPKG",
  66: "EREMOTE",
  67: "ENOLINK",
  68: "EADV",
  69: "ESRMNT",
  70: "ECOMM",
  71: "EPROTO",
  72: "EMULTIHOP",
  73: "EDOTDOT",
  74: "EBADMSG",
  75: "EOVERFLOW",
  76: "ENOTUNIQ",
  77: "EBADFD",
  78: "EREMCHG",
  79: "ELIBACC",
  80: "ELIBBAD",
  81: "ELIBSCN",
  82: "ELIBMAX",
  83: "ELIBEXEC",
  84: "EILSEQ",
  85: "ERESTART",
  86: "ESTRPIPE",
  87: "EUSERS",
  88: "ENOTSOCK",
  89: "EDESTADDRREQ",
  90: "EMSGSIZE",
  91: "EPROTOTYPE",
  92: "ENOPROTOOPT",
  93: "EPROTONOSUPPORT",
  94: "ESOCKTNOSUPPORT",
  95: "EOPNOTSUPP",
  96: "EPFNOSUPPORT",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  102: "ENETRESET",
  103: "ECONNABORTED",
  104: "ECONNRESET",
  105: "ENOBUFS",
  106: "EISCONN",
  107: "ENOTCONN",
  108: "ESHUTDOWN",
  109: "ETOOMANYREFS",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  112: "EHOSTDOWN",
  113: "EHOSTUNREACH",
  114: "EALREADY",
  115: "EINPROGRESS",
  116: "ESTALE",
  117: "EUCLEAN",
  118: "ENOTNAM",
  119: "ENAVAIL",
  120: "EISNAM",
  121: "EREMOTEIO",
  122: "EDQUOT",
  123: "ENOMEDIUM",
  124: "EMEDIUMTYPE",
  125: "ECANCELED",
  126: "ENOKEY",
  127: "EKEYEXPIRED",
  128: "EKEYREVOKED",
  129: "EKEYREJECTED",
  130: "EOWNERDEAD",
  131: "ENOTRECOVERABLE",
  132: "ERFKILL",
};

/**
 * Linux errno numbers by name (the values shared by x86_64 and aarch64).
 *
 * @example
 * ```ts
 * import { Errno } from "@ffinet/ffinet/ffi";
 * console.log(Errno.EAGAIN); // 11
 * ```
 */
export const Errno: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries(
    Object.entries(NAMES).map(([n, name]) => [name, Number(n)]),
  ),
);

/** errno values the hot paths compare against, as plain constants. */
export const EAGAIN = 11;
/** Interrupted system call. */
export const EINTR = 4;
/** Operation now in progress (non-blocking connect). */
export const EINPROGRESS = 115;
/** Too many open files in this process. */
export const EMFILE = 24;
/** Too many open files in the system. */
export const ENFILE = 23;
/** Bad file descriptor. */
export const EBADF = 9;
/** Broken pipe. */
export const EPIPE = 32;
/** Connection reset by peer. */
export const ECONNRESET = 104;
/** Connection refused. */
export const ECONNREFUSED = 111;
/** Connection timed out. */
export const ETIMEDOUT = 110;
/** Address already in use. */
export const EADDRINUSE = 98;
/** No such file or directory. */
export const ENOENT = 2;
/** File exists. */
export const EEXIST = 17;
/** Invalid argument. */
export const EINVAL = 22;
/** Connection aborted. */
export const ECONNABORTED = 103;

/**
 * The symbolic name of an errno value, such as `"EADDRINUSE"` for 98.
 *
 * @example
 * ```ts
 * import { errnoName } from "@ffinet/ffinet/ffi";
 * console.log(errnoName(98)); // "EADDRINUSE"
 * ```
 */
export function errnoName(errno: number): string {
  return NAMES[errno] ?? `E${errno}`;
}

/**
 * libc's description of an errno value, such as "Address already in use".
 *
 * @example
 * ```ts
 * import { strerror } from "@ffinet/ffinet/ffi";
 * console.log(strerror(111)); // "Connection refused"
 * ```
 */
export function strerror(errno: number): string {
  const p = libc.strerror(errno);
  return p === null ? `errno ${errno}` : Deno.UnsafePointerView.getCString(p);
}

/** Options for {@linkcode ErrnoError}. */
export interface ErrnoErrorOptions {
  /** More context appended to the message, e.g. the address. */
  detail?: string;
  /** The underlying cause, if any. */
  cause?: unknown;
}

/** A `Deno.errors` class. */
type ErrorClass = new (message?: string, options?: ErrorOptions) => Error;

// The `Deno.errors` class of each errno Deno reports with one (as
// `Deno.listen`/`Deno.connect` do).
const DENO_ERROR_CLASSES: ReadonlyMap<number, ErrorClass> = new Map<number, ErrorClass>([
  [1, Deno.errors.PermissionDenied], // EPERM
  [2, Deno.errors.NotFound], // ENOENT
  [4, Deno.errors.Interrupted], // EINTR
  [11, Deno.errors.WouldBlock], // EAGAIN
  [13, Deno.errors.PermissionDenied], // EACCES
  [17, Deno.errors.AlreadyExists], // EEXIST
  [32, Deno.errors.BrokenPipe], // EPIPE
  [98, Deno.errors.AddrInUse], // EADDRINUSE
  [99, Deno.errors.AddrNotAvailable], // EADDRNOTAVAIL
  [101, Deno.errors.NetworkUnreachable], // ENETUNREACH
  [103, Deno.errors.ConnectionAborted], // ECONNABORTED
  [104, Deno.errors.ConnectionReset], // ECONNRESET
  [107, Deno.errors.NotConnected], // ENOTCONN
  [110, Deno.errors.TimedOut], // ETIMEDOUT
  [111, Deno.errors.ConnectionRefused], // ECONNREFUSED
]);

/**
 * The `Deno.errors` class Deno reports for `errno` (`ECONNRESET`:
 * `Deno.errors.ConnectionReset`, …), or `undefined` where Deno has none.
 *
 * @example
 * ```ts
 * import { denoErrorClass } from "@ffinet/ffinet/ffi";
 * console.log(denoErrorClass(104) === Deno.errors.ConnectionReset); // true
 * ```
 */
export function denoErrorClass(
  errno: number,
): (new (message?: string, options?: ErrorOptions) => Error) | undefined {
  return DENO_ERROR_CLASSES.get(errno);
}

// For each such class, the prototype of an ErrnoError of that errno: the
// class's prototype extended with ErrnoError's members, so the error is
// `instanceof` both (ErrnoError's own check is `Symbol.hasInstance` below).
const PROTOTYPES = new Map<ErrorClass, object>();
const BRAND = new WeakSet<object>();

/**
 * A failed system call: the call's name, the errno number and its name.
 *
 * The message reads `Cannot bind: EADDRINUSE (Address already in use)`.
 * Where Deno has an error class for the errno, the error is also an
 * instance of it, as Deno's own calls throw: `EADDRINUSE` is
 * `instanceof Deno.errors.AddrInUse`, `ECONNRESET` of
 * `Deno.errors.ConnectionReset`, `ECONNREFUSED` of
 * `Deno.errors.ConnectionRefused`, `ENOENT` of `Deno.errors.NotFound`, and
 * so on for EPERM/EACCES, EINTR, EAGAIN, EEXIST, EPIPE, EADDRNOTAVAIL,
 * ENETUNREACH, ECONNABORTED, ENOTCONN and ETIMEDOUT.
 *
 * @example
 * ```ts
 * import { ErrnoError } from "@ffinet/ffinet/ffi";
 * const e = new ErrnoError("bind", 98, { detail: "127.0.0.1:80" });
 * console.log(e.code, e.errno, e.syscall, e.message);
 * console.log(e instanceof Deno.errors.AddrInUse, e instanceof ErrnoError); // true true
 * ```
 */
export class ErrnoError extends Error {
  /** The errno number, e.g. 98. */
  readonly errno: number;
  /** The errno name, e.g. `"EADDRINUSE"`. */
  readonly code: string;
  /** The call that failed, e.g. `"bind"`. */
  readonly syscall: string;

  /** An error for `syscall` failing with `errno`. */
  constructor(syscall: string, errno: number, options: ErrnoErrorOptions = {}) {
    const code = errnoName(errno);
    const detail = options.detail === undefined ? "" : ` [${options.detail}]`;
    super(
      `Cannot ${syscall}: ${code} (${strerror(errno)})${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "ErrnoError";
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
    BRAND.add(this);
    const denoClass = new.target === ErrnoError ? DENO_ERROR_CLASSES.get(errno) : undefined;
    if (denoClass !== undefined) {
      let proto = PROTOTYPES.get(denoClass);
      if (proto === undefined) {
        proto = Object.create(
          denoClass.prototype,
          Object.getOwnPropertyDescriptors(ErrnoError.prototype),
        ) as object;
        PROTOTYPES.set(denoClass, proto);
      }
      Object.setPrototypeOf(this, proto);
    }
  }

  /**
   * Whether `value` is an `ErrnoError` (also one whose prototype is that of
   * its `Deno.errors` class). Subclasses check their prototype chain as usual.
   */
  static override [Symbol.hasInstance](value: unknown): value is ErrnoError {
    if (this !== ErrnoError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && BRAND.has(value);
  }
}

/**
 * Throw an {@linkcode ErrnoError} for a result that is a negated errno
 * (the convention of ffinet's raw wrappers); return the result otherwise.
 *
 * @example
 * ```ts
 * import { check } from "@ffinet/ffinet/ffi";
 * const n = check("read", 5); // 5
 * ```
 */
export function check(syscall: string, result: number, detail?: string): number {
  if (result < 0) {
    throw new ErrnoError(syscall, -result, detail === undefined ? {} : { detail });
  }
  return result;
}

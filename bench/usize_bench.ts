/**
 * How to pass a `size_t` through Deno's FFI fast call (the `usize` parameter
 * of read/write/recv/send): a `number`, a fresh `BigInt(n)` per call, or a
 * cached BigInt as `ffi/syscalls.ts` does. Measures the FFI overhead alone
 * with `strnlen(buf, n)` on a zeroed buffer (returns at once).
 *
 *   deno bench --allow-ffi bench/usize_bench.ts
 *
 * One loop, timed: `deno run --allow-ffi bench/usize_bench.ts <number|bigint|cached>`.
 * Allocation: the same with `--v8-flags=--trace-gc`, counting the scavenges
 * (tracing slows the allocating loop down: time it without).
 * Measured on Deno 2.9.6, x86_64 (2 shared cores), medians of 3 runs of 10M
 * calls each: number 6-9x the cached BigInt's time and no scavenge; fresh
 * BigInt about 2x and 251 scavenges (one per ~44,000 calls); cached BigInt 1x
 * and no scavenge. `deno bench` (means, outliers included): number 4.7x,
 * fresh BigInt 1.5x the cached BigInt.
 */
const lib = Deno.dlopen("libc.so.6", {
  // size_t strnlen(const char *s, size_t maxlen);   (result read as i32: never > 64 here)
  strnlen: { parameters: ["buffer", "usize"], result: "i32" },
});
const strnlen = lib.symbols.strnlen;
const buf = new Uint8Array(64);
let len = 16; // let: not a constant V8 could fold

const SLOTS = 256;
const keys = new Float64Array(SLOTS).fill(-1);
const values: bigint[] = new Array<bigint>(SLOTS).fill(0n);
/** The same direct-mapped cache as `sizeArg` in `ffi/syscalls.ts`. */
function cached(n: number): bigint {
  const slot = n & (SLOTS - 1);
  if (keys[slot] === n) return values[slot]!;
  const big = BigInt(n);
  keys[slot] = n;
  values[slot] = big;
  return big;
}

const loops: Record<string, (n: number) => number> = {
  number(n) {
    let x = 0;
    // Deno types `usize` as bigint, but accepts a number too (off the fast path).
    for (let i = 0; i < n; i++) x += strnlen(buf, (len + (i & 1)) as unknown as bigint);
    return x;
  },
  bigint(n) {
    let x = 0;
    for (let i = 0; i < n; i++) x += strnlen(buf, BigInt(len + (i & 1)));
    return x;
  },
  cached(n) {
    let x = 0;
    for (let i = 0; i < n; i++) x += strnlen(buf, cached(len + (i & 1)));
    return x;
  },
};

if (import.meta.main && Deno.args.length > 0) {
  // `deno run … usize_bench.ts <number|bigint|cached>`: one loop, timed (pair with --trace-gc).
  const loop = loops[Deno.args[0]!];
  if (loop === undefined) throw new Error(`Cannot bench: unknown loop "${Deno.args[0]}"`);
  for (let w = 0; w < 5; w++) loop(200_000);
  const t0 = performance.now();
  loop(10_000_000);
  console.log(
    `${Deno.args[0]}: ${((performance.now() - t0) * 1e6 / 10_000_000).toFixed(1)} ns/call`,
  );
  len++;
} else {
  for (const [name, loop] of Object.entries(loops)) {
    Deno.bench({ name: `usize as ${name}`, group: "usize", baseline: name === "cached" }, () => {
      loop(1000);
    });
  }
}

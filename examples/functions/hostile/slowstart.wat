;; SPDX-License-Identifier: Apache-2.0
;; hostile/slowstart: spins for 10^10 iterations (seconds to tens of seconds) before its first
;; byte of output, then writes "late\n"; exercises the host's first-byte timeout.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "late\n")
  (global $sink (mut i64) (i64.const 0))

  (func (export "_start")
    (local $i i64)
    (local $acc i64)
    (loop $spin
      ;; a little arithmetic per turn, kept in a global so no engine drops the loop
      (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 6364136223846793005))
                               (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $spin (i64.lt_u (local.get $i) (i64.const 10000000000))))
    (global.set $sink (local.get $acc))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))

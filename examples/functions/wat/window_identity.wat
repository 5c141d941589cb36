;; SPDX-License-Identifier: Apache-2.0
;; window_identity: copies its input to stdout unchanged, through the input window (ABI v2):
;; the host writes each piece of input straight into the 64 KiB window at page 1, and the
;; module writes it out from there. The smallest window module.
(module
  (import "quarry" "input_window" (func $input_window (param i32 i32) (result i32)))
  (import "quarry" "input_next" (func $input_next (result i64)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Page 0: the write iovec (0) and bytes written (8). Page 1: the window.
  (memory (export "memory") 2)

  (func (export "_start")
    (local $n i64)
    (local $len i32)
    (local $off i32)
    (if (call $input_window (i32.const 65536) (i32.const 65536))
      (then (call $proc_exit (i32.const 2))))
    (block $eof
      (loop $next
        (local.set $n (call $input_next))
        (br_if $eof (i64.eqz (local.get $n)))
        (if (i64.lt_s (local.get $n) (i64.const 0))
          (then (call $proc_exit (i32.const 1))))
        (local.set $len (i32.wrap_i64 (local.get $n)))
        (local.set $off (i32.const 0))
        ;; fd_write may write less than asked: loop until the whole piece is out.
        (loop $write
          (i32.store (i32.const 0) (i32.add (i32.const 65536) (local.get $off)))
          (i32.store (i32.const 4) (i32.sub (local.get $len) (local.get $off)))
          (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
            (then (call $proc_exit (i32.const 1))))
          (local.set $off (i32.add (local.get $off) (i32.load (i32.const 8))))
          (br_if $write (i32.lt_u (local.get $off) (local.get $len))))
        (br $next)))))

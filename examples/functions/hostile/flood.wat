;; SPDX-License-Identifier: Apache-2.0
;; hostile/flood: writes 1 GiB + 64 KiB of 'x' in 64 KiB writes without reading its input;
;; the host must stop it at its output limit. If fd_write fails (the host closed the output)
;; it exits 1; if it gets everything out it exits 0.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Page 0: iovec at 0, bytes written at 8. Page 1: the buffer.
  (memory (export "memory") 2)

  (func (export "_start")
    (local $i i32)
    (local $total i64)
    ;; fill the buffer with 'x', 8 bytes at a time
    (loop $fill
      (i64.store (i32.add (i32.const 65536) (local.get $i)) (i64.const 0x7878787878787878))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 65536))))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $write
      (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
        (then (call $proc_exit (i32.const 1))))
      (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (i32.load (i32.const 8)))))
      ;; 1 GiB + 64 KiB
      (br_if $write (i64.lt_u (local.get $total) (i64.const 1073807360))))))

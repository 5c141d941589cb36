;; SPDX-License-Identifier: Apache-2.0
;; identity: copies stdin to stdout unchanged, 64 KiB at a time. The smallest useful
;; function: a baseline for the host's streaming cost.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Page 0: iovecs and result counts (0: read iovec, 8: bytes read, 16: write iovec,
  ;; 24: bytes written). Page 1: the 64 KiB buffer.
  (memory (export "memory") 2)

  (func (export "_start")
    (local $n i32)
    (local $off i32)
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (i32.const 65536))
        (i32.store (i32.const 4) (i32.const 65536))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $off (i32.const 0))
        ;; fd_write may write less than asked: loop until the whole chunk is out.
        (loop $write
          (i32.store (i32.const 16) (i32.add (i32.const 65536) (local.get $off)))
          (i32.store (i32.const 20) (i32.sub (local.get $n) (local.get $off)))
          (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))
            (then (call $proc_exit (i32.const 1))))
          (local.set $off (i32.add (local.get $off) (i32.load (i32.const 24))))
          (br_if $write (i32.lt_u (local.get $off) (local.get $n))))
        (br $read)))))

;; SPDX-License-Identifier: Apache-2.0
;; hostile/grow: grows its memory by 16 pages (1 MiB) at a time and touches each new MiB, so the
;; pages are really committed, until memory.grow fails (the host's memory limit); then traps.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (local $old i32)
    (loop $grow
      (local.set $old (memory.grow (i32.const 16)))
      (if (i32.eq (local.get $old) (i32.const -1))
        (then unreachable))
      ;; old size in pages * 64 KiB = the first byte of the new region
      (i32.store8 (i32.shl (local.get $old) (i32.const 16)) (i32.const 1))
      (br $grow))))

;; SPDX-License-Identifier: Apache-2.0
;; hostile/loop: never returns; the host must stop it by its CPU-time or wall-clock limit.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      (br $forever))))

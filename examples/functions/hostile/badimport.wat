;; SPDX-License-Identifier: Apache-2.0
;; hostile/badimport: imports a function no host provides; deploying or instantiating it must
;; fail cleanly with an error naming the import.
(module
  (import "env" "launch_missiles" (func $launch_missiles))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $launch_missiles)))

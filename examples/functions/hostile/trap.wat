;; SPDX-License-Identifier: Apache-2.0
;; hostile/trap: traps at once (unreachable); the request must fail with an error naming the
;; function, and the daemon must carry on.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    unreachable))

;; SPDX-License-Identifier: Apache-2.0
;; noop: returns at once without reading or writing; measures the cost of starting an
;; instance.
(module
  (memory (export "memory") 1)
  (func (export "_start")))

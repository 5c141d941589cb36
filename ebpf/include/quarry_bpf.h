/* SPDX-License-Identifier: Apache-2.0 */
/*
 * quarry_bpf.h: the helper ABI of Quarry's smart-SSD device programs (eBPF).
 *
 * A device program is an eBPF ELF object (`clang -target bpf -O2 -c prog.c -o prog.o`) with
 * one function in section "quarry/chunk", called once per chunk of whole records, and
 * optionally one in section "quarry/finish", called once after the last chunk (a reduce
 * emits its result there). Both take a `struct quarry_ctx *` and return 0 on success; any
 * other value fails the job with that code in the error.
 *
 * Memory: the program may read the chunk (ctx->data .. ctx->data + ctx->len), read and write
 * the job's state area (ctx->state, ctx->state_len bytes, zeroed when the job starts and kept
 * between chunks), its stack (512 bytes per call frame) and its own read-only data (string
 * constants, lookup tables). Every access is bounds-checked: one outside those areas stops the
 * job with an error naming the address, never undefined behaviour. Writable globals (.data,
 * .bss) are refused at load: keep what must persist in the state area.
 *
 * Every chunk runs under an instruction budget; a program that runs past it is stopped.
 * Functions other than the two entry points must be inlined (`static __always_inline`).
 * See docs/ebpf.md.
 */
#ifndef QUARRY_BPF_H
#define QUARRY_BPF_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef long long __s64;

/* The context of one call. Pointers are 64-bit addresses in the program's address space. */
struct quarry_ctx {
	__u64 data;      /* the chunk's first byte (read-only) */
	__u64 len;       /* the chunk's length in bytes; 0 in "quarry/finish" */
	__u64 state;     /* the job's state area (read-write, kept between calls) */
	__u64 state_len; /* its size in bytes */
	__u64 chunk;     /* 0-based index of this chunk in the job; the chunk count in finish */
};

/* Appends len bytes at buf to the job's output. Returns 0, or -1 when the output limit is
 * reached (the job then fails). */
static __s64 (*quarry_emit)(const void *buf, __u64 len) = (void *)1;

/* Copies the value of parameter `name` (name_len bytes, no terminator needed) into buf, at most
 * buf_len bytes. Returns the value's full length, or -1 when the parameter is not set. */
static __s64 (*quarry_param)(const char *name, __u64 name_len, void *buf, __u64 buf_len) =
	(void *)2;

/* Appends the decimal text of value to the output (no newline). Returns as quarry_emit. */
static __s64 (*quarry_emit_u64)(__u64 value) = (void *)3;

#define QUARRY_CHUNK __attribute__((section("quarry/chunk"), used))
#define QUARRY_FINISH __attribute__((section("quarry/finish"), used))

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* The address in a ctx field as a pointer. */
#define QUARRY_PTR(type, field) ((type)(unsigned long)(field))

#endif /* QUARRY_BPF_H */

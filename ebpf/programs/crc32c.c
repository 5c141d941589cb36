/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c: the CRC-32C (Castagnoli) of the whole input, emitted as 8 lowercase hex digits and a
 * newline. The device twin of the built-in `crc32c` kernel.
 *
 * The 256-entry table is built in the state area by the first call, then each byte costs one
 * table step. Framing: bytes (any cut works: the CRC register carries over).
 */
#include "quarry_bpf.h"

#define POLY 0x82f63b78u

struct state {
	__u32 ready;
	__u32 crc; /* the CRC register, inverted: ~0 before any byte */
	__u32 table[256];
};

static __always_inline void build_table(struct state *st)
{
	for (__u32 n = 0; n < 256; n++) {
		__u32 c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		st->table[n] = c;
	}
	st->crc = 0xffffffffu;
	st->ready = 1;
}

QUARRY_CHUNK int crc32c_chunk(struct quarry_ctx *ctx)
{
	struct state *st = QUARRY_PTR(struct state *, ctx->state);
	const __u8 *data = QUARRY_PTR(const __u8 *, ctx->data);
	__u64 len = ctx->len;

	if (ctx->state_len < sizeof(*st))
		return 1;
	if (!st->ready)
		build_table(st);
	__u32 crc = st->crc;
	for (__u64 i = 0; i < len; i++)
		crc = st->table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
	st->crc = crc;
	return 0;
}

QUARRY_FINISH int crc32c_finish(struct quarry_ctx *ctx)
{
	struct state *st = QUARRY_PTR(struct state *, ctx->state);
	__u32 crc = st->ready ? ~st->crc : 0;
	char text[9];

	for (int i = 7; i >= 0; i--) {
		__u32 digit = crc & 0xf;
		text[i] = digit < 10 ? '0' + digit : 'a' + digit - 10;
		crc >>= 4;
	}
	text[8] = '\n';
	return quarry_emit(text, 9) < 0 ? 2 : 0;
}

char LICENSE[] __attribute__((section("license"), used)) = "Apache-2.0";

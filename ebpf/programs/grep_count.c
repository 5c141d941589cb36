/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grep-count: how many lines hold a literal pattern (case-sensitive); emits "N\n" at the end.
 * The device twin of the built-in `grep` kernel with mode=count.
 *
 * Parameter: pattern (1..1024 bytes, no newline). Framing: lines, so a line never straddles
 * two chunks and the count is the sum over chunks.
 */
#include "quarry_bpf.h"

#define MAX_PATTERN 1024

struct state {
	__u64 ready;
	__u64 lines;
	__u64 pattern_len;
	__u8 pattern[MAX_PATTERN];
};

QUARRY_CHUNK int grep_count_chunk(struct quarry_ctx *ctx)
{
	struct state *st = QUARRY_PTR(struct state *, ctx->state);
	const __u8 *data = QUARRY_PTR(const __u8 *, ctx->data);
	__u64 len = ctx->len;

	if (ctx->state_len < sizeof(*st))
		return 1;
	if (!st->ready) {
		__s64 n = quarry_param("pattern", 7, st->pattern, MAX_PATTERN);
		if (n <= 0 || n > MAX_PATTERN)
			return 2;
		st->pattern_len = n;
		st->ready = 1;
	}
	__u64 plen = st->pattern_len;
	__u8 first = st->pattern[0];
	__u64 i = 0;
	while (i < len) {
		/* i is the start of a line: look for the pattern up to its end. */
		int found = 0;
		__u64 j = i;
		while (j < len && data[j] != '\n') {
			if (!found && data[j] == first && j + plen <= len) {
				__u64 k = 1;
				while (k < plen && data[j + k] == st->pattern[k])
					k++;
				if (k == plen)
					found = 1;
			}
			j++;
		}
		if (found)
			st->lines++;
		i = j + 1;
	}
	return 0;
}

QUARRY_FINISH int grep_count_finish(struct quarry_ctx *ctx)
{
	struct state *st = QUARRY_PTR(struct state *, ctx->state);
	char newline = '\n';

	if (quarry_emit_u64(st->lines) < 0 || quarry_emit(&newline, 1) < 0)
		return 3;
	return 0;
}

char LICENSE[] __attribute__((section("license"), used)) = "Apache-2.0";

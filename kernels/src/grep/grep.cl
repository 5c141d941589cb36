/* SPDX-License-Identifier: Apache-2.0
 * grep: lines holding a literal pattern. consts: u32 pattern length, u32 ignore_case (0/1),
 * then the pattern (already ASCII-lowercased by the host when ignore_case is set).
 * Entry points: grep_count + grep_emit (lines mode, CountEmit) and grep_tally (count mode,
 * Fixed: one u32 per work-item, the number of matching lines starting in its block). */

uchar grep_fold(uchar c, uint ignore_case) {
    return (ignore_case != 0 && c >= 'A' && c <= 'Z') ? (uchar)(c + 32) : c;
}

/* Whether in[s..e) holds the pattern. */
int grep_line_matches(__global const uchar *in, ulong s, ulong e,
                             __global const uchar *consts) {
    uint plen = qk_rd32(consts);
    uint ic = qk_rd32(consts + 4);
    __global const uchar *pat = consts + 8;
    if (e - s < (ulong)plen) {
        return 0;
    }
    uchar p0 = pat[0];
    for (ulong i = s; i + plen <= e; i++) {
        if (grep_fold(in[i], ic) != p0) {
            continue;
        }
        uint k = 1;
        while (k < plen && grep_fold(in[i + k], ic) == pat[k]) {
            k++;
        }
        if (k == plen) {
            return 1;
        }
    }
    return 0;
}

__kernel void grep_count(__global const uchar *in, const ulong len,
                         __global const uchar *consts, __global const uint *prefix,
                         __global uint *counts) {
    ulong i = get_global_id(0);
    ulong b = i * QK_BLOCK;
    if (b >= len) {
        return;
    }
    ulong bend = min(b + QK_BLOCK, len);
    uint total = 0;
    ulong s = qk_first_line_start(in, len, b);
    while (s < bend) {
        ulong e = qk_line_end(in, len, s);
        ulong next = e < len ? e + 1 : len;
        if (grep_line_matches(in, s, e, consts)) {
            total += (uint)(next - s);
        }
        s = next;
    }
    counts[i] = total;
}

__kernel void grep_emit(__global const uchar *in, const ulong len,
                        __global const uchar *consts, __global const uint *prefix,
                        __global const uint *offsets, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong b = i * QK_BLOCK;
    if (b >= len) {
        return;
    }
    ulong bend = min(b + QK_BLOCK, len);
    __global uchar *o = out + offsets[i];
    ulong s = qk_first_line_start(in, len, b);
    while (s < bend) {
        ulong e = qk_line_end(in, len, s);
        ulong next = e < len ? e + 1 : len;
        if (grep_line_matches(in, s, e, consts)) {
            for (ulong k = s; k < next; k++) {
                *o++ = in[k];
            }
        }
        s = next;
    }
}

__kernel void grep_tally(__global const uchar *in, const ulong len,
                         __global const uchar *consts, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong b = i * QK_BLOCK;
    if (b >= len) {
        return;
    }
    ulong bend = min(b + QK_BLOCK, len);
    uint lines = 0;
    ulong s = qk_first_line_start(in, len, b);
    while (s < bend) {
        ulong e = qk_line_end(in, len, s);
        if (grep_line_matches(in, s, e, consts)) {
            lines++;
        }
        s = e < len ? e + 1 : len;
    }
    qk_wr32(out + i * 4, lines);
}

/* SPDX-License-Identifier: Apache-2.0
 * csv-agg: per-block partial aggregates of one column, added up on the host.
 * consts: the where predicate (24 bytes, see csv_common.cl; zeros without one), u32 has_where,
 * u32 column, then the where value's bytes.
 * Entry points (CountEmit): csv_quote_scan, csv_agg_count, csv_agg_emit. Every block writes one
 * 48-byte partial: count, skipped, sum low word, sum high word, min, max (u64/i64, little
 * endian); the sum is a 128-bit two's-complement integer, so it never overflows. */

#define CA_PARTIAL 48

__kernel void csv_agg_count(__global const uchar *in, const ulong len,
                            __global const uchar *consts, __global const uint *prefix,
                            __global uint *counts) {
    ulong i = get_global_id(0);
    if (i * QC_BLOCK >= len) {
        return;
    }
    counts[i] = CA_PARTIAL;
}

__kernel void csv_agg_emit(__global const uchar *in, const ulong len,
                           __global const uchar *consts, __global const uint *prefix,
                           __global const uint *offsets, __global uchar *out) {
    ulong i = get_global_id(0);
    if (i * QC_BLOCK >= len) {
        return;
    }
    uint has_where = qc_rd32(consts + 24);
    uint col = qc_rd32(consts + 28);
    __global const uchar *v = consts + 32;
    ulong be = qc_block_end(len, i);
    ulong r = qc_first_row(in, len, i, prefix[i] & 1);
    ulong count = 0, skipped = 0, lo = 0;
    long hi = 0, mn = LONG_MAX, mx = LONG_MIN;
    while (r < be) {
        ulong end;
        if (has_where && !qc_row_matches(in, len, r, &end, consts, v)) {
            r = end;
            continue;
        }
        ulong fs = 0, fe = 0;
        int found;
        long x;
        end = qc_scan_row(in, len, r, col, &fs, &fe, &found);
        if (found && qc_parse_decimal(in, fs, fe, &x)) {
            count++;
            /* (hi, lo) += x sign-extended to 128 bits. */
            ulong old = lo;
            lo += (ulong)x;
            hi += (x < 0 ? -1L : 0L) + (lo < old ? 1L : 0L);
            mn = min(mn, x);
            mx = max(mx, x);
        } else {
            skipped++;
        }
        r = end;
    }
    __global uchar *o = out + offsets[i];
    qc_wr64(o, count);
    qc_wr64(o + 8, skipped);
    qc_wr64(o + 16, lo);
    qc_wr64(o + 24, (ulong)hi);
    qc_wr64(o + 32, (ulong)mn);
    qc_wr64(o + 40, (ulong)mx);
}

/* SPDX-License-Identifier: Apache-2.0
 * csv-filter: the rows whose field matches a predicate, verbatim or projected.
 * consts: the predicate (24 bytes, see csv_common.cl), u32 n_select, n_select u32 column
 * indexes (0: emit rows verbatim), then the value's bytes.
 * Entry points (CountEmit): csv_quote_scan, csv_filter_count, csv_filter_emit. */

/* The length of the projection of the row at r: the selected fields, ',' between, '\n'. */
uint csv_filter_projected_len(__global const uchar *in, ulong len, ulong r,
                              __global const uchar *sel, uint nsel) {
    uint n = nsel;
    for (uint j = 0; j < nsel; j++) {
        ulong fs = 0, fe = 0;
        int found;
        qc_scan_row(in, len, r, qc_rd32(sel + 4 * j), &fs, &fe, &found);
        if (found) {
            n += (uint)(fe - fs);
        }
    }
    return n;
}

__kernel void csv_filter_count(__global const uchar *in, const ulong len,
                               __global const uchar *consts, __global const uint *prefix,
                               __global uint *counts) {
    ulong i = get_global_id(0);
    if (i * QC_BLOCK >= len) {
        return;
    }
    uint nsel = qc_rd32(consts + 24);
    __global const uchar *sel = consts + 28;
    __global const uchar *v = sel + 4 * nsel;
    ulong be = qc_block_end(len, i);
    ulong r = qc_first_row(in, len, i, prefix[i] & 1);
    uint n = 0;
    while (r < be) {
        ulong end;
        if (qc_row_matches(in, len, r, &end, consts, v)) {
            n += nsel == 0 ? (uint)(end - r) : csv_filter_projected_len(in, len, r, sel, nsel);
        }
        r = end;
    }
    counts[i] = n;
}

__kernel void csv_filter_emit(__global const uchar *in, const ulong len,
                              __global const uchar *consts, __global const uint *prefix,
                              __global const uint *offsets, __global uchar *out) {
    ulong i = get_global_id(0);
    if (i * QC_BLOCK >= len) {
        return;
    }
    uint nsel = qc_rd32(consts + 24);
    __global const uchar *sel = consts + 28;
    __global const uchar *v = sel + 4 * nsel;
    ulong be = qc_block_end(len, i);
    ulong r = qc_first_row(in, len, i, prefix[i] & 1);
    __global uchar *o = out + offsets[i];
    while (r < be) {
        ulong end;
        if (qc_row_matches(in, len, r, &end, consts, v)) {
            if (nsel == 0) {
                for (ulong p = r; p < end; p++) {
                    *o++ = in[p];
                }
            } else {
                for (uint j = 0; j < nsel; j++) {
                    if (j > 0) {
                        *o++ = ',';
                    }
                    ulong fs = 0, fe = 0;
                    int found;
                    qc_scan_row(in, len, r, qc_rd32(sel + 4 * j), &fs, &fe, &found);
                    if (found) {
                        for (ulong p = fs; p < fe; p++) {
                            *o++ = in[p];
                        }
                    }
                }
                *o++ = '\n';
            }
        }
        r = end;
    }
}

/* SPDX-License-Identifier: Apache-2.0
 * reed-solomon: the parity units of each stripe (k data units of `unit` bytes; the chunk's
 * last stripe is zero-padded). Launch: Fixed, 16 output bytes per work-item; work-item i
 * computes bytes [o, o + 16) of parity unit p of stripe s, where
 *   i = (s * m + p) * (unit / 16) + o / 16,
 * so the output is, per stripe, its m parity units in order.
 * consts: u32 k, m, unit, 0; log[256]; exp[512]; then m rows of k coefficient logs (255: a
 * zero coefficient). A GF(2^8) product is exp[log a + log b]. */

#define RS_ITEM 16
#define RS_LOG_ZERO 255

uint rs_rd32(__global const uchar *p) {
    return (uint)p[0] | ((uint)p[1] << 8) | ((uint)p[2] << 16) | ((uint)p[3] << 24);
}

__kernel void rs_parity(__global const uchar *in, const ulong len,
                        __global const uchar *consts, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong k = rs_rd32(consts);
    ulong m = rs_rd32(consts + 4);
    ulong unit = rs_rd32(consts + 8);
    ulong per_unit = unit / RS_ITEM;
    ulong q = i / per_unit;
    ulong s = q / m;
    ulong p = q % m;
    ulong stripe = k * unit;
    if (s * stripe >= len) {
        return;
    }
    ulong o = (i % per_unit) * RS_ITEM;
    __global const uchar *lg = consts + 16;
    __global const uchar *ex = consts + 272;
    __global const uchar *coef = consts + 784 + p * k;
    uchar acc[RS_ITEM];
    for (uint t = 0; t < RS_ITEM; t++) {
        acc[t] = 0;
    }
    for (ulong j = 0; j < k; j++) {
        uint c = coef[j];
        if (c == RS_LOG_ZERO) {
            continue;
        }
        ulong base = s * stripe + j * unit + o;
        for (uint t = 0; t < RS_ITEM; t++) {
            ulong at = base + t;
            uchar x = at < len ? in[at] : 0;
            if (x != 0) {
                acc[t] ^= ex[lg[x] + c];
            }
        }
    }
    for (uint t = 0; t < RS_ITEM; t++) {
        out[i * RS_ITEM + t] = acc[t];
    }
}

/* SPDX-License-Identifier: Apache-2.0
 * xxh3: the per-block half of XXH3-64's long-input loop. Work-item i reads the 1024-byte
 * block in[i * 1024 ..) (16 stripes of 64 bytes; stripe s is keyed with the secret from byte
 * 8 * s) and writes the sum those stripes add to XXH3's eight accumulators, as 8 little-endian
 * u64 at out + i * 64. The sum does not depend on the accumulators, so every block runs in
 * parallel; the host adds the sums in order, scrambling after each block, and hashes the last
 * bytes itself. Entry point xxh3_blocks (Fixed). consts: the 192-byte secret (derived from the
 * seed by the host). All arithmetic is 64-bit and wraps. */

#define XXH3_BLOCK 1024UL

/* A little-endian u64 at p (no alignment assumed). */
ulong xxh3_rd64(__global const uchar *p) {
    ulong v = 0;
    for (int b = 7; b >= 0; b--) {
        v = (v << 8) | (ulong)p[b];
    }
    return v;
}

__kernel void xxh3_blocks(__global const uchar *in, const ulong len,
                          __global const uchar *consts, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong b = i * XXH3_BLOCK;
    if (b + XXH3_BLOCK > len) {
        return;
    }
    ulong acc[8];
    for (uint lane = 0; lane < 8; lane++) {
        acc[lane] = 0;
    }
    for (uint s = 0; s < 16; s++) {
        __global const uchar *stripe = in + b + s * 64;
        __global const uchar *key = consts + s * 8;
        for (uint lane = 0; lane < 8; lane++) {
            ulong value = xxh3_rd64(stripe + lane * 8);
            ulong keyed = value ^ xxh3_rd64(key + lane * 8);
            acc[lane ^ 1] += value;
            acc[lane] += (keyed & 0xffffffffUL) * (keyed >> 32);
        }
    }
    __global uchar *o = out + i * 64;
    for (uint lane = 0; lane < 8; lane++) {
        for (uint k = 0; k < 8; k++) {
            o[lane * 8 + k] = (uchar)(acc[lane] >> (8 * k));
        }
    }
}

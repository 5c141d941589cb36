/* SPDX-License-Identifier: Apache-2.0
 * byte-histogram: how often each byte value occurs in each 4096-byte block. Entry point
 * byte_histogram_blocks (Fixed: 256 little-endian u32 per work-item, the count of byte value
 * v at offset v * 4); the host adds the blocks up. consts: unused. */

__kernel void byte_histogram_blocks(__global const uchar *in, const ulong len,
                                    __global const uchar *consts, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong b = i * QK_BLOCK;
    if (b >= len) {
        return;
    }
    ulong bend = min(b + QK_BLOCK, len);
    uint counts[256];
    for (uint v = 0; v < 256; v++) {
        counts[v] = 0;
    }
    for (ulong k = b; k < bend; k++) {
        counts[in[k]]++;
    }
    __global uchar *o = out + i * 1024;
    for (uint v = 0; v < 256; v++) {
        qk_wr32(o + v * 4, counts[v]);
    }
}

// SPDX-License-Identifier: Apache-2.0
/*
 * tag_lines: counts the lines of a newly stored object and records the count as its user
 * metadata `lines` (x-amz-meta-lines). Meant for the put-done event; writes no output.
 * Lines are counted like `wc -l`, plus one for a last line without a final newline, so "" has
 * 0 lines, "a" and "a\n" have 1, "a\nb" has 2.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "quarry.h"

#define CHUNK (64 * 1024)

static unsigned char buf[CHUNK];

int main(void) {
    uint64_t lines = 0;
    unsigned char last = '\n'; /* as if the object were preceded by a newline */
    for (;;) {
        ssize_t n = quarry_read(buf, sizeof buf);
        if (n < 0) {
            perror("tag_lines: read");
            return 1;
        }
        if (n == 0) {
            break;
        }
        const unsigned char *p = buf, *end = buf + n;
        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            lines++;
            p++;
        }
        last = buf[n - 1];
    }
    if (last != '\n') {
        lines++;
    }

    char value[24];
    snprintf(value, sizeof value, "%llu", (unsigned long long)lines);
    int32_t rc = quarry_set_metadata_str("lines", value);
    if (rc < 0) {
        fprintf(stderr, "tag_lines: set_metadata(lines=%s) failed: %s (%d)\n", value,
                quarry_strerror(rc), (int)rc);
        return 1;
    }
    return 0;
}

// SPDX-License-Identifier: Apache-2.0
/*
 * head: the first N lines of the input (param `n`, default 10), like head -n N. It stops
 * reading as soon as it has written the Nth newline and exits 0, so the rest of the object is
 * never read. n = 0 writes nothing. A last line without a newline is written as it is.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quarry.h"

#define CHUNK (64 * 1024)

static unsigned char buf[CHUNK];

int main(void) {
    const char *arg = quarry_param("n", "10");
    char *end = NULL;
    errno = 0;
    unsigned long long left = strtoull(arg, &end, 10);
    if (*arg < '0' || *arg > '9' || *end != '\0' || errno != 0) {
        fprintf(stderr, "head: param n must be a non-negative integer, got \"%s\"\n", arg);
        return 2;
    }
    while (left > 0) {
        ssize_t n = quarry_read(buf, sizeof buf);
        if (n < 0) {
            perror("head: read");
            return 1;
        }
        if (n == 0) {
            break;
        }
        size_t take = (size_t)n;
        const unsigned char *p = buf, *stop = buf + n;
        while (left > 0) {
            const unsigned char *nl = memchr(p, '\n', (size_t)(stop - p));
            if (nl == NULL) {
                break;
            }
            p = nl + 1;
            if (--left == 0) {
                take = (size_t)(p - buf);
            }
        }
        if (quarry_write_all(buf, take) != 0) {
            return 1;
        }
    }
    return 0;
}

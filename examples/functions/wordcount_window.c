// SPDX-License-Identifier: Apache-2.0
/*
 * wordcount_window: wordcount.c through the input window (ABI v2, see quarry.h): the host
 * writes the input straight into a 1 MiB buffer of this module instead of through stdin.
 * Prints how many lines of the input contain the word (param `word`, default "banana"), as a
 * decimal number and "\n"; the same output as wordcount.
 *
 * The match is a plain, case-sensitive substring match (like `grep -cF WORD`). It streams:
 * the only state kept across reads is how much of the word the end of the last chunk
 * matched (a Knuth-Morris-Pratt state), so lines may straddle reads and be of any length.
 * An empty word counts every line, as `grep -c ''` does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quarry.h"

#define WINDOW (1024 * 1024)

static unsigned char window[WINDOW];

int main(void) {
    const char *word = quarry_param("word", "banana");
    size_t wlen = strlen(word);
    if (memchr(word, '\n', wlen) != NULL) {
        fprintf(stderr, "wordcount_window: param word must not contain a newline\n");
        return 2;
    }
    /* fail[i]: length of the longest proper border of word[0..i]. */
    size_t *fail = malloc((wlen + 1) * sizeof *fail);
    if (fail == NULL) {
        fprintf(stderr, "wordcount_window: word too long (%zu bytes)\n", wlen);
        return 2;
    }
    if (wlen > 0) {
        fail[0] = 0;
        for (size_t i = 1, k = 0; i < wlen; i++) {
            while (k > 0 && word[i] != word[k]) {
                k = fail[k - 1];
            }
            if (word[i] == word[k]) {
                k++;
            }
            fail[i] = k;
        }
    }

    if (quarry_input_window(window, sizeof window) != QUARRY_OK) {
        fprintf(stderr, "wordcount_window: the host refused the input window\n");
        return 2;
    }

    uint64_t count = 0;
    size_t state = 0;      /* bytes of the word matched so far on this line */
    int found = wlen == 0; /* this line contains the word */
    int in_line = 0;       /* the current line has at least one byte */
    for (;;) {
        int64_t n = quarry_input_next();
        if (n < 0) {
            fprintf(stderr, "wordcount_window: input: %s\n", quarry_strerror(n));
            return 1;
        }
        if (n == 0) {
            break;
        }
        const unsigned char *p = window, *end = window + n;
        while (p < end) {
            if (found) {
                /* The line already counts: skip to its end without matching. */
                const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
                if (nl == NULL) {
                    in_line = 1;
                    break;
                }
                count++;
                p = nl + 1;
                found = wlen == 0;
                state = 0;
                in_line = 0;
                continue;
            }
            unsigned char c = *p++;
            if (c == '\n') {
                state = 0;
                in_line = 0;
                continue;
            }
            in_line = 1;
            while (state > 0 && c != (unsigned char)word[state]) {
                state = fail[state - 1];
            }
            if (c == (unsigned char)word[state] && ++state == wlen) {
                found = 1;
            }
        }
    }
    /* A last line without a final newline still counts. */
    if (found && in_line) {
        count++;
    }
    free(fail);

    char out[24];
    int len = snprintf(out, sizeof out, "%llu\n", (unsigned long long)count);
    if (quarry_write_all(out, (size_t)len) != 0) {
        return 1;
    }
    return 0;
}

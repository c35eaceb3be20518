/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_fuzz_utf8: a strict UTF-8 check for fuzz oracles (shortest form, no surrogates, at most
 * U+10FFFF). Written independently of the encoders it judges, so that a bug in their UTF-8
 * handling is not repeated by the oracle.
 */
#ifndef LG_FUZZ_UTF8_H
#define LG_FUZZ_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when [s, s+n) is valid UTF-8. */
static inline bool lg_fuzz_valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 2;
            cp = c & 0x1fU;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 3;
            cp = c & 0x0fU;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 4;
            cp = c & 0x07U;
        } else {
            return false;
        }
        if (i + k > n) {
            return false;
        }
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xc0U) != 0x80U) {
                return false;
            }
            cp = (cp << 6) | (s[i + j] & 0x3fU);
        }
        if ((k == 3 && cp < 0x800U) || (k == 4 && cp < 0x10000U) || cp > 0x10ffffU ||
            (cp >= 0xd800U && cp <= 0xdfffU)) {
            return false;
        }
        i += k;
    }
    return true;
}

#endif /* LG_FUZZ_UTF8_H */

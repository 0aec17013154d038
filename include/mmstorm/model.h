/* Reference model of memory contents: page patterns derived from (role, page, generation). */
#ifndef MMSTORM_MODEL_H
#define MMSTORM_MODEL_H

#include <stddef.h>
#include <stdint.h>

/*
 * A stamp names what one page must hold: who wrote it (role: a process, or a fill source such
 * as the case seed), which page of the region it is, and in which generation it was written.
 * splitmix64-style mixing of all three, never 0, so 0 is free to mean "zero-filled" below.
 */
uint64_t ms_stamp(uint64_t role, uint64_t page, uint64_t gen);

/*
 * Page images. page must be 8-byte aligned and len a multiple of 8 with len >= 2 *
 * MS_MARK_BYTES (any base or huge page qualifies). Words are stored in native byte order.
 *
 * fill: the whole page, every 8-byte word derived from the fill stamp and its index (a flipped
 *       byte anywhere is caught); fill 0 means all zero bytes.
 * mark: a header record at offset 0 and a trailer record at len - MS_MARK_BYTES, both derived
 *       from the mark stamp; two small stores per page, cheap enough for a fork hot path.
 *       The rest of the page is left alone. mark 0 means "no marks" wherever it is accepted.
 *
 * The check functions return the offset of the first byte that differs from the expected
 * image, or MS_PAGE_MATCH. ms_page_expect() builds that image, e.g. for ms_check_mem().
 */
#define MS_MARK_BYTES 16
#define MS_PAGE_MATCH SIZE_MAX

void ms_page_fill(void *page, size_t len, uint64_t fill);
void ms_page_mark(void *page, size_t len, uint64_t mark);
/* Only the two records; the body is not looked at. */
size_t ms_page_mark_check(const void *page, size_t len, uint64_t mark);
/* The whole page: body as ms_page_fill(fill), records as ms_page_mark(mark) unless mark is 0. */
size_t ms_page_check(const void *page, size_t len, uint64_t fill, uint64_t mark);
void ms_page_expect(void *dst, size_t len, uint64_t fill, uint64_t mark);

#endif

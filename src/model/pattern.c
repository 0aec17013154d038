/* Page stamps and the fill/mark/check helpers of model.h. */
#include <string.h>

#include "mmstorm/model.h"

#define GOLDEN 0x9e3779b97f4a7c15ULL
#define ROLE_SALT 0x6a09e667f3bcc909ULL
#define HDR_SALT 0xbb67ae8584caa73bULL
#define TRL_SALT 0x3c6ef372fe94f82bULL
#define MARK_WORDS (MS_MARK_BYTES / 8)

/* splitmix64's finaliser: a bijection on 64 bits, so distinct inputs stay distinct. */
static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t ms_stamp(uint64_t role, uint64_t page, uint64_t gen)
{
	uint64_t h = mix64(role ^ ROLE_SALT);

	h = mix64(h ^ page);
	h = mix64(h + gen * GOLDEN);
	return h ? h : GOLDEN;
}

/*
 * One multiply per word keeps write-all over gigabytes cheap; the stamp already differs per
 * page, and the index term makes every word of a page distinct, so moved data shows too.
 */
static inline uint64_t fill_word(uint64_t fill, size_t i)
{
	return fill ? fill ^ ((uint64_t)(i + 1) * GOLDEN) : 0;
}

static inline void mark_words(uint64_t mark, uint64_t hdr[MARK_WORDS], uint64_t trl[MARK_WORDS])
{
	hdr[0] = mark;
	hdr[1] = mix64(mark ^ HDR_SALT);
	trl[0] = mix64(mark ^ TRL_SALT);
	trl[1] = ~mark;
}

/* Offset of the first differing byte between two words known to differ. */
static size_t byte_diff(size_t word_idx, uint64_t want, uint64_t got)
{
	unsigned char w[8], g[8];
	size_t i;

	memcpy(w, &want, 8);
	memcpy(g, &got, 8);
	for (i = 0; i < 7 && w[i] == g[i]; i++)
		;
	return word_idx * 8 + i;
}

void ms_page_fill(void *page, size_t len, uint64_t fill)
{
	uint64_t *w = page;
	size_t n = len / 8;

	if (!fill) {
		memset(page, 0, len);
		return;
	}
	for (size_t i = 0; i < n; i++)
		w[i] = fill_word(fill, i);
}

void ms_page_mark(void *page, size_t len, uint64_t mark)
{
	uint64_t *w = page, hdr[MARK_WORDS], trl[MARK_WORDS];
	size_t n = len / 8;

	mark_words(mark, hdr, trl);
	w[0] = hdr[0];
	w[1] = hdr[1];
	w[n - 2] = trl[0];
	w[n - 1] = trl[1];
}

size_t ms_page_mark_check(const void *page, size_t len, uint64_t mark)
{
	const uint64_t *w = page;
	uint64_t hdr[MARK_WORDS], trl[MARK_WORDS];
	size_t n = len / 8;

	mark_words(mark, hdr, trl);
	for (size_t i = 0; i < MARK_WORDS; i++)
		if (w[i] != hdr[i])
			return byte_diff(i, hdr[i], w[i]);
	for (size_t i = 0; i < MARK_WORDS; i++)
		if (w[n - MARK_WORDS + i] != trl[i])
			return byte_diff(n - MARK_WORDS + i, trl[i], w[n - MARK_WORDS + i]);
	return MS_PAGE_MATCH;
}

static size_t body_check(const uint64_t *w, size_t from, size_t to, uint64_t fill)
{
	for (size_t i = from; i < to; i++)
		if (w[i] != fill_word(fill, i))
			return byte_diff(i, fill_word(fill, i), w[i]);
	return MS_PAGE_MATCH;
}

size_t ms_page_check(const void *page, size_t len, uint64_t fill, uint64_t mark)
{
	const uint64_t *w = page;
	size_t n = len / 8, off;

	if (!mark)
		return body_check(w, 0, n, fill);
	/* Report in address order: header, body, trailer. */
	off = ms_page_mark_check(page, len, mark);
	if (off != MS_PAGE_MATCH && off < MS_MARK_BYTES)
		return off;
	if ((off = body_check(w, MARK_WORDS, n - MARK_WORDS, fill)) != MS_PAGE_MATCH)
		return off;
	return ms_page_mark_check(page, len, mark);
}

void ms_page_expect(void *dst, size_t len, uint64_t fill, uint64_t mark)
{
	ms_page_fill(dst, len, fill);
	if (mark)
		ms_page_mark(dst, len, mark);
}

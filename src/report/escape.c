/* Text from a run (case names, reasons, log excerpts) made safe for XML/HTML and Markdown. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report/report_int.h"

/* Length of the UTF-8 sequence at s that encodes a character allowed in XML 1.0, else 0. */
static size_t xml_char_len(const unsigned char *s)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80) {
		cp = s[0];
		len = 1;
	} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		cp = s[0] & 0x1f;
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		cp = s[0] & 0x0f;
		len = 3;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		cp = s[0] & 0x07;
		len = 4;
	} else {
		return 0;
	}
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and what XML 1.0 excludes (most C0 controls, FFFE/FFFF). */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0;
	if ((cp < 0x20 && cp != 0x9 && cp != 0xa && cp != 0xd) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return len;
}

/* Escaped for element text or an attribute value; bytes XML cannot carry are dropped. */
void ms_xml_put(FILE *f, const char *str, bool attr)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t len;

	while (*s) {
		len = xml_char_len(s);
		if (!len) {
			s++;
			continue;
		}
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		case '\t':
		case '\n':
		case '\r':
			/* Attribute value normalisation would turn them into spaces. */
			if (attr)
				fprintf(f, "&#%d;", *s);
			else
				fputc(*s, f);
			break;
		default:
			fwrite(s, 1, len, f);
		}
		s += len;
	}
}

void ms_md_put(FILE *f, const char *s, bool cell)
{
	for (; s && *s; s++) {
		if (*s == '|' && cell)
			fputs("\\|", f);
		else if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else
			fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
	}
}

/* Kernel console watch: the last lines, and the lines around the first panic/Oops/BUG. */
#include <ctype.h>
#include <string.h>

#include "mmstorm/kmsg.h"
#include "vm/vm.h"

#define TAIL_LINES 40

void ms_vmcon_init(struct ms_vmcon *c)
{
	memset(c, 0, sizeof(*c));
}

void ms_vmcon_mark(struct ms_vmcon *c)
{
	c->hit = false;
	c->pattern = NULL;
	c->first[0] = '\0';
	c->nexcerpt = 0;
}

/*
 * Only lines with a printk timestamp count as the kernel's (the command line asks for
 * printk.time=1): the agent's own KTAP on the same console may quote kernel messages.
 */
static const char *kernel_text(const char *line)
{
	const char *p = line;

	if (*p++ != '[')
		return NULL;
	while (*p == ' ')
		p++;
	if (!isdigit((unsigned char)*p))
		return NULL;
	while (isdigit((unsigned char)*p) || *p == '.')
		p++;
	if (*p++ != ']')
		return NULL;
	return *p == ' ' ? p + 1 : p;
}

static void con_start_excerpt(struct ms_vmcon *c)
{
	unsigned long n = c->total < MS_VMCON_BEFORE + 1 ? c->total : MS_VMCON_BEFORE + 1;

	c->nexcerpt = 0;
	for (unsigned long i = c->total - n; i < c->total; i++)
		memcpy(c->excerpt[c->nexcerpt++], c->ring[i % MS_VMCON_RING], MS_VMCON_LINE_MAX);
}

static void con_line(struct ms_vmcon *c, const char *line, size_t len)
{
	char *slot = c->ring[c->total % MS_VMCON_RING];
	const char *text, *pattern = NULL;

	while (len && line[len - 1] == '\r')
		len--;
	ms_vm_printable(slot, MS_VMCON_LINE_MAX, line, len);
	c->total++;
	if (c->hit) {
		if (c->nexcerpt < MS_VMCON_EXCERPT)
			memcpy(c->excerpt[c->nexcerpt++], slot, MS_VMCON_LINE_MAX);
		return;
	}
	text = kernel_text(slot);
	if (!text || ms_kmsg_classify(text, &pattern) != MS_KMSG_CRASH)
		return;
	c->hit = true;
	c->pattern = pattern;
	memcpy(c->first, slot, MS_VMCON_LINE_MAX);
	con_start_excerpt(c);
}

void ms_vmcon_feed(struct ms_vmcon *c, const void *data, size_t len)
{
	const char *p = data;

	for (size_t i = 0; i < len; i++) {
		char ch = p[i];

		if (ch == '\n' || c->plen == MS_VMCON_LINE_MAX - 1) {
			con_line(c, c->partial, c->plen);
			c->plen = 0;
			if (ch == '\n')
				continue;
		}
		c->partial[c->plen++] = ch;
	}
}

json_t *ms_vmcon_excerpt(struct ms_vmcon *c)
{
	json_t *arr = json_array();
	unsigned long n, start;

	if (!arr)
		return NULL;
	if (c->hit) {
		for (unsigned i = 0; i < c->nexcerpt; i++)
			json_array_append_new(arr, json_string(c->excerpt[i]));
		return arr;
	}
	n = c->total < TAIL_LINES ? c->total : TAIL_LINES;
	for (start = c->total - n; start < c->total; start++)
		json_array_append_new(arr, json_string(c->ring[start % MS_VMCON_RING]));
	return arr;
}

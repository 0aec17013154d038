/* The C reproducer writer: a fuzz sequence as a standalone program with the model's answers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fzrt.h"
#include "fzrt_text.h"
#include "mmstorm/fuzz.h"
#include "mmstorm/refmodel.h"

/* The program's own part, after the runtime and the tables. */
static const char *const main_text =
	"\nstatic struct ms_fzrt rt;\n\nstatic int op_failed(int i, int ret)\n"
	"{\n"
	"\tif (ops[i].nth && (ret == 0) != fork_ok[i]) {\n"
	"\t\tprintf(\"step %d (%s): the injected op %s this time: inconclusive\\n\", i,\n"
	"\t\t       op_text[i], ret ? \"failed\" : \"succeeded\");\n"
	"\t\texit(2);\n"
	"\t}\n"
	"\tif (ops[i].nth && ret && ret != MS_FZRT_PIN_DIFF &&\n"
	"\t    ms_fzrt_partial(&rt, &ops[i]) != part[i]) {\n"
	"\t\tprintf(\"step %d (%s): the injected failure left another state than in mmstorm's "
	"run: inconclusive\\n\", i, op_text[i]);\n"
	"\t\texit(2);\n"
	"\t}\n"
	"\tif (ret == MS_FZRT_PIN_DIFF) {\n"
	"\t\tprintf(\"step %d (%s): the reference holds other bytes: page %d, first differing \"\n"
	"\t\t       \"byte at offset %ld: want 0x%02x, got 0x%02x\\n\", i, op_text[i],\n"
	"\t\t       rt.bad->page, rt.bad->off, rt.bad->want, rt.bad->got);\n"
	"\t\treturn 1;\n"
	"\t}\n"
	"\tif (ret == MS_FZRT_CONT_DIFF) {\n"
	"\t\tprintf(\"step %d (%s): UFFDIO_CONTINUE returned %ld, mapped %ld, the model says \"\n"
	"\t\t       \"%ld, mapped %ld\\n\", i, op_text[i], rt.cont_ret, rt.cont_mapped,\n"
	"\t\t       ops[i].want_ret, ops[i].want_mapped);\n"
	"\t\treturn 1;\n"
	"\t}\n"
	"\tif (ret == MS_FZRT_SKIP) {\n"
	"\t\tprintf(\"step %d (%s): the range is not one VMA here: inconclusive\\n\", i,\n"
	"\t\t       op_text[i]);\n"
	"\t\texit(2);\n"
	"\t}\n"
	"\tif (ret && !ops[i].nth) {\n"
	"\t\tprintf(\"step %d (%s): failed: %s\\n\", i, op_text[i], strerror(-ret));\n"
	"\t\treturn 1;\n"
	"\t}\n"
	"\treturn 0;\n"
	"}\n\n"
	"int main(void)\n"
	"{\n"
	"\tlong pat0 = ms_fzrt_pat_entries(), pat1, pat_want;\n"
	"\tchar msg[512];\n"
	"\tint bad = 0, ret;\n\n"
	"\tsetvbuf(stdout, NULL, _IONBF, 0);\n"
	"\tfor (int i = 0; i < NOPS; i++)\n"
	"\t\tif (ops[i].nth && access(\"/proc/thread-self/fail-nth\", W_OK)) {\n"
	"\t\t\tprintf(\"SKIP: step %d (%s) needs fail-nth: /proc/thread-self/fail-nth: %s\\n\",\n"
	"\t\t\t       i, op_text[i], strerror(errno));\n"
	"\t\t\treturn 4;\n"
	"\t\t}\n"
	"\tif ((ret = ms_fzrt_init(&rt, NSLOTS, NPAGES, THP))) {\n"
	"\t\tprintf(\"SKIP: cannot set up the window: %s\\n\", strerror(-ret));\n"
	"\t\treturn 4;\n"
	"\t}\n"
	"\tif (FILE_WINDOW && (ret = ms_fzrt_file_init(&rt, FILE_WINDOW))) {\n"
	"\t\tprintf(\"SKIP: cannot set up the %s file window: %s\\n\", FILE_WINDOW == \n"
	"\t\t       MS_FZRT_FILE_HUGETLB ? \"hugetlb (free 2 MiB pages?)\" : \"shmem\",\n"
	"\t\t       strerror(-ret));\n"
	"\t\treturn 4;\n"
	"\t}\n"
	"\tfor (int i = 0; i < NOPS && !bad; i++) {\n"
	"\t\tret = ms_fzrt_run(&rt, &ops[i]);\n"
	"\t\tif (ret == -ENOSYS || ret == -EPERM || ret == -EOPNOTSUPP ||\n"
	"\t\t    (ret == -ENOENT && ops[i].kind >= MS_FZRT_PFN_MAP &&\n"
	"\t\t     ops[i].kind <= MS_FZRT_PFN_MPROTECT)) {\n"
	"\t\t\tprintf(\"SKIP: step %d (%s): %s\\n\", i, op_text[i], strerror(-ret));\n"
	"\t\t\treturn 4;\n"
	"\t\t}\n"
	"\t\tif ((bad = op_failed(i, ret)))\n"
	"\t\t\tbreak;\n"
	"\t\tret = ms_fzrt_check(&rt, wants + want_at[i], want_at[i + 1] - want_at[i], wp0[i],\n"
	"\t\t\t\t    msg, sizeof(msg));\n"
	"\t\tif (!ret && FILE_WINDOW)\n"
	"\t\t\tret = ms_fzrt_check_file(&rt, fcache[i], fpte[i], msg, sizeof(msg));\n"
	"\t\tif (ret) {\n"
	"\t\t\tprintf(\"step %d (%s): %s\\n\", i, op_text[i], msg);\n"
	"\t\t\tbad = 1;\n"
	"\t\t}\n"
	"\t}\n"
	"\tms_fzrt_fini(&rt);\n"
	"\tpat1 = ms_fzrt_pat_entries();\n"
	"\tpat_want = pat0 + (ms_fzrt_pat_legacy() ? PAT_LEFT : 0);\n"
	"\tif (pat0 >= 0 && pat1 != pat_want) {\n"
	"\t\tprintf(\"PAT memtype list: %ld entries before, %ld after, %ld expected\\n\",\n"
	"\t\t       pat0, pat1, pat_want);\n"
	"\t\tbad = 1;\n"
	"\t}\n"
	"\tprintf(\"%s\\n\", bad ? \"FAIL\" : \"PASS\");\n"
	"\treturn bad;\n"
	"}\n";

/* The runtime's names of the op kinds, so that the table reads as ops. */
static const char *const rt_kind[MS_FZ_KIND_COUNT] = {
	"MS_FZRT_WRITE", "MS_FZRT_FORK", "MS_FZRT_EXIT", "MS_FZRT_DONTNEED", "MS_FZRT_FREE",
	"MS_FZRT_COLD", "MS_FZRT_PAGEOUT", "MS_FZRT_MREMAP", "MS_FZRT_MUNMAP", "MS_FZRT_MPROTECT",
	"MS_FZRT_MIGRATE", "MS_FZRT_UFFD_REG", "MS_FZRT_UFFD_WP", "MS_FZRT_PFN_MAP",
	"MS_FZRT_PFN_MUNMAP", "MS_FZRT_PFN_MREMAP", "MS_FZRT_PFN_MPROTECT", "MS_FZRT_PIN",
	"MS_FZRT_UNPIN", "MS_FZRT_PIN_URING", "MS_FZRT_PIN_GUP", "MS_FZRT_COLLAPSE",
	"MS_FZRT_PIN_WRITE", "MS_FZRT_FILE_WRITE", "MS_FZRT_FILE_FILL", "MS_FZRT_FILE_ZAP",
	"MS_FZRT_FILE_PUNCH", "MS_FZRT_UFFD_MINOR", "MS_FZRT_CONTINUE",
};

/* The runtime's text, without the include of its own header (pasted just before). */
static void put_runtime(FILE *f)
{
	const char *c = ms_text_fzrt_c, *line;

	fputs(ms_text_fzrt_h, f);
	fputc('\n', f);
	for (line = c; *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) + 1 : strlen(line);

		if (strncmp(line, "#include \"fzrt.h\"", 17))
			fwrite(line, 1, n, f);
		line += n;
	}
}

struct emit {
	FILE *f;
	const struct ms_fz_seq *s;
	struct ms_fz_model m;
	unsigned nops, nwants;
	char (*wp)[MS_FZ_MAX_SLOTS + 1];
	uint64_t (*fcache)[MS_FZ_FILE_SLOTS];	/* the file window after each op */
	char (*fpte)[MS_FZ_FILE_SLOTS + 1];
	uint32_t *want_at;
	bool *fork_ok;
	uint64_t *part;
	char **text;
};

static void put_u64s(FILE *f, const char *name, const uint64_t *v, unsigned n)
{
	fprintf(f, ",\n\t  .%s = {", name);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, " 0x%016llxULL,", (unsigned long long)v[i]);
	fputs(" }", f);
}

/*
 * An UNPIN carries what the pin holds, taken from the model before the op; a file op its
 * fills or CONTINUE's expected result (fop), also from before.
 */
static void put_op(struct emit *e, const struct ms_fz_op *op, const struct ms_rm_op *r,
		   unsigned child, const struct ms_fzrt_op *pin, const struct ms_fzrt_op *fop)
{
	fprintf(e->f, "\t{ .kind = %s, .proc = %u, .flags = %u, .nth = %u, .first = %u, .n = %u, "
		".to = %u, .n2 = %u, .child = %u", rt_kind[op->kind], op->proc, op->flags, op->nth,
		op->first, op->kind == MS_FZ_UNPIN ? (unsigned)pin->n : op->n, op->to, op->n2,
		child);
	if (ms_fz_is_pin(op->kind))
		fprintf(e->f, ", .pin = %u", r->out);
	if (op->kind == MS_FZ_UNPIN) {
		fprintf(e->f, ", .pin = %u, .alt_mask = 0x%llxULL", op->pin,
			(unsigned long long)pin->alt_mask);
		put_u64s(e->f, "fill", pin->fill, (unsigned)pin->n);
		put_u64s(e->f, "alt", pin->alt, (unsigned)pin->n);
	}
	if (op->kind == MS_FZ_PIN_WRITE)
		fprintf(e->f, ", .pin = %u", op->pin);
	if (op->kind == MS_FZ_CONTINUE)
		fprintf(e->f, ", .want_ret = %ld, .want_mapped = %ld", fop->want_ret,
			fop->want_mapped);
	if (op->kind == MS_FZ_FILE_WRITE || op->kind == MS_FZ_FILE_FILL)
		put_u64s(e->f, "fill", fop->fill, op->n);
	if (op->kind == MS_FZ_WRITE || op->kind == MS_FZ_PIN_WRITE) {
		fputs(",\n\t  .fill = {", e->f);
		for (uint32_t i = 0; i < op->n; i++)
			fprintf(e->f, " 0x%016llxULL,",
				(unsigned long long)ms_rm_fill(e->m.rm, r, i));
		fputs(" }", e->f);
	}
	fputs(" },\n", e->f);
}

/* After op number e->nops: what each live process must see. */
static void put_wants(struct emit *e)
{
	struct ms_rm_want w;

	for (unsigned p = 0; p < MS_FZ_MAX_PROCS; p++) {
		if (!ms_rm_alive(e->m.rm, p))
			continue;
		for (unsigned s = 0; s < e->s->nslots; s++) {
			if (ms_rm_expect(e->m.rm, p, s, &w) || w.view != MS_RM_V_DATA)
				continue;
			fprintf(e->f, "\t{ %u, %u, %d, 0x%016llxULL, 0x%016llxULL },\n", p, s,
				w.has_alt, (unsigned long long)w.fill, (unsigned long long)w.alt);
			e->nwants++;
		}
	}
}

/* The pin id the model would give a new pin: the lowest free one. */
static unsigned free_pin(const struct ms_fz_model *m)
{
	unsigned k = 0;

	while (k < MS_RM_MAX_PINS && !ms_rm_pin_info(m->rm, k, NULL, NULL, NULL, NULL))
		k++;
	return k;
}

/* One pass over the sequence: ops (pass 0) or wants (pass 1), as the model runs them. */
static int walk(struct emit *e, int pass, const int8_t *ran, const uint64_t *part)
{
	struct ms_rm_op r;
	unsigned child = 0;
	int ret;

	ms_fz_model_fini(&e->m);
	if ((ret = ms_fz_model_init(&e->m, e->s)))
		return ret;
	e->nops = e->nwants = 0;
	for (uint32_t i = 0; i < e->s->nops; i++) {
		const struct ms_fz_op *op = &e->s->ops[i];
		static struct ms_fzrt_op pin, fop;
		bool ok = !ran || ran[i] > 0;

		if (ms_fz_model_check(&e->m, op, &child) || (ran && ran[i] < 0))
			continue;
		if (op->kind == MS_FZ_UNPIN)
			pin.n = (int)ms_fz_model_pin_wants(&e->m, op->pin, pin.fill, pin.alt,
							   &pin.alt_mask);
		if (op->kind == MS_FZ_CONTINUE)
			ms_fz_model_continue(&e->m, op, &fop.want_ret, &fop.want_mapped);
		for (unsigned k = 0; k < op->n && (op->kind == MS_FZ_FILE_WRITE ||
						  op->kind == MS_FZ_FILE_FILL); k++)
			fop.fill[k] = ms_fz_model_file_fill(&e->m, op, k);
		memset(&r, 0, sizeof(r));
		if (!ok && ms_fz_is_pin(op->kind))
			r.out = (uint8_t)free_pin(&e->m);
		ret = ok ? ms_fz_model_apply(&e->m, op, &r) :
			   ms_fz_model_fail(&e->m, op, part ? part[i] : 0);
		if (ret)
			return ret;
		if (pass == 0) {
			put_op(e, op, &r, child, &pin, &fop);
			e->fork_ok[e->nops] = ok;
			e->part[e->nops] = part && !ok ? part[i] : 0;
			e->text[e->nops] = calloc(1, 96);
			if (e->text[e->nops])
				ms_fz_op_str(op, e->text[e->nops], 96);
			for (unsigned s = 0; s < e->s->nslots; s++)
				e->wp[e->nops][s] = (char)('0' + e->m.wp[s]);
			for (unsigned s = 0; s < MS_FZ_FILE_SLOTS; s++) {
				e->fcache[e->nops][s] = e->m.fcache[s];
				e->fpte[e->nops][s] = (char)('0' + e->m.fpte[s]);
			}
		} else {
			e->want_at[e->nops] = e->nwants;
			put_wants(e);
		}
		e->nops++;
	}
	if (pass == 1)
		e->want_at[e->nops] = e->nwants;
	return 0;
}

static void put_tables(struct emit *e)
{
	fprintf(e->f, "};\n\n#define NOPS %u\n", e->nops);
	fputs("static const int fork_ok[] = {", e->f);
	for (unsigned i = 0; i < e->nops; i++)
		fprintf(e->f, " %d,", e->fork_ok[i]);
	fputs(" 0 };\n/* what ms_fzrt_partial() saw of each op that failed as injected */\n"
	      "static const unsigned long long part[] = {", e->f);
	for (unsigned i = 0; i < e->nops; i++)
		fprintf(e->f, " 0x%llxULL,", (unsigned long long)e->part[i]);
	fputs(" 0 };\nstatic const char *const op_text[] = {\n", e->f);
	for (unsigned i = 0; i < e->nops; i++)
		fprintf(e->f, "\t\"%s\",\n", e->text[i] ? e->text[i] : "?");
	fputs("};\nstatic const char *const wp0[] = {\n", e->f);
	for (unsigned i = 0; i < e->nops; i++)
		fprintf(e->f, "\t\"%s\",\n", e->wp[i]);
	fputs("};\n/* the file window after each op: page cache fills (0: no page), p0's PTEs */\n"
	      "static const uint64_t fcache[][MS_FZRT_FILE_SLOTS] = {\n", e->f);
	for (unsigned i = 0; i < e->nops; i++)
		fprintf(e->f, "\t{ 0x%llxULL, 0x%llxULL, 0x%llxULL, 0x%llxULL },\n",
			(unsigned long long)e->fcache[i][0], (unsigned long long)e->fcache[i][1],
			(unsigned long long)e->fcache[i][2], (unsigned long long)e->fcache[i][3]);
	fputs("\t{ 0, 0, 0, 0 }\n};\nstatic const char *const fpte[] = {\n", e->f);
	for (unsigned i = 0; i < e->nops; i++)
		fprintf(e->f, "\t\"%s\",\n", e->fpte[i]);
	fputs("};\n/* proc, slot, has_alt, fill, alt: after each op, what each process sees */\n"
	      "static const struct ms_fzrt_want wants[] = {\n", e->f);
}

static void put_head(struct emit *e, const struct ms_fz_emit_opts *o)
{
	char *text = ms_fz_seq_text(e->s, "\n *   ");

	fprintf(e->f, "/* %s */\n/*\n", o->title ? o->title : "mmstorm fuzz reproducer");
	if (o->failure)
		fprintf(e->f, " * mmstorm saw: %s\n *\n", o->failure);
	fprintf(e->f, " * The sequence (mmstorm fuzz --replay takes this text):\n *   %s\n *\n"
		" * Build: cc -O2 -Wall -o repro repro.c -lpthread; run as root (userfaultfd,\n"
		" * /dev/mem, /proc/PID/mem, the PAT list in debugfs). Exit status: 1 the failure\n"
		" * shows, 0 every check passed, 2 inconclusive (an injected fault or the VMA\n"
		" * layout went another way than in mmstorm's run), 4 something is missing.\n"
		" * After every op each process's readable pages are compared with the reference\n"
		" * model's contents (tables below), no uffd-wp bit may stand outside a uffd-wp\n"
		" * registered VMA, and process 0's uffd-wp bits must match the model; at the end\n"
		" * the PAT memtype list must be back at its size before the run, plus PAT_LEFT\n"
		" * entries where the kernel tracks pfnmaps per VMA (before the pfnmap tracking\n"
		" * rework memtype_erase() cannot free a piece that is neither a whole entry nor\n"
		" * its end; PAT_LEFT counts that from a list with no entry over /dev/mem's start).\n"
		" * fail-nth ops need CONFIG_FAULT_INJECTION; mmstorm ran them with failslab and\n"
		" * fail_page_alloc ignore-gfp-wait=N.\n"
		" */\n#ifndef _GNU_SOURCE\n#define _GNU_SOURCE\n#endif\n", text ? text : "?");
	free(text);
}

/* Entries the model of per-VMA pfnmap tracking says the sequence leaves from an empty list. */
static unsigned pat_left(const struct ms_fz_seq *s, const int8_t *ran, const uint64_t *part)
{
	static struct ms_fz_pat pt;

	return ms_fz_pat_predict(&pt, NULL, 0, s, ran, part) ? 0 : pt.nnode;
}

int ms_fz_emit_c(FILE *f, const struct ms_fz_seq *s, const struct ms_fz_emit_opts *o,
		 const int8_t *ran, const uint64_t *part)
{
	struct emit e = { .f = f, .s = s };
	unsigned n = s->nops + 1;
	int ret = -ENOMEM;

	e.wp = calloc(n, sizeof(*e.wp));
	e.fcache = calloc(n, sizeof(*e.fcache));
	e.fpte = calloc(n, sizeof(*e.fpte));
	e.want_at = calloc(n + 1, sizeof(*e.want_at));
	e.fork_ok = calloc(n, sizeof(*e.fork_ok));
	e.part = calloc(n, sizeof(*e.part));
	e.text = calloc(n, sizeof(*e.text));
	if (!e.fcache || !e.fpte || !e.wp || !e.want_at || !e.fork_ok || !e.part || !e.text)
		goto out;
	put_head(&e, o);
	put_runtime(f);
	fprintf(f, "\n/* ---- the sequence ---- */\n#define NSLOTS %u\n#define NPAGES %u\n"
		"#define THP %d\n#define FILE_WINDOW %d\n#define PAT_LEFT %uL\n\n"
		"static const struct ms_fzrt_op ops[] = {\n", s->nslots, s->npages, s->thp,
		s->file, pat_left(s, ran, part));
	if ((ret = walk(&e, 0, ran, part)))
		goto out;
	put_tables(&e);
	if ((ret = walk(&e, 1, ran, part)))
		goto out;
	fprintf(f, "\t{ 0, 0, 0, 0, 0 }\n};\n");
	fputs("static const unsigned want_at[] = {", f);
	for (unsigned i = 0; i <= e.nops; i++)
		fprintf(f, " %u,", e.want_at[i]);
	fputs(" };\n", f);
	fputs(main_text, f);
	ret = ferror(f) ? -EIO : 0;
out:
	ms_fz_model_fini(&e.m);
	for (unsigned i = 0; e.text && i < n; i++)
		free(e.text[i]);
	free(e.text);
	free(e.wp);
	free(e.fcache);
	free(e.fpte);
	free(e.want_at);
	free(e.fork_ok);
	free(e.part);
	return ret;
}

/* fail-function: a kernel function marked for error injection returns an error (fail_function). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inject/inject_int.h"
#include "mmstorm/util.h"

#define FF_DIR INJ_DEBUGFS "/fail_function"

const struct ms_injector ms_inj_fail_function;

static const struct ms_param fail_function_params[] = {
	{ "func_name", MS_P_STRING, "should_fail_alloc_page", "", 1, 0, NULL,
	  "the function that fails: one listed in " FF_DIR "/injectable (marked with "
	  "ALLOW_ERROR_INJECTION), e.g. should_fail_alloc_page, should_failslab" },
	{ "func_retval", MS_P_STRING, "auto", "", 1, 0, NULL,
	  "what it returns when it fails; auto: 1 for TRUE functions, -ENOMEM for ERRNO ones, "
	  "0 for NULL ones" },
	INJ_FA_PARAMS("func", "function"),
	{ "func_task_filter", MS_P_BOOL, "1", "", 1, 0, NULL,
	  "fail only the case's processes (make-it-fail); 0 fails every process that gets there, "
	  "allowed only in a VM guest. Without CONFIG_KPROBES_ON_FTRACE the kprobe runs as an "
	  "NMI, where the kernel never sees a task, and only 0 can fail anything" },
	MS_INV_PARAMS,
	{ NULL }
};

static const struct inj_fa fail_function_fa = {
	.inj = &ms_inj_fail_function,
	.dir = "fail_function",
	.prefix = "func",
	.config = "CONFIG_FAIL_FUNCTION",
	.task_filter_param = true,
};

/* The error type the kernel lists for name in injectable ("ERRNO", "TRUE", ...). */
static int injectable_type(const char *name, char *type, size_t len)
{
	char line[256], fn[128], ty[32];
	int ret = -ENOENT;
	FILE *f = fopen(FF_DIR "/injectable", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %31s", fn, ty) == 2 && !strcmp(fn, name)) {
			snprintf(type, len, "%s", ty);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static int retval_for(struct ms_ctx *ctx, const char *type, long *rv)
{
	const char *want = ms_param_s(ctx, "func_retval");
	char *end;

	if (strcmp(want, "auto")) {
		errno = 0;
		*rv = strtol(want, &end, 0);
		if (end == want || *end || errno)
			return ms_error(ctx, EINVAL, "func_retval=%s: not a number or auto", want);
		return 0;
	}
	if (!strcmp(type, "TRUE"))
		*rv = 1;
	else if (!strcmp(type, "NULL"))
		*rv = 0;
	else
		*rv = -ENOMEM;
	return 0;
}

static int fail_function_probe(struct ms_ctx *ctx)
{
	const char *name = ms_param_s(ctx, "func_name");
	char type[32], cur[512];
	int ret;

	if ((ret = inj_fa_probe(ctx, &fail_function_fa)))
		return ret;
	if (!ms_param_i(ctx, "func_task_filter") && !ms_in_guest(ctx))
		return ms_skip(ctx, "func_task_filter=0 fails every process on the machine: only "
			       "inside a VM guest");
	ret = injectable_type(name, type, sizeof(type));
	if (ret == -ENOENT)
		return ms_skip(ctx, "func_name=%s is not in " FF_DIR "/injectable (not marked "
			       "with ALLOW_ERROR_INJECTION in this kernel)", name);
	if (ret)
		return ms_error(ctx, -ret, FF_DIR "/injectable: %s", strerror(-ret));
	/* Another user's attached function would fail along with ours. */
	if (ms_read_file(FF_DIR "/inject", cur, sizeof(cur)) > 0 && cur[0] != '\n')
		return ms_skip(ctx, FF_DIR "/inject already lists a function: %s", cur);
	return 0;
}

/*
 * inject and FUNC/retval are not knobs the journal can restore (writing the old list back
 * does not detach a function): disarm detaches it. After a crash the journal still puts
 * probability back to its old value, which leaves an attached function inert.
 */
static int fail_function_arm(struct ms_ctx *ctx)
{
	const char *name = ms_param_s(ctx, "func_name");
	char path[256], buf[32], type[32] = "";
	long rv = 0;
	int ret;

	if ((ret = injectable_type(name, type, sizeof(type))) && ret != -ENOENT)
		return ms_error(ctx, -ret, FF_DIR "/injectable: %s", strerror(-ret));
	if ((ret = retval_for(ctx, type, &rv)))
		return ret;
	if ((ret = ms_write_file(FF_DIR "/inject", name)))
		return ms_error(ctx, -ret, FF_DIR "/inject <- %s: %s", name, strerror(-ret));
	snprintf(path, sizeof(path), FF_DIR "/%s/retval", name);
	/* Parsed as an unsigned number: -ENOMEM goes in as 0xfffffffffffffff4. */
	snprintf(buf, sizeof(buf), "%#lx", (unsigned long)rv);
	if ((ret = ms_write_file(path, buf))) {
		ms_error(ctx, -ret, "%s <- %s: %s", path, buf, strerror(-ret));
		snprintf(path, sizeof(path), "!%s", name);
		ms_write_file(FF_DIR "/inject", path);
		return ret;
	}
	ms_note(ctx, "fail_function: %s (%s) returns %ld when it fails", name, type, rv);
	return inj_fa_arm(ctx, &fail_function_fa);
}

static void fail_function_disarm(struct ms_ctx *ctx)
{
	char buf[160];

	inj_fa_disarm(ctx, &fail_function_fa);
	snprintf(buf, sizeof(buf), "!%s", ms_param_s(ctx, "func_name"));
	ms_write_file(FF_DIR "/inject", buf);
}

static void fail_function_before(struct ms_ctx *ctx, const char *point)
{
	inj_fa_before(ctx, &fail_function_fa, point);
}

static bool fail_function_after(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	return inj_fa_after(ctx, &fail_function_fa, point, ret, err);
}

const struct ms_injector ms_inj_fail_function = {
	.name = "fail-function",
	.summary = "a kernel function marked for error injection fails for the case's "
		   "processes (debugfs fail_function: should_fail_alloc_page, ...)",
	.params = fail_function_params,
	.probe = fail_function_probe,
	.arm = fail_function_arm,
	.disarm = fail_function_disarm,
	.before = fail_function_before,
	.after = fail_function_after,
};

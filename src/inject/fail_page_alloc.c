/* fail-page-alloc: page allocations of the case's processes fail (debugfs fail_page_alloc). */
#include <stdbool.h>

#include "inject/inject_int.h"

const struct ms_injector ms_inj_fail_page_alloc;

static const struct ms_param fail_page_alloc_params[] = {
	INJ_FA_PARAMS("page", "page"),
	INJ_FA_GFP_PARAM("page"),
	{ "page_min_order", MS_P_INT, "0", "", 0, 10, NULL,
	  "only allocations of at least this order may fail (0: page tables, single pages)" },
	MS_INV_PARAMS,
	{ NULL }
};

static const struct inj_fa fail_page_alloc_fa = {
	.inj = &ms_inj_fail_page_alloc,
	.dir = "fail_page_alloc",
	.prefix = "page",
	.config = "CONFIG_FAIL_PAGE_ALLOC",
	.gfp = true,
	.page = true,
};

static int fail_page_alloc_probe(struct ms_ctx *ctx)
{
	return inj_fa_probe(ctx, &fail_page_alloc_fa);
}

static int fail_page_alloc_arm(struct ms_ctx *ctx)
{
	return inj_fa_arm(ctx, &fail_page_alloc_fa);
}

static void fail_page_alloc_disarm(struct ms_ctx *ctx)
{
	inj_fa_disarm(ctx, &fail_page_alloc_fa);
}

static void fail_page_alloc_before(struct ms_ctx *ctx, const char *point)
{
	inj_fa_before(ctx, &fail_page_alloc_fa, point);
}

static bool fail_page_alloc_after(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	return inj_fa_after(ctx, &fail_page_alloc_fa, point, ret, err);
}

const struct ms_injector ms_inj_fail_page_alloc = {
	.name = "fail-page-alloc",
	.summary = "page allocations of the case's processes fail at random (debugfs "
		   "fail_page_alloc with task-filter and min-order), optionally only below one "
		   "kernel function",
	.params = fail_page_alloc_params,
	.probe = fail_page_alloc_probe,
	.arm = fail_page_alloc_arm,
	.disarm = fail_page_alloc_disarm,
	.before = fail_page_alloc_before,
	.after = fail_page_alloc_after,
};

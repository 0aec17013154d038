/* failslab: slab allocations of the case's processes fail (debugfs failslab, task-filtered). */
#include <stdbool.h>

#include "inject/inject_int.h"

const struct ms_injector ms_inj_failslab;

static const struct ms_param failslab_params[] = {
	INJ_FA_PARAMS("slab", "slab"),
	INJ_FA_GFP_PARAM("slab"),
	MS_INV_PARAMS,
	{ NULL }
};

static const struct inj_fa failslab_fa = {
	.inj = &ms_inj_failslab,
	.dir = "failslab",
	.prefix = "slab",
	.config = "CONFIG_FAILSLAB",
	.gfp = true,
};

static int failslab_probe(struct ms_ctx *ctx)
{
	return inj_fa_probe(ctx, &failslab_fa);
}

static int failslab_arm(struct ms_ctx *ctx)
{
	return inj_fa_arm(ctx, &failslab_fa);
}

static void failslab_disarm(struct ms_ctx *ctx)
{
	inj_fa_disarm(ctx, &failslab_fa);
}

static void failslab_before(struct ms_ctx *ctx, const char *point)
{
	inj_fa_before(ctx, &failslab_fa, point);
}

static bool failslab_after(struct ms_ctx *ctx, const char *point, long ret, int err)
{
	return inj_fa_after(ctx, &failslab_fa, point, ret, err);
}

const struct ms_injector ms_inj_failslab = {
	.name = "failslab",
	.summary = "slab allocations of the case's processes fail at random (debugfs failslab "
		   "with task-filter), optionally only below one kernel function",
	.params = failslab_params,
	.probe = failslab_probe,
	.arm = failslab_arm,
	.disarm = failslab_disarm,
	.before = failslab_before,
	.after = failslab_after,
};

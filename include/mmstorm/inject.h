/* The injector contract: probe / arm / disarm, with every knob change journaled. */
#ifndef MMSTORM_INJECT_H
#define MMSTORM_INJECT_H

#include <stdbool.h>

#include "mmstorm/param.h"

struct ms_ctx;

struct ms_injector {
	const char *name;
	const char *summary;
	const struct ms_param *params;
	int (*probe)(struct ms_ctx *ctx);	/* 0, MS_SKIP (after ms_skip), -errno */
	int (*arm)(struct ms_ctx *ctx);
	void (*disarm)(struct ms_ctx *ctx);
	bool destructive;			/* refused on bare metal without --allow-destructive */
};

#endif

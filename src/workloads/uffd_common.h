/* Shared by hgm and hugetlb-minor: the userfaultfd handler thread, how it starts, stops, fails. */
#ifndef MMSTORM_WORKLOADS_UFFD_COMMON_H
#define MMSTORM_WORKLOADS_UFFD_COMMON_H

#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mmstorm/workload.h"

/* First member of a workload's handler struct: on_msg gets it back and casts. */
struct ms_uffd_thread {
	int uffd, stop_fd;		/* -1 until opened */
	uintptr_t base;			/* the registered range (atomic: may move per iteration) */
	uint64_t len;
	int err;			/* first fatal errno; the range is unregistered then */
	const char *err_what;
	bool dead;			/* atomic: the handler gave up (err is set) */
	pthread_t thread;
	bool thread_ok;
	void (*on_msg)(struct ms_uffd_thread *t, const struct uffd_msg *m);
};

int ms_uffd_open(void);
void ms_uffd_fail(struct ms_uffd_thread *t, int err, const char *what);
int ms_uffd_start(struct ms_ctx *ctx, struct ms_uffd_thread *t);
void ms_uffd_stop(struct ms_ctx *ctx, struct ms_uffd_thread *t);
void ms_uffd_close(struct ms_ctx *ctx, struct ms_uffd_thread *t);
/* A teardown step that failed (ret != 0, errno set) is an ERROR: a bug, not silence. */
void ms_uffd_release(struct ms_ctx *ctx, int ret, const char *what);

#endif

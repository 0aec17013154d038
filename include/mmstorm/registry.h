/* The one list of workloads and injectors. */
#ifndef MMSTORM_REGISTRY_H
#define MMSTORM_REGISTRY_H

#include <stddef.h>

struct ms_workload;
struct ms_injector;

extern const struct ms_workload *const ms_workloads[];	/* NULL-terminated */
extern const struct ms_injector *const ms_injectors[];	/* NULL-terminated */

const struct ms_workload *ms_workload_find(const char *name);
const struct ms_injector *ms_injector_find(const char *name);

#endif

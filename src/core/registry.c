/* The one list of workloads and injectors: `mmstorm list`, suite validation and docs use it. */
#include <string.h>

#include "mmstorm/inject.h"
#include "mmstorm/registry.h"
#include "mmstorm/workload.h"

extern const struct ms_workload ms_wl_fork_storm;
extern const struct ms_workload ms_wl_guest_crash;
extern const struct ms_workload ms_wl_guest_hang;
extern const struct ms_workload ms_wl_pfnmap;
extern const struct ms_injector ms_inj_fail_nth;
extern const struct ms_injector ms_inj_failslab;
extern const struct ms_injector ms_inj_fail_page_alloc;
extern const struct ms_injector ms_inj_fail_function;
extern const struct ms_injector ms_inj_memcg;
extern const struct ms_injector ms_inj_sigkill;
extern const struct ms_injector ms_inj_uffd_stall;
extern const struct ms_injector ms_inj_hwpoison;
extern const struct ms_injector ms_inj_hugetlb_exhaust;
extern const struct ms_injector ms_inj_rlimit;
extern const struct ms_injector ms_inj_pressure;
extern const struct ms_workload ms_wl_thp_split;
extern const struct ms_workload ms_wl_hugetlb_minor;
extern const struct ms_workload ms_wl_hgm;
extern const struct ms_workload ms_wl_gup_pin;
extern const struct ms_workload ms_wl_pmd_share;
extern const struct ms_workload ms_wl_mshare;
extern const struct ms_workload ms_wl_repro;
extern const struct ms_workload ms_wl_fuzz;

const struct ms_workload *const ms_workloads[] = {
	&ms_wl_fork_storm,
	&ms_wl_pfnmap,
	&ms_wl_thp_split,
	&ms_wl_hugetlb_minor,
	&ms_wl_hgm,
	&ms_wl_gup_pin,
	&ms_wl_pmd_share,
	&ms_wl_mshare,
	&ms_wl_repro,
	&ms_wl_fuzz,
	&ms_wl_guest_crash,
	&ms_wl_guest_hang,
	NULL
};

const struct ms_injector *const ms_injectors[] = {
	&ms_inj_fail_nth,
	&ms_inj_failslab,
	&ms_inj_fail_page_alloc,
	&ms_inj_fail_function,
	&ms_inj_memcg,
	&ms_inj_sigkill,
	&ms_inj_uffd_stall,
	&ms_inj_hwpoison,
	&ms_inj_hugetlb_exhaust,
	&ms_inj_rlimit,
	&ms_inj_pressure,
	NULL
};

const struct ms_workload *ms_workload_find(const char *name)
{
	for (int i = 0; ms_workloads[i]; i++)
		if (!strcmp(ms_workloads[i]->name, name))
			return ms_workloads[i];
	return NULL;
}

const struct ms_injector *ms_injector_find(const char *name)
{
	for (int i = 0; ms_injectors[i]; i++)
		if (!strcmp(ms_injectors[i]->name, name))
			return ms_injectors[i];
	return NULL;
}

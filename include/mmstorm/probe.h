/* What the running kernel offers, as a JSON object and a table (`mmstorm probe`). */
#ifndef MMSTORM_PROBE_H
#define MMSTORM_PROBE_H

#include <stdio.h>

#include <jansson.h>

/*
 * Returns a new object: one member per feature, each an object with at least
 * "available" (bool) and "detail" (string: what was found, or why it is unavailable).
 * Features: thp, hugetlb, userfaultfd, io_uring, msharefs, madv_split, gup_test,
 * fault_injection, fail_nth, hwpoison, pat_memtype_list, cgroup2, dev_mem, pci_bars,
 * debugfs, tracefs, perf_events, kernel_config. Never fails: unknown is "available": false.
 */
json_t *ms_probe(void);
void ms_probe_print(const json_t *probe, FILE *f);

/* Kernel identity for run.json: release, version, cmdline, and MM-relevant CONFIG_ values
 * from /proc/config.gz or /boot/config-$(uname -r) (config_path may override). */
json_t *ms_probe_kernel(const char *config_path);
json_t *ms_probe_cpu(void);
json_t *ms_probe_memory(void);

/* Parse a kernel .config text (plain or gzip) into {"CONFIG_X": "y", ...}, MM-relevant keys only
 * when filter is set. NULL if unreadable. */
json_t *ms_kconfig_load(const char *path, int filter);

#endif

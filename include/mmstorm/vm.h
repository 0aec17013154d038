/* `mmstorm vm`: boot kernels under QEMU with mmstorm as PID 1, run a suite, compare kernels. */
#ifndef MMSTORM_VM_H
#define MMSTORM_VM_H

#include <jansson.h>

/* argv[0] is "vm" (resp. "--vm"); returns the process exit status (DESIGN.md). */
int ms_cmd_vm(int argc, char **argv);
int ms_bench_vm(int argc, char **argv);

/*
 * Side by side comparison of n >= 2 runs of one suite (run.json models, labels[i] names
 * runs[i]; runs[0] is the reference): every verdict difference first, then per case and
 * metric the median over repeats of each run and its ratio to the reference. Writes
 * DIR/compare.md and DIR/compare.json. Returns the number of verdict differences, or -errno.
 */
int ms_kcompare_write(const char *dir, const char *const *labels, json_t *const *runs,
		      unsigned n);

#endif

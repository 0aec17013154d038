/* Where shipped files live: configs/ next to the source tree, the build dir or an install. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

int ms_find_config(const char *name, char *out, size_t len)
{
	char exe[PATH_MAX], *slash;
	ssize_t n;

	snprintf(out, len, "configs/%s", name);
	if (!access(out, R_OK))
		return 0;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			/* build dir inside the source tree, or an installed share dir */
			snprintf(out, len, "%s/../configs/%s", exe, name);
			if (!access(out, R_OK))
				return 0;
			snprintf(out, len, "%s/../share/mmstorm/configs/%s", exe, name);
			if (!access(out, R_OK))
				return 0;
		}
	}
	snprintf(out, len, "%s/configs/%s", MMSTORM_SOURCE_DIR, name);
	return access(out, R_OK) ? -ENOENT : 0;
}

/* Verdict names, as they appear in events, run.json, KTAP and JUnit. */
#include <string.h>

#include "mmstorm/result.h"
#include "mmstorm/util.h"

static const char *const verdict_names[MS_V__COUNT] = {
	[MS_V_PASS] = "PASS",
	[MS_V_SKIP] = "SKIP",
	[MS_V_FAIL] = "FAIL",
	[MS_V_ERROR] = "ERROR",
	[MS_V_TIMEOUT] = "TIMEOUT",
	[MS_V_CRASH] = "CRASH",
};

const char *ms_verdict_name(enum ms_verdict v)
{
	if ((unsigned)v >= MS_V__COUNT)
		return "?";
	return verdict_names[v];
}

int ms_verdict_parse(const char *name)
{
	size_t i;

	if (!name)
		return -1;
	for (i = 0; i < MS_ARRAY_SIZE(verdict_names); i++)
		if (!strcmp(name, verdict_names[i]))
			return (int)i;
	return -1;
}

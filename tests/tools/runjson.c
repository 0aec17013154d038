/* Test tool: checks a run.json against the schema's invariants and answers queries on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/*
 * usage: runjson FILE check            schema, status, summary counts agree with the cases
 *        runjson FILE verdict CASE     prints the verdict of CASE
 *        runjson FILE get KEY...       prints a member path (objects by name, arrays by index)
 *        runjson FILE verdicts         prints "case verdict" lines
 */
static const char *const verdicts[] = { "PASS", "SKIP", "FAIL", "ERROR", "TIMEOUT", "CRASH" };

static int check(json_t *run)
{
	json_t *cases = json_object_get(run, "cases"), *summary = json_object_get(run, "summary");
	long counts[6] = { 0 };
	size_t i;
	json_t *c;

	if (strcmp(json_string_value(json_object_get(run, "schema")) ?: "", "mmstorm-run/1")) {
		fprintf(stderr, "runjson: schema is not mmstorm-run/1\n");
		return 1;
	}
	if (!json_is_string(json_object_get(run, "status")) || !json_is_array(cases) ||
	    !json_is_object(summary) || !json_is_object(json_object_get(run, "kernel"))) {
		fprintf(stderr, "runjson: status/cases/summary/kernel missing or ill-typed\n");
		return 1;
	}
	json_array_foreach(cases, i, c) {
		const char *v = json_string_value(json_object_get(c, "verdict"));
		json_t *reps = json_object_get(c, "repeats");
		int k;

		for (k = 0; k < 6 && (!v || strcmp(v, verdicts[k])); k++)
			;
		/* A case that started but never ended (interrupted run) has no verdict. */
		if (!v && strcmp(json_string_value(json_object_get(run, "status")) ?: "", "complete"))
			continue;
		if (k == 6 || !json_is_array(reps) || !json_array_size(reps) ||
		    !json_is_string(json_object_get(c, "name"))) {
			fprintf(stderr, "runjson: case %zu malformed\n", i);
			return 1;
		}
		counts[k]++;
	}
	for (int k = 0; k < 6; k++) {
		json_t *n = json_object_get(summary, verdicts[k]);

		if (json_integer_value(n) != counts[k]) {
			fprintf(stderr, "runjson: summary %s=%lld but cases say %ld\n", verdicts[k],
				json_integer_value(n), counts[k]);
			return 1;
		}
	}
	printf("runjson: %zu cases, schema ok, status %s\n", json_array_size(cases),
	       json_string_value(json_object_get(run, "status")));
	return 0;
}

static int query(json_t *run, int argc, char **argv)
{
	json_t *v;
	size_t i;

	if (!strcmp(argv[2], "check"))
		return check(run);
	if (!strcmp(argv[2], "verdicts") || !strcmp(argv[2], "verdict")) {
		json_array_foreach(json_object_get(run, "cases"), i, v) {
			const char *name = json_string_value(json_object_get(v, "name"));
			const char *verdict = json_string_value(json_object_get(v, "verdict"));

			if (argc > 3 && strcmp(name ?: "", argv[3]))
				continue;
			if (argc > 3)
				printf("%s\n", verdict ?: "none");
			else
				printf("%s %s\n", name, verdict ?: "none");
		}
		return 0;
	}
	if (!strcmp(argv[2], "get")) {
		v = run;
		for (int a = 3; a < argc && v; a++)
			v = json_is_array(v) ? json_array_get(v, strtoul(argv[a], NULL, 10)) :
					       json_object_get(v, argv[a]);
		if (!v)
			return 1;
		if (json_is_string(v))
			printf("%s\n", json_string_value(v));
		else
			json_dumpf(v, stdout, JSON_ENCODE_ANY | JSON_COMPACT), putchar('\n');
		return 0;
	}
	return 2;
}

int main(int argc, char **argv)
{
	json_error_t err;
	json_t *run;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: runjson FILE check|verdicts|verdict CASE|get KEY...\n");
		return 2;
	}
	run = json_load_file(argv[1], 0, &err);
	if (!run) {
		fprintf(stderr, "runjson: %s:%d: %s\n", argv[1], err.line, err.text);
		return 1;
	}
	rc = query(run, argc, argv);
	json_decref(run);
	return rc;
}

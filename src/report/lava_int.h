/* Internals of `mmstorm lava`: the two subcommands. */
#ifndef MMSTORM_LAVA_INT_H
#define MMSTORM_LAVA_INT_H

/* argv[0] is "export" / "collect"; each returns the exit status. */
int ms_lava_export_main(int argc, char **argv);
int ms_lava_collect_main(int argc, char **argv);

#endif

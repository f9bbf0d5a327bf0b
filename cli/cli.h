/* cli.h — declarations of every command function listed in commands.def. */
#ifndef RL_CLI_H
#define RL_CLI_H

#define X(words, fn, summary) int fn(int argc, char **argv);
#include "commands.def"
#undef X

/* Version string ("0.1.0"). */
extern const char *rl_version;
/* Optional features built in, e.g. "openmp openblas sqlite ..." */
const char *rl_build_features(void);

#endif

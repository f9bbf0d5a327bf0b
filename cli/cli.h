/* cli.h — declarations of every command function listed in commands.def. */
#ifndef RL_CLI_H
#define RL_CLI_H

#define X(words, fn, summary) int fn(int argc, char **argv);
#include "commands.def"
#undef X

/* `feedback export --db`: the SQLite side of cmd_feedback_export (cli/serve.c). */
int cmd_feedback_export_db(int argc, char **argv);

/* Version string ("0.1.0"). */
extern const char *rl_version;
/* Optional features built in, e.g. "openmp openblas sqlite ..." */
const char *rl_build_features(void);

#endif

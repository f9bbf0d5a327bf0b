/* flags.h — every command's flags live in one table: name, type, default,
 * range, help. Parsing, validation, defaults and `--help` all come from it.
 *
 *   static int steps; static double lr; static const char *out;
 *   static rl_flag flags[] = {
 *       {"steps", RL_FLAG_INT,    &steps, "1000", 1, 1e9, NULL, "optimizer steps"},
 *       {"lr",    RL_FLAG_FLOAT,  &lr,    "3e-4", 0, 1,   NULL, "peak learning rate"},
 *       {"out",   RL_FLAG_STRING, &out,   NULL,   0, 0,   NULL, "output checkpoint (required)"},
 *   };
 *   int rc = rl_flags_parse("pretrain", "Pretrain a GPT on token shards", flags, RL_NFLAGS(flags), argc, argv);
 *   if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
 *
 * A flag whose default is NULL is required (a STRINGS flag with default "" is
 * optional and starts empty). Values: `--name value` or
 * `--name=value`; BOOL flags take no value (`--name`, or `--no-name`).
 * STRINGS flags collect values: `--input a b c` and `--input a --input b`.
 * Errors print one line "rlhf <cmd>: <what>; see 'rlhf <cmd> --help'" to stderr.
 */
#ifndef RL_FLAGS_H
#define RL_FLAGS_H

typedef enum {
    RL_FLAG_INT,     /* dest: int*;    min/max inclusive */
    RL_FLAG_I64,     /* dest: long long*; min/max inclusive (as doubles) */
    RL_FLAG_FLOAT,   /* dest: double*; min/max inclusive */
    RL_FLAG_STRING,  /* dest: const char** (points into argv or the default) */
    RL_FLAG_BOOL,    /* dest: int* (0/1); default "0" or "1" */
    RL_FLAG_ENUM,    /* dest: const char** set to one of choices ("a|b|c") */
    RL_FLAG_STRINGS  /* dest: rl_strlist*; def NULL = at least one value required, "" = optional */
} rl_flag_type;

#define RL_STRLIST_MAX 64
typedef struct {
    const char *v[RL_STRLIST_MAX];
    int n;
} rl_strlist;

typedef struct {
    const char *name;     /* without leading dashes, e.g. "vocab-size" */
    rl_flag_type type;
    void *dest;
    const char *def;      /* default as text; NULL = required (STRING/ENUM/INT/FLOAT) */
    double min, max;      /* INT/I64/FLOAT range, inclusive; ignored when min > max */
    const char *choices;  /* ENUM only: "a|b|c" */
    const char *help;
} rl_flag;

#define RL_NFLAGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

enum { RL_FLAGS_OK = 0, RL_FLAGS_HELP = 1, RL_FLAGS_ERROR = 2 };

/* Applies defaults, then parses argv[0..argc) (argv[0] is the first flag, not
 * the command name). Returns RL_FLAGS_OK, RL_FLAGS_HELP (help printed to
 * stdout) or RL_FLAGS_ERROR (message printed to stderr; exit with 2). */
int rl_flags_parse(const char *cmd, const char *summary, rl_flag *flags, int nflags, int argc, char **argv);

/* Prints the help generated from the table to stdout. */
void rl_flags_help(const char *cmd, const char *summary, const rl_flag *flags, int nflags);

/* Was the flag given on the command line (not just defaulted)? */
int rl_flag_given(const rl_flag *flags, int nflags, const char *name);

/* Strict number parsers for user input: 1 on success, 0 on junk, overflow or
 * (for integers) a non-integral value. Integers accept "1000" and "1e3". */
int rl_parse_int(const char *s, long long *out);
int rl_parse_double(const char *s, double *out);

#endif

#include "flags.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rl_parse_double(const char *s, double *out) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != 0 || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

int rl_parse_int(const char *s, long long *out) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end == 0 && errno == 0) { *out = v; return 1; }
    double d; /* allow 1e6-style integers */
    if (!rl_parse_double(s, &d) || d != floor(d) || fabs(d) > 9.0e18) return 0;
    *out = (long long)d;
    return 1;
}

static const char *type_name(const rl_flag *f) {
    switch (f->type) {
    case RL_FLAG_INT: case RL_FLAG_I64: return "int";
    case RL_FLAG_FLOAT: return "float";
    case RL_FLAG_STRING: return "string";
    case RL_FLAG_BOOL: return "bool";
    case RL_FLAG_ENUM: return "choice";
    case RL_FLAG_STRINGS: return "string...";
    }
    return "?";
}

static int enum_has(const char *choices, const char *v) {
    size_t n = strlen(v);
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

static int usage_error(const char *cmd, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "rlhf %s: ", cmd);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "; see 'rlhf %s --help'\n", cmd);
    return RL_FLAGS_ERROR;
}

/* Sets one flag from text. Returns 0 or an error code (message printed). */
static int set_value(const char *cmd, rl_flag *f, const char *v, int from_default) {
    char range[128];
    switch (f->type) {
    case RL_FLAG_INT:
    case RL_FLAG_I64: {
        long long x;
        if (!rl_parse_int(v, &x)) return usage_error(cmd, "--%s expects an integer, got '%s'", f->name, v);
        if (f->min <= f->max && ((double)x < f->min || (double)x > f->max)) {
            snprintf(range, sizeof range, "%s is out of range [%.15g, %.15g]", v, f->min, f->max);
            return usage_error(cmd, "--%s: %s", f->name, range);
        }
        if (f->type == RL_FLAG_INT) {
            if (x < -2147483647LL || x > 2147483647LL) return usage_error(cmd, "--%s: %s does not fit in an int", f->name, v);
            *(int *)f->dest = (int)x;
        } else {
            *(long long *)f->dest = x;
        }
        return 0;
    }
    case RL_FLAG_FLOAT: {
        double x;
        if (!rl_parse_double(v, &x)) return usage_error(cmd, "--%s expects a number, got '%s'", f->name, v);
        if (f->min <= f->max && (x < f->min || x > f->max)) {
            snprintf(range, sizeof range, "%s is out of range [%.15g, %.15g]", v, f->min, f->max);
            return usage_error(cmd, "--%s: %s", f->name, range);
        }
        *(double *)f->dest = x;
        return 0;
    }
    case RL_FLAG_STRING:
        *(const char **)f->dest = v;
        return 0;
    case RL_FLAG_ENUM:
        if (!enum_has(f->choices, v)) {
            snprintf(range, sizeof range, "'%s' is not one of %s", v, f->choices);
            return usage_error(cmd, "--%s: %s", f->name, range);
        }
        *(const char **)f->dest = v;
        return 0;
    case RL_FLAG_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *(int *)f->dest = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *(int *)f->dest = 0;
        else return usage_error(cmd, "--%s expects true or false, got '%s'", f->name, v);
        return 0;
    case RL_FLAG_STRINGS: {
        rl_strlist *l = f->dest;
        if (from_default) return 0;
        if (l->n >= RL_STRLIST_MAX) return usage_error(cmd, "--%s: too many values (at most %s)", f->name, "64");
        l->v[l->n++] = v;
        return 0;
    }
    }
    return RL_FLAGS_ERROR;
}

void rl_flags_help(const char *cmd, const char *summary, const rl_flag *flags, int nflags) {
    printf("usage: rlhf %s [flags]\n\n%s\n\nflags:\n", cmd, summary);
    for (int i = 0; i < nflags; i++) {
        const rl_flag *f = &flags[i];
        char left[64];
        if (f->type == RL_FLAG_BOOL) snprintf(left, sizeof left, "--%s", f->name);
        else snprintf(left, sizeof left, "--%s <%s>", f->name, type_name(f));
        printf("  %-28s %s", left, f->help ? f->help : "");
        if (f->type == RL_FLAG_ENUM) printf(" (one of %s)", f->choices);
        if ((f->type == RL_FLAG_INT || f->type == RL_FLAG_I64 || f->type == RL_FLAG_FLOAT) && f->min <= f->max)
            printf(" [%.10g..%.10g]", f->min, f->max);
        if (f->type == RL_FLAG_STRINGS) printf(" (repeatable)");
        else if (f->def) printf(" (default %s)", *f->def ? f->def : "\"\"");
        else printf(" (required)");
        printf("\n");
    }
    printf("  %-28s %s\n", "--help", "show this help");
}

/* Which flags were given, per table (tables are static, so the pointer is a key). */
#define RL_MAX_TABLES 8
static struct { const rl_flag *table; unsigned char given[128]; } rl__given[RL_MAX_TABLES];

static unsigned char *given_for(const rl_flag *table) {
    for (int i = 0; i < RL_MAX_TABLES; i++)
        if (rl__given[i].table == table) return rl__given[i].given;
    for (int i = 0; i < RL_MAX_TABLES; i++)
        if (!rl__given[i].table) { rl__given[i].table = table; return rl__given[i].given; }
    return NULL;
}

int rl_flags_parse(const char *cmd, const char *summary, rl_flag *flags, int nflags, int argc, char **argv) {
    unsigned char *given = given_for(flags);
    if (given) memset(given, 0, 128);
    for (int i = 0; i < nflags; i++) {
        rl_flag *f = &flags[i];
        if (f->type == RL_FLAG_STRINGS) { ((rl_strlist *)f->dest)->n = 0; continue; }
        if (f->def) {
            int rc = set_value(cmd, f, f->def, 1);
            if (rc) return rc;
        } else if (f->type == RL_FLAG_STRING || f->type == RL_FLAG_ENUM) {
            *(const char **)f->dest = NULL;
        }
    }
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) { rl_flags_help(cmd, summary, flags, nflags); return RL_FLAGS_HELP; }
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return usage_error(cmd, "unexpected argument '%s'%s", arg, " (flags start with --)");
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int neg = 0;
        rl_flag *f = NULL;
        for (int i = 0; i < nflags && !f; i++)
            if (strlen(flags[i].name) == nlen && !strncmp(flags[i].name, name, nlen)) f = &flags[i];
        if (!f && nlen > 3 && !strncmp(name, "no-", 3)) {
            for (int i = 0; i < nflags && !f; i++)
                if (flags[i].type == RL_FLAG_BOOL && strlen(flags[i].name) == nlen - 3 && !strncmp(flags[i].name, name + 3, nlen - 3)) {
                    f = &flags[i];
                    neg = 1;
                }
        }
        if (!f) {
            char nm[96];
            snprintf(nm, sizeof nm, "%.*s", (int)(nlen > 80 ? 80 : nlen), name);
            return usage_error(cmd, "unknown flag --%s%s", nm, "");
        }
        if (given) given[f - flags] = 1;
        int rc;
        if (f->type == RL_FLAG_BOOL) {
            if (eq) rc = set_value(cmd, f, eq + 1, 0);
            else { *(int *)f->dest = !neg; rc = 0; }
        } else if (eq) {
            rc = set_value(cmd, f, eq + 1, 0);
        } else if (f->type == RL_FLAG_STRINGS) {
            int n = 0;
            while (a + 1 < argc && strncmp(argv[a + 1], "--", 2) != 0) {
                rc = set_value(cmd, f, argv[++a], 0);
                if (rc) return rc;
                n++;
            }
            if (n == 0) return usage_error(cmd, "--%s needs at least one value%s", f->name, "");
            rc = 0;
        } else {
            if (a + 1 >= argc) return usage_error(cmd, "--%s needs a value%s", f->name, "");
            rc = set_value(cmd, f, argv[++a], 0);
        }
        if (rc) return rc;
    }
    for (int i = 0; i < nflags; i++) {
        rl_flag *f = &flags[i];
        if (!f->def && f->type != RL_FLAG_BOOL && !(given && given[i]))
            return usage_error(cmd, "--%s is required%s", f->name, "");
    }
    return RL_FLAGS_OK;
}

int rl_flag_given(const rl_flag *flags, int nflags, const char *name) {
    unsigned char *given = given_for(flags);
    for (int i = 0; i < nflags && i < 128; i++)
        if (!strcmp(flags[i].name, name)) return given ? given[i] : 0;
    return 0;
}

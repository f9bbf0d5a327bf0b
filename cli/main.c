/* main.c — `rlhf <command> [flags]`, git-style. Finds the command whose words
 * match the start of argv (longest match first) and hands it the rest. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "../src/base/log.h"
#include "../src/model/ckpt_secure.h"

const char *rl_version = "0.1.0";

typedef struct {
    const char *words;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
#define X(words, fn, summary) {words, fn, summary},
#include "commands.def"
#undef X
};
static const int ncommands = (int)(sizeof commands / sizeof commands[0]);

/* Number of argv words that `words` ("tokenizer train") matches, 0 if none. */
static int match(const char *words, int argc, char **argv) {
    int k = 0;
    const char *p = words;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t)(sp - p) : strlen(p);
        if (k >= argc || strlen(argv[k]) != len || strncmp(argv[k], p, len) != 0) return 0;
        k++;
        p = sp ? sp + 1 : p + len;
    }
    return k;
}

static void usage(FILE *out, const char *prefix) {
    fprintf(out, "usage: rlhf <command> [flags]   (rlhf <command> --help for its flags)\n\ncommands:\n");
    for (int i = 0; i < ncommands; i++) {
        if (prefix && strncmp(commands[i].words, prefix, strlen(prefix)) != 0) continue;
        fprintf(out, "  %-26s %s\n", commands[i].words, commands[i].summary);
    }
    if (!prefix) fprintf(out, "\n  --version                  print the version\n  --help                     this list\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout, NULL);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("rlhf %s\n", rl_version);
        return 0;
    }
    int best = -1, best_k = 0;
    for (int i = 0; i < ncommands; i++) {
        int k = match(commands[i].words, argc - 1, argv + 1);
        if (k > best_k) { best = i; best_k = k; }
    }
    if (best < 0) {
        /* A group word alone ("rlhf tokenizer"): list its subcommands. */
        int any = 0;
        for (int i = 0; i < ncommands; i++) {
            size_t n = strlen(argv[1]);
            if (!strncmp(commands[i].words, argv[1], n) && commands[i].words[n] == ' ') any = 1;
        }
        if (any) {
            int help = argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"));
            if (!help) fprintf(stderr, "rlhf %s: %s%s\n", argv[1], argc > 2 ? "unknown subcommand " : "needs a subcommand", argc > 2 ? argv[2] : "");
            char prefix[128];
            snprintf(prefix, sizeof prefix, "%s ", argv[1]);
            usage(help ? stdout : stderr, prefix);
            return help ? 0 : 2;
        }
        fprintf(stderr, "rlhf: unknown command '%s'; see 'rlhf --help'\n", argv[1]);
        return 2;
    }
    /* provenance of any checkpoint this command writes (ckpt_secure.h) */
    ckpt_prov_begin(commands[best].words, argc - 1 - best_k, argv + 1 + best_k, rl_version);
    int rc = commands[best].fn(argc - 1 - best_k, argv + 1 + best_k);
    ckpt_secure_reset();   /* wipes any key held for checkpoints */
    return rc;
}

/* feedback.c — `rlhf feedback import|export|stats`: thin wrappers over
 * src/data/feedback.h. Counts go to stdout, warnings and errors to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/data/feedback.h"

static void print_counts(const char *title, const int64_t added[FB_NKINDS]) {
    int64_t total = 0;
    printf("%s\n", title);
    for (int k = 0; k < FB_NKINDS; k++) {
        printf("  %-10s %lld\n", fb_kind_name((fb_kind)k), (long long)added[k]);
        total += added[k];
    }
    printf("  %-10s %lld\n", "total", (long long)total);
}

/* Imports one file, printing its counts and notes; 0 ok, 1 failure. */
static int import_one(fb_set *set, const char *path, fb_format fmt, int skip_bad, int64_t total[FB_NKINDS], int64_t *bad) {
    fb_import_opts o = {skip_bad};
    fb_import_stats st;
    rl_status rc = fb_import_file(set, path, fmt, &o, &st);
    if (rc != RL_OK) {
        fprintf(stderr, "rlhf feedback: %s\n", rl_error());
        if (rc == RL_EFORMAT && !skip_bad) fprintf(stderr, "  (use --skip-bad to load the other lines and count the bad ones)\n");
        return 1;
    }
    char title[512];
    snprintf(title, sizeof title, "%s: %lld lines", path, (long long)st.lines);
    print_counts(title, st.added);
    if (st.oasst_messages) {
        printf("  oasst: %lld messages; dropped %lld synthetic, %lld deleted, %lld failed review; "
               "%lld ranked sibling groups; %lld assistant messages with votes (%lld tied: no thumbs record)\n",
               (long long)st.oasst_messages, (long long)st.oasst_dropped_synthetic, (long long)st.oasst_dropped_deleted,
               (long long)st.oasst_dropped_review, (long long)st.oasst_rank_groups, (long long)st.oasst_thumbs_messages,
               (long long)st.oasst_thumbs_tied);
    }
    if (st.hh_multi_turn_responses)
        printf("  hh: %lld responses run on past the final Assistant turn (kept verbatim)\n", (long long)st.hh_multi_turn_responses);
    for (int i = 0; i < st.n_notes; i++) rl_info("note: %s", st.notes[i]);
    if (st.bad) {
        rl_warn("%s: skipped %lld malformed line(s); the first: %s", path, (long long)st.bad, st.first_error);
        *bad += st.bad;
    }
    for (int k = 0; k < FB_NKINDS; k++) total[k] += st.added[k];
    return 0;
}

static int print_pairs_line(const fb_set *set) {
    fb_pair *pairs;
    int64_t np;
    if (fb_to_pairs(set, &pairs, &np) != RL_OK) { fprintf(stderr, "rlhf feedback: %s\n", rl_error()); return 1; }
    int64_t ties = 0;
    for (int64_t i = 0; i < np; i++) ties += pairs[i].tie;
    free(pairs);
    printf("  pairs      %lld (from pair and ranking records; %lld ties)\n", (long long)np, (long long)ties);
    return 0;
}

int cmd_feedback_import(int argc, char **argv) {
    static const char *format, *out;
    static rl_strlist input;
    static int skip_bad;
    rl_flag flags[] = {
        {"format", RL_FLAG_ENUM, &format, "auto", 0, 0, "auto|jsonl|hh|oasst", "input format (auto: each line by its shape)"},
        {"input", RL_FLAG_STRINGS, &input, NULL, 0, 0, NULL, "input file(s): JSONL, or gzip'd JSONL (.gz read directly)"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "canonical JSONL records to write (atomically; '-' = stdout)"},
        {"skip-bad", RL_FLAG_BOOL, &skip_bad, "0", 0, 0, NULL, "skip malformed lines (counted and reported) instead of failing"},
    };
    int rc = rl_flags_parse("feedback import", "Import human feedback (generic JSONL, HH-RLHF, OpenAssistant trees) into canonical JSONL records.",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    fb_format fmt;
    fb_format_parse(format, &fmt);
    fb_set set;
    fb_set_init(&set);
    int64_t total[FB_NKINDS] = {0}, bad = 0;
    int fail = 0;
    /* With --out -, counts go to stderr so stdout holds only records. */
    FILE *saved = NULL;
    if (!strcmp(out, "-")) { fflush(stdout); saved = stdout; stdout = stderr; }
    for (int i = 0; i < input.n && !fail; i++) fail = import_one(&set, input.v[i], fmt, skip_bad, total, &bad);
    if (!fail && input.n > 1) print_counts("all inputs", total);
    if (!fail) fail = print_pairs_line(&set);
    if (saved) stdout = saved;
    if (!fail) {
        if (fb_export_jsonl(&set, out) != RL_OK) {
            fprintf(stderr, "rlhf feedback import: %s\n", rl_error());
            fail = 1;
        } else if (strcmp(out, "-")) {
            printf("wrote %lld records to %s%s\n", (long long)set.n, out, bad ? " (malformed lines skipped)" : "");
        }
    } else {
        fprintf(stderr, "rlhf feedback import: nothing written\n");
    }
    fb_set_free(&set);
    return fail;
}

int cmd_feedback_export(int argc, char **argv) {
    static const char *format, *input, *out;
    static int skip_bad;
    rl_flag flags[] = {
        {"input", RL_FLAG_STRING, &input, NULL, 0, 0, NULL, "records to read (canonical JSONL, or any format import reads)"},
        {"format", RL_FLAG_ENUM, &format, "jsonl", 0, 0, "jsonl|hh", "jsonl: canonical records; hh: HH-RLHF {chosen, rejected} lines from strict pairs"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "file to write (atomically; '-' = stdout)"},
        {"skip-bad", RL_FLAG_BOOL, &skip_bad, "0", 0, 0, NULL, "skip malformed input lines instead of failing"},
    };
    int rc = rl_flags_parse("feedback export", "Export feedback records as canonical JSONL or HH-RLHF JSONL.", flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    fb_set set;
    fb_set_init(&set);
    fb_import_opts o = {skip_bad};
    fb_import_stats st;
    FILE *info = strcmp(out, "-") ? stdout : stderr;
    if (fb_import_file(&set, input, FB_FMT_AUTO, &o, &st) != RL_OK) {
        fprintf(stderr, "rlhf feedback export: %s\n", rl_error());
        fb_set_free(&set);
        return 1;
    }
    if (st.bad) rl_warn("%s: skipped %lld malformed line(s); the first: %s", input, (long long)st.bad, st.first_error);
    int fail = 0;
    if (!strcmp(format, "hh")) {
        int64_t written, skipped;
        if (fb_export_hh(&set, out, &written, &skipped) != RL_OK) {
            fprintf(stderr, "rlhf feedback export: %s\n", rl_error());
            fail = 1;
        } else {
            fprintf(info, "wrote %lld HH pairs to %s", (long long)written, out);
            if (skipped) fprintf(info, "; skipped %lld pairs with no HH form (ties, both bad, system turns, or text with HH turn markers)", (long long)skipped);
            fprintf(info, "\n");
            if (set.n) fprintf(info, "note: HH has no fields for annotators, groups, weights or times; they are not in %s\n", out);
        }
    } else {
        if (fb_export_jsonl(&set, out) != RL_OK) {
            fprintf(stderr, "rlhf feedback export: %s\n", rl_error());
            fail = 1;
        } else {
            fprintf(info, "wrote %lld records to %s\n", (long long)set.n, out);
        }
    }
    fb_set_free(&set);
    return fail;
}

static int print_tally(const fb_set *set, fb_tally_by by, const char *title, int top) {
    fb_tally_row *rows;
    int64_t n;
    if (fb_tally(set, by, &rows, &n) != RL_OK) { fprintf(stderr, "rlhf feedback stats: %s\n", rl_error()); return 1; }
    printf("%s (%lld distinct)\n", title, (long long)n);
    printf("  %-40s %10s %10s %12s\n", "", "records", "annotators", "weight");
    for (int64_t i = 0; i < n && (top <= 0 || i < top); i++)
        printf("  %-40s %10lld %10lld %12.6g\n", rows[i].key, (long long)rows[i].records, (long long)rows[i].annotators, rows[i].weight);
    if (top > 0 && n > top) printf("  ... %lld more (--top 0 lists all)\n", (long long)(n - top));
    free(rows);
    return 0;
}

int cmd_feedback_stats(int argc, char **argv) {
    static rl_strlist input;
    static int top, skip_bad;
    rl_flag flags[] = {
        {"input", RL_FLAG_STRINGS, &input, NULL, 0, 0, NULL, "record file(s) (canonical JSONL, or any format import reads)"},
        {"top", RL_FLAG_INT, &top, "20", 0, 1e9, NULL, "rows to list per table (0 = all)"},
        {"skip-bad", RL_FLAG_BOOL, &skip_bad, "0", 0, 0, NULL, "skip malformed input lines instead of failing"},
    };
    int rc = rl_flags_parse("feedback stats", "Count feedback records by kind, source, annotator and group.", flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    fb_set set;
    fb_set_init(&set);
    fb_import_opts o = {skip_bad};
    for (int i = 0; i < input.n; i++) {
        fb_import_stats st;
        if (fb_import_file(&set, input.v[i], FB_FMT_AUTO, &o, &st) != RL_OK) {
            fprintf(stderr, "rlhf feedback stats: %s\n", rl_error());
            fb_set_free(&set);
            return 1;
        }
        if (st.bad) rl_warn("%s: skipped %lld malformed line(s); the first: %s", input.v[i], (long long)st.bad, st.first_error);
    }
    int32_t *ids = malloc((size_t)(set.n ? set.n : 1) * sizeof *ids);
    int32_t np = 0;
    int fail = !ids || fb_set_prompt_ids(&set, ids, &np) != RL_OK;
    free(ids);
    if (!fail) {
        printf("records %lld, distinct prompts %d\n", (long long)set.n, np);
        fail = print_tally(&set, FB_TALLY_KIND, "by kind", 0) || print_pairs_line(&set) ||
               print_tally(&set, FB_TALLY_SOURCE, "by source", top) ||
               print_tally(&set, FB_TALLY_ANNOTATOR, "by annotator", top) ||
               print_tally(&set, FB_TALLY_GROUP, "by annotator group", top);
    }
    fb_set_free(&set);
    return fail;
}

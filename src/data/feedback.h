/* feedback.h — human feedback as data: one in-memory form for every
 * judgement a person gives, importers, exporters, and the expansions that
 * trainers consume (pairs, thumbs, demonstrations).
 *
 * Record model (docs/feedback.md has examples, docs/formats-feedback.md the
 * canonical JSONL schema):
 *
 *   kind       FB_DEMO     a person wrote (or accepted) one response       responses[1]
 *              FB_THUMBS   thumbs up/down on one response (+ comment)      responses[1], thumb
 *              FB_PAIR     A vs B: A better, B better, tie, both bad       responses[2] = A, B; choice
 *              FB_RANKING  K >= 2 responses ordered                        responses[K], ranks[K]
 *              FB_RATING   a number on a scale [lo, hi]                    responses[1], rating, scale
 *   prompt     the conversation before the response(s): chat_turn list, last turn a user turn
 *   annotator  who judged: mandatory, never empty. Importers whose source
 *              has no person ids invent a stable one ("hh:unknown",
 *              "oasst:crowd", "jsonl:unknown") and say so in fb_import_stats.
 *   groups     the annotator's group(s) when known: key=value pairs, unique keys
 *              (e.g. group=red-team, age=25-34, region=EU)
 *   time_ms    when (ms since the Unix epoch, UTC), FB_TIME_UNKNOWN if the source has none
 *   source     where it came from ("hh", "oasst", "jsonl", "app", ...)
 *   weight     per-record weight, default 1 (annotator reweighting writes it), finite, >= 0
 *   id, comment, meta   optional: the source's id, a free-text comment, other key=value facts
 *
 * Rankings: ranks[i] is the rank of responses[i], 0 = best, lower is better.
 * Ties ARE allowed (equal ranks); gaps are allowed (only the order matters).
 *
 * Ownership: an fb_set owns every string and array its records point to, in
 * a private pool (a list of large blocks that never move), so pointers stay
 * valid until fb_set_free. fb_set_add deep-copies the record it is given.
 * Expansions (fb_to_pairs/thumbs/demos) return one malloc'd array that the
 * caller free()s; its pointers point into the set.
 *
 * Errors: every function returns rl_status and sets rl_error() (check.h);
 * nothing here exits. Importers report "file:line: what was expected".
 */
#ifndef RL_FEEDBACK_H
#define RL_FEEDBACK_H
#include <stdint.h>
#include <stddef.h>
#include "../base/check.h"
#include "chat.h"

typedef enum { FB_DEMO = 0, FB_THUMBS = 1, FB_PAIR = 2, FB_RANKING = 3, FB_RATING = 4 } fb_kind;
#define FB_NKINDS 5

/* Pairwise choice. For FB_PAIR, responses[0] is A and responses[1] is B. */
typedef enum { FB_CHOICE_A = 0, FB_CHOICE_B = 1, FB_CHOICE_TIE = 2, FB_CHOICE_BOTH_BAD = 3 } fb_choice;

#define FB_TIME_UNKNOWN INT64_MIN

typedef struct {
    const char *key;    /* non-empty */
    const char *value;  /* may be "" */
} fb_kv;

typedef struct {
    fb_kind kind;
    const char *id;          /* source's id or NULL */
    const char *source;      /* non-empty */
    const char *annotator;   /* non-empty, always */
    const fb_kv *groups;     /* [n_groups], unique keys */
    int32_t n_groups;
    int64_t time_ms;         /* or FB_TIME_UNKNOWN */
    double weight;           /* >= 0, finite; 1 by default */
    const chat_turn *prompt; /* [n_prompt] >= 1 turns, the last one a user turn */
    int32_t n_prompt;
    const char *const *responses; /* [n_responses]: 1 (demo/thumbs/rating), 2 (pair), K >= 2 (ranking) */
    int32_t n_responses;
    /* kind-specific */
    int thumb;               /* FB_THUMBS: +1 up, -1 down; 0 otherwise */
    fb_choice choice;        /* FB_PAIR; FB_CHOICE_A otherwise */
    const int32_t *ranks;    /* FB_RANKING: [n_responses], >= 0, 0 = best; NULL otherwise */
    double rating;           /* FB_RATING: in [scale_lo, scale_hi]; 0 otherwise */
    double scale_lo, scale_hi; /* FB_RATING: scale_lo < scale_hi; 0 otherwise */
    const char *comment;     /* NULL or free text (any kind) */
    const fb_kv *meta;       /* [n_meta], unique keys: source facts (message ids, vote counts...) */
    int32_t n_meta;
} fb_record;

/* A record with defaults (weight 1, time unknown, everything else 0/NULL). */
fb_record fb_record_init(fb_kind kind);

const char *fb_kind_name(fb_kind k);      /* "demo" "thumbs" "pair" "ranking" "rating" */
int fb_kind_parse(const char *s, fb_kind *k);      /* 0 ok, -1 unknown */
const char *fb_choice_name(fb_choice c);  /* "a" "b" "tie" "both_bad" */
int fb_choice_parse(const char *s, fb_choice *c);  /* 0 ok, -1 unknown */

/* Checks every invariant listed above. RL_EINVAL with a message naming the
 * offending field. */
rl_status fb_record_validate(const fb_record *r);

/* Field-by-field equality (strings by content, doubles exactly, kv lists in
 * order). Returns 1 if equal; otherwise 0 and, if why != NULL, the name of
 * the first differing field in why (size n). */
int fb_record_equal(const fb_record *a, const fb_record *b, char *why, size_t n);

/* ---- record sets ---------------------------------------------------------- */

typedef struct fb_pool fb_pool;

typedef struct {
    fb_record *records;  /* [n] (read them freely; change them only through the API) */
    int64_t n;
    int64_t cap;
    fb_pool *pool;       /* owned strings/arrays */
} fb_set;

void fb_set_init(fb_set *s);
void fb_set_free(fb_set *s);
/* Validates r and appends a deep copy. RL_EINVAL (nothing added) if invalid. */
rl_status fb_set_add(fb_set *s, const fb_record *r);
/* Drops records [n, s->n) (pool memory is kept until fb_set_free). Importers
 * use it to undo a partly imported line. */
void fb_set_truncate(fb_set *s, int64_t n);
/* Copies a string into the set's pool (for building records that outlive
 * their source buffers). NULL on out of memory. */
const char *fb_set_strdup(fb_set *s, const char *str);
/* Sets the weight of record i (reweighting): RL_EINVAL if not finite or < 0. */
rl_status fb_set_weight(fb_set *s, int64_t i, double w);

/* Prompt ids: records whose prompt conversations are identical (roles and
 * texts) share an id; ids are 0..*n_prompts-1 in order of first appearance.
 * ids: [s->n] filled by the call. */
rl_status fb_set_prompt_ids(const fb_set *s, int32_t *ids, int32_t *n_prompts);

/* 64-bit FNV-1a hash of a conversation (roles and texts); stable across runs
 * and machines, so it can split train/held-out by prompt deterministically. */
uint64_t fb_prompt_hash(const chat_turn *turns, int32_t n);

/* Deterministic held-out split by prompt: 1 if the record's prompt falls in
 * the held-out fraction `frac` (0..1) for this seed. All records (hence all
 * pairs) of one prompt land on the same side. */
int fb_is_heldout(const fb_record *r, double frac, uint64_t seed);

/* ---- expansion into training examples ------------------------------------- */

/* One comparison. All pointers point into the set. */
typedef struct {
    int64_t record;          /* index of the source record */
    int32_t prompt;          /* prompt id (fb_set_prompt_ids): keep one prompt's pairs in one batch */
    const chat_turn *turns;  /* the prompt conversation [n_turns] */
    int32_t n_turns;
    const char *chosen;      /* the better response (or, for ties, the first of the two) */
    const char *rejected;
    int tie;                 /* 1: judged equally good; chosen/rejected order carries no preference */
    int both_bad;            /* 1: FB_PAIR judged "both bad" (also tie = 1: no preference between them) */
    double weight;           /* the record's weight */
    const char *annotator;
} fb_pair;

/* Pairs from FB_PAIR records (one each) and FB_RANKING records (all C(K,2)
 * pairs; equal ranks give tie pairs), in record order; within a ranking,
 * pairs (i, j) for i < j in response order. Other kinds give none.
 * *out is malloc'd (free() it; NULL when *n = 0). */
rl_status fb_to_pairs(const fb_set *s, fb_pair **out, int64_t *n);

/* One binary label on one response. */
typedef struct {
    int64_t record;
    int32_t prompt;
    const chat_turn *turns;
    int32_t n_turns;
    const char *response;
    int label;               /* 1 desirable (thumbs up), 0 undesirable */
    double weight;
    const char *annotator;
} fb_thumb;

enum {
    /* Also derive thumbs from strict pairs (chosen → 1, rejected → 0, as TRL
     * does to run KTO on preference data) and from "both bad" (two 0s). */
    FB_THUMBS_FROM_PAIRS = 1u << 0,
    /* Also derive thumbs from ratings: above the scale's midpoint → 1,
     * below → 0, exactly at it → nothing. */
    FB_THUMBS_FROM_RATINGS = 1u << 1
};
/* Thumbs from FB_THUMBS records, plus what `flags` adds. */
rl_status fb_to_thumbs(const fb_set *s, unsigned flags, fb_thumb **out, int64_t *n);

/* One prompt → response demonstration for SFT. */
typedef struct {
    int64_t record;
    int32_t prompt;
    const chat_turn *turns;
    int32_t n_turns;
    const char *response;
    double weight;
    const char *annotator;
} fb_demo;

enum {
    /* Also use judged winners as demonstrations: the chosen response of
     * strict pairs (A or B), the rank-0 responses of rankings (all of them
     * if rank 0 is shared), and thumbs-up responses. */
    FB_DEMOS_FROM_WINNERS = 1u << 0
};
rl_status fb_to_demos(const fb_set *s, unsigned flags, fb_demo **out, int64_t *n);

/* ---- counts ----------------------------------------------------------------- */

typedef enum {
    FB_TALLY_KIND = 0,   /* key: "pair", ... */
    FB_TALLY_SOURCE,     /* key: the source tag */
    FB_TALLY_ANNOTATOR,  /* key: the annotator id */
    FB_TALLY_GROUP       /* key: "key=value" of each group the record's annotator is in */
} fb_tally_by;

typedef struct {
    const char *key;
    int64_t records;     /* records with this key */
    int64_t annotators;  /* distinct annotators among them */
    double weight;       /* sum of their weights */
} fb_tally_row;

/* Counts records by kind, source, annotator or group; rows sorted by
 * records (descending), then key. *rows is one malloc'd block (rows and
 * their key strings): free(*rows). */
rl_status fb_tally(const fb_set *s, fb_tally_by by, fb_tally_row **rows, int64_t *n);

/* ---- import / export ------------------------------------------------------ */

typedef enum {
    FB_FMT_AUTO = 0,  /* each line by its shape: canonical, generic, HH or OASST */
    FB_FMT_JSONL,     /* canonical or generic JSONL lines */
    FB_FMT_HH,        /* Anthropic HH-RLHF {chosen, rejected} dialogues */
    FB_FMT_OASST      /* OpenAssistant message trees, one tree per line */
} fb_format;

/* "auto" "jsonl" "hh" "oasst"; parse returns 0 or -1. */
const char *fb_format_name(fb_format f);
int fb_format_parse(const char *s, fb_format *f);

typedef struct {
    int skip_bad;        /* 1: a malformed line is counted and skipped; 0: it stops the import */
} fb_import_opts;

#define FB_MAX_NOTES 8
typedef struct {
    int64_t lines;             /* non-blank lines read */
    int64_t bad;               /* lines skipped as malformed (skip_bad) */
    int64_t added[FB_NKINDS];  /* records added, by kind */
    char first_error[512];     /* the first malformed line's message ("" if none) */
    /* Source-specific counts (0 when they do not apply). */
    int64_t hh_multi_turn_responses;  /* HH: responses spanning more than the final Assistant turn */
    int64_t oasst_messages;           /* OASST: messages seen */
    int64_t oasst_dropped_synthetic;  /* messages dropped (with their subtrees) as synthetic */
    int64_t oasst_dropped_deleted;    /* ... as deleted */
    int64_t oasst_dropped_review;     /* ... as failing review (review_result false) */
    int64_t oasst_thumbs_messages;    /* kept assistant messages with any +1/-1 votes */
    int64_t oasst_thumbs_tied;        /* ... whose +1 and -1 counts are equal: no thumbs record */
    int64_t oasst_rank_groups;        /* kept sibling groups with >= 2 ranked assistant replies */
    /* Notes to show the user (e.g. which invented annotator id was used);
     * each note appears once. */
    char notes[FB_MAX_NOTES][160];
    int n_notes;
} fb_import_stats;

/* Imports every line of `path` (plain or gzip, detected by content) into s.
 * On a malformed line: with skip_bad, counts it, keeps the first message and
 * goes on; without, returns RL_EFORMAT "path:line: <what was expected>" and
 * leaves s with the records of the lines before it (never half a line).
 * st (may be NULL) is zeroed by the call. opts NULL = defaults (skip_bad 0).
 * A file may mix line shapes under FB_FMT_AUTO; an explicit format rejects
 * lines of another shape with a message naming the shape it expected. */
rl_status fb_import_file(fb_set *s, const char *path, fb_format fmt, const fb_import_opts *opts, fb_import_stats *st);

/* Same for an in-memory buffer (lines separated by '\n'; need not be
 * NUL-terminated). `name` is used in messages in place of a path. */
rl_status fb_import_mem(fb_set *s, const char *name, const char *data, size_t n, fb_format fmt,
                        const fb_import_opts *opts, fb_import_stats *st);

/* Canonical JSONL: one record per line, every field (docs/formats-feedback.md).
 * Written atomically ("-" = stdout). Reading it back gives equal records. */
rl_status fb_export_jsonl(const fb_set *s, const char *path);

/* One canonical line (malloc'd, no newline; free() it). NULL on error. */
char *fb_record_to_json(const fb_record *r);

/* HH-RLHF JSONL {"chosen": ..., "rejected": ...}, from every strict pair
 * fb_to_pairs gives (ties and "both bad" have no HH form). A record whose
 * conversation cannot be written as HH text (a system turn, or a text that
 * contains "\n\nHuman:" / "\n\nAssistant:") is skipped. Annotators, groups,
 * weights and times are lost: HH has no fields for them. *written and
 * *skipped (either may be NULL) count pairs. Atomic; "-" = stdout. */
rl_status fb_export_hh(const fb_set *s, const char *path, int64_t *written, int64_t *skipped);

#endif

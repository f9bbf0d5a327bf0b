/* store.h — the feedback database (SQLite): annotators, models, generations
 * and the judgements people give on them. The training commands read the same
 * file (`--db feedback.db`); docs/formats-serve.md documents every table.
 *
 * Guarantees
 *  - Versioned schema: a `schema_version` table holds one row. store_open
 *    migrates an older database forward one step at a time (migration N→N+1,
 *    each in its own transaction) and refuses a database written by a newer
 *    rlhf with RL_EFORMAT and a message saying to upgrade rlhf.
 *  - WAL journal, foreign keys on, synchronous=FULL by default: a write is
 *    acknowledged (the function returns RL_OK) only after COMMIT, and a
 *    committed row survives kill -9 and power loss.
 *  - Every statement is prepared with bound parameters; no SQL text is ever
 *    built from user data.
 *  - Multi-row writes (a judgement and its generation links, an annotator and
 *    its groups) are one transaction: all or nothing.
 *  - Thread safety: one store may be shared by threads; each call takes the
 *    store's mutex (SQLite serialises writers anyway).
 *  - Every function returns rl_status and sets rl_error(); nothing exits.
 */
#ifndef RL_STORE_H
#define RL_STORE_H
#include <stdint.h>
#include <stdio.h>
#include "../base/check.h"

/* The schema this build writes. Version history (docs/formats-serve.md):
 *   1  annotators, annotator_groups, models, generations, judgements, judgement_items
 *   2  profile_questions, profile_answers (consent-based profile), judgements.client_key
 *      (idempotent retries), indexes for the operator view */
#define STORE_SCHEMA_VERSION 2

/* Tokens are "rlhf1.<annotator id>.<43 chars of base64url secret>". */
#define STORE_TOKEN_MAX 96
/* Names, groups, profile keys: 1..64 bytes of [A-Za-z0-9_.@-] (groups and
 * keys) or any printable UTF-8 without control characters (names). */
#define STORE_NAME_MAX 64

typedef struct store store;

typedef enum { STORE_SYNC_FULL = 0, STORE_SYNC_NORMAL = 1 } store_sync;

typedef struct {
    int max_version;   /* 0 = STORE_SCHEMA_VERSION; tests use 1 to build an old database */
    int readonly;      /* open without creating or migrating */
    store_sync sync;   /* FULL (default): fsync on every commit */
} store_opts;

/* Opens (creating if needed) and migrates the database at `path`.
 * opts NULL = defaults. RL_EFORMAT if the file is not SQLite, fails
 * integrity-relevant setup, or has a newer schema than this build knows. */
rl_status store_open(store **out, const char *path, const store_opts *opts);
void store_close(store *s);
/* Schema version of the open database. */
int store_version(store *s);
/* Runs PRAGMA integrity_check; RL_EFORMAT with SQLite's first message if not "ok". */
rl_status store_integrity_check(store *s);

/* ---- annotators --------------------------------------------------------- */

typedef enum { STORE_ROLE_ANNOTATOR = 0, STORE_ROLE_OPERATOR = 1 } store_role;

typedef struct {
    int64_t id;
    char name[STORE_NAME_MAX + 1];
    store_role role;
    double created;      /* unix seconds */
} store_annotator;

/* Creates an annotator with its groups (one transaction) and writes a fresh
 * one-time token to token_out (NUL-terminated). Only a BLAKE2b hash of the
 * token's secret is stored; the token cannot be recovered later.
 * RL_EINVAL for a bad name/group or a name already taken. */
rl_status store_annotator_add(store *s, const char *name, store_role role, const char *const *groups, int ngroups,
                              char token_out[STORE_TOKEN_MAX], int64_t *id_out);
/* Checks a token: RL_OK and *out filled if it is valid, RL_EAUTH otherwise
 * (malformed, unknown id, wrong secret — one message for all, compared in
 * constant time). */
rl_status store_annotator_auth(store *s, const char *token, store_annotator *out);
/* Finds or creates the single local user of open mode (an operator named
 * "local" with an unusable token). */
rl_status store_annotator_local(store *s, store_annotator *out);
/* Calls fn for every annotator in id order with its groups joined by ','. */
typedef void (*store_annotator_fn)(void *user, const store_annotator *a, const char *groups);
rl_status store_annotator_each(store *s, store_annotator_fn fn, void *user);

/* ---- consent-based profile ---------------------------------------------- */

/* Adds or replaces an operator-configured question. `choices` is NULL (free
 * text, up to 200 bytes) or "a|b|c". */
rl_status store_question_set(store *s, const char *key, const char *text, const char *choices);
/* {"questions":[{"key","text","choices":[..]|null}], "answers":{key:value}, "consent":bool}
 * for one annotator. Caller frees with free(). */
rl_status store_profile_json(store *s, int64_t annotator_id, char **json_out);
/* Replaces the annotator's answers. consent = 0 deletes every answer (and
 * stores none); consent = 1 stores the given ones (keys must be configured
 * questions, values must be one of the choices). keys/values: n each. */
rl_status store_profile_set(store *s, int64_t annotator_id, int consent, const char *const *keys,
                            const char *const *values, int n);

/* ---- models and generations --------------------------------------------- */

/* Finds or registers a model by identity (e.g. "dummy:echo" or the
 * checkpoint's path + checksum). */
rl_status store_model_ensure(store *s, const char *path, const char *identity, int64_t *id_out);

typedef struct {
    int64_t model_id;
    int64_t annotator_id;     /* who asked (0 = nobody: stored as NULL) */
    const char *conversation; /* JSON array of {"role","content"}: the context the answer continues */
    const char *response;     /* the generated text (UTF-8) */
    const char *params;       /* JSON object of sampling parameters */
    uint64_t seed;
    int stopped;              /* 1: stopped early by the user or a disconnect */
} store_generation;

rl_status store_generation_add(store *s, const store_generation *g, int64_t *id_out);
/* Response text of a generation (malloc'd) and, if asked, its model identity
 * (malloc'd). RL_ENOTFOUND if there is none. */
rl_status store_generation_get(store *s, int64_t id, char **response, char **model_identity);

/* ---- judgements ----------------------------------------------------------- */

typedef enum { STORE_THUMBS = 0, STORE_PAIR = 1, STORE_RANKING = 2, STORE_RATING = 3 } store_kind;
typedef enum { STORE_CHOICE_A = 0, STORE_CHOICE_B = 1, STORE_CHOICE_TIE = 2, STORE_CHOICE_BOTH_BAD = 3 } store_choice;
#define STORE_MAX_ITEMS 16

typedef struct {
    store_kind kind;
    int64_t annotator_id;
    /* generations judged, in the order shown: thumbs/rating 1, pair 2 (A, B), ranking K in [2, 16] */
    const int64_t *items;
    int nitems;
    int thumb;                /* STORE_THUMBS: +1 or -1 */
    store_choice choice;      /* STORE_PAIR */
    const int *order;         /* STORE_RANKING: [nitems] positions (into items), best first, a permutation */
    double rating;            /* STORE_RATING: in [rating_lo, rating_hi] */
    double rating_lo, rating_hi;
    const char *comment;      /* NULL or up to 4000 bytes of UTF-8 */
    const char *client_key;   /* NULL or up to 64 bytes: a retry with the same key returns the first id */
} store_judgement;

const char *store_kind_name(store_kind k);          /* "thumbs" "pair" "ranking" "rating" */
const char *store_choice_name(store_choice c);      /* "A" "B" "tie" "both_bad" */
int store_choice_parse(const char *s, store_choice *c); /* 0 or -1 */

/* Validates and stores a judgement with its links in one transaction.
 * RL_EINVAL if a field is out of range or a generation does not exist;
 * RL_OK means committed. With a client_key already used by this annotator,
 * returns RL_OK and the earlier id (nothing new stored). */
rl_status store_judgement_add(store *s, const store_judgement *j, int64_t *id_out);
/* Number of judgements (all kinds). */
rl_status store_judgement_count(store *s, int64_t *n);

/* ---- operator view and export -------------------------------------------- */

/* Counts by kind, annotator, group and day, and agreement on items judged
 * by two or more annotators, as a JSON object (docs/serve.md). malloc'd. */
rl_status store_stats_json(store *s, char **json_out);

typedef enum { STORE_EXPORT_JSONL = 0, STORE_EXPORT_HH = 1 } store_export_format;
/* Writes every judgement to `out` in id order (docs/formats-serve.md).
 * *written counts lines; *skipped counts judgements the format cannot express
 * (HH has only strict pairs). Either may be NULL. */
rl_status store_export(store *s, store_export_format fmt, FILE *out, int64_t *written, int64_t *skipped);

#endif

/* store.c — the feedback database. See store.h for the guarantees. */
#include "store.h"
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../base/log.h"
#include "text.h"

/* 'RLHF' in PRAGMA application_id: tells our databases from other SQLite files. */
#define STORE_APP_ID 0x524C4846

struct store {
    sqlite3 *db;
    pthread_mutex_t mu;
    int version;
};

/* ---- small helpers ------------------------------------------------------- */

static rl_status db_fail(sqlite3 *db, const char *what) {
    return rl_fail(RL_EIO, "%s: %s", what, sqlite3_errmsg(db));
}

/* Runs constant SQL (schema, pragmas); never used with user data. */
static rl_status exec_const(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        rl_status s = rl_fail(RL_EIO, "database: %s", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return s;
    }
    return RL_OK;
}

static rl_status prep(sqlite3 *db, sqlite3_stmt **st, const char *sql) {
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) return db_fail(db, "prepare");
    return RL_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
    if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

/* A step that must finish a write (SQLITE_DONE). */
static rl_status step_done(sqlite3 *db, sqlite3_stmt *st, const char *what) {
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_CONSTRAINT) return rl_fail(RL_EINVAL, "%s: %s", what, sqlite3_errmsg(db));
        return db_fail(db, what);
    }
    return RL_OK;
}

static json_t *jstr(const char *s) {
    if (!s) return json_null();
    json_t *j = json_string(s);
    if (j) return j;
    char *clean = text_utf8_sanitize(s, strlen(s));
    j = json_string(clean ? clean : "");
    free(clean);
    return j;
}

/* Integral values as JSON integers (the canonical form writes 5, not 5.0). */
static json_t *jnum(double x) {
    if (x == floor(x) && fabs(x) < 9007199254740992.0) return json_integer((json_int_t)x);
    return json_real(x);
}

static const char *col_text(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* ---- migrations ------------------------------------------------------------
 * Each migrate_N takes a database at version N-1 to version N. They run in
 * their own transaction together with the version bump, so a crash mid-way
 * leaves the old version intact. Never edit a released migration: add one. */

static rl_status migrate_1(sqlite3 *db) {
    return exec_const(db,
        "CREATE TABLE annotators("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL UNIQUE,"
        "  token_hash BLOB NOT NULL,"
        "  role TEXT NOT NULL CHECK(role IN ('annotator','operator')),"
        "  created REAL NOT NULL);"
        "CREATE TABLE annotator_groups("
        "  annotator_id INTEGER NOT NULL REFERENCES annotators(id) ON DELETE CASCADE,"
        "  grp TEXT NOT NULL,"
        "  PRIMARY KEY(annotator_id, grp));"
        "CREATE TABLE models("
        "  id INTEGER PRIMARY KEY,"
        "  path TEXT NOT NULL,"
        "  identity TEXT NOT NULL UNIQUE,"
        "  created REAL NOT NULL);"
        "CREATE TABLE generations("
        "  id INTEGER PRIMARY KEY,"
        "  model_id INTEGER NOT NULL REFERENCES models(id),"
        "  annotator_id INTEGER REFERENCES annotators(id),"
        "  conversation TEXT NOT NULL,"
        "  response TEXT NOT NULL,"
        "  params TEXT NOT NULL,"
        "  seed INTEGER NOT NULL,"
        "  stopped INTEGER NOT NULL DEFAULT 0 CHECK(stopped IN (0,1)),"
        "  created REAL NOT NULL);"
        "CREATE TABLE judgements("
        "  id INTEGER PRIMARY KEY,"
        "  kind TEXT NOT NULL CHECK(kind IN ('thumbs','pair','ranking','rating')),"
        "  annotator_id INTEGER NOT NULL REFERENCES annotators(id),"
        "  thumb INTEGER CHECK(thumb IN (-1,1)),"
        "  choice TEXT CHECK(choice IN ('A','B','tie','both_bad')),"
        "  ranking TEXT,"
        "  rating REAL, rating_lo REAL, rating_hi REAL,"
        "  comment TEXT NOT NULL DEFAULT '',"
        "  created REAL NOT NULL,"
        "  CHECK((kind='thumbs' AND thumb IS NOT NULL) OR (kind='pair' AND choice IS NOT NULL)"
        "     OR (kind='ranking' AND ranking IS NOT NULL) OR (kind='rating' AND rating IS NOT NULL)));"
        "CREATE TABLE judgement_items("
        "  judgement_id INTEGER NOT NULL REFERENCES judgements(id) ON DELETE CASCADE,"
        "  position INTEGER NOT NULL,"
        "  generation_id INTEGER NOT NULL REFERENCES generations(id),"
        "  PRIMARY KEY(judgement_id, position));");
}

static rl_status migrate_2(sqlite3 *db) {
    return exec_const(db,
        "CREATE TABLE profile_questions("
        "  key TEXT PRIMARY KEY,"
        "  text TEXT NOT NULL,"
        "  choices TEXT);"
        "CREATE TABLE profile_answers("
        "  annotator_id INTEGER NOT NULL REFERENCES annotators(id) ON DELETE CASCADE,"
        "  key TEXT NOT NULL REFERENCES profile_questions(key) ON DELETE CASCADE,"
        "  value TEXT NOT NULL,"
        "  consent INTEGER NOT NULL CHECK(consent = 1),"
        "  updated REAL NOT NULL,"
        "  PRIMARY KEY(annotator_id, key));"
        "ALTER TABLE judgements ADD COLUMN client_key TEXT;"
        "CREATE UNIQUE INDEX judgements_client_key ON judgements(annotator_id, client_key) WHERE client_key IS NOT NULL;"
        "CREATE INDEX judgements_kind_created ON judgements(kind, created);"
        "CREATE INDEX judgement_items_generation ON judgement_items(generation_id);");
}

typedef rl_status (*migration_fn)(sqlite3 *);
static const migration_fn migrations[STORE_SCHEMA_VERSION + 1] = {NULL, migrate_1, migrate_2};

static rl_status read_version(sqlite3 *db, int *version) {
    sqlite3_stmt *st;
    /* Touching sqlite_master is the first real read: a non-SQLite file fails here. */
    int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_version'", -1, &st, NULL);
    if (rc != SQLITE_OK) return rl_fail(RL_EFORMAT, "not a SQLite database (%s)", sqlite3_errmsg(db));
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rl_status s = rl_fail(RL_EFORMAT, "not a SQLite database (%s)", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return s;
    }
    int has = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!has) {
        /* Empty database: version 0. Tables without our version table: someone else's file. */
        RL_TRY(prep(db, &st, "SELECT count(*) FROM sqlite_master"));
        int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        sqlite3_finalize(st);
        if (n != 0) return rl_fail(RL_EFORMAT, "this SQLite file has tables but no schema_version: it is not an rlhf feedback database");
        *version = 0;
        return RL_OK;
    }
    RL_TRY(prep(db, &st, "SELECT version FROM schema_version"));
    rc = sqlite3_step(st);
    *version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (*version < 0) return rl_fail(RL_EFORMAT, "schema_version table is empty: the database is damaged");
    return RL_OK;
}

static rl_status migrate(sqlite3 *db, int from, int to) {
    for (int v = from + 1; v <= to; v++) {
        RL_TRY(exec_const(db, "BEGIN IMMEDIATE"));
        /* Re-read inside the write lock: another process may have migrated meanwhile. */
        int now = 0;
        rl_status s = read_version(db, &now);
        if (s == RL_OK && now >= v) { exec_const(db, "COMMIT"); continue; }
        if (s == RL_OK) s = migrations[v](db);
        if (s == RL_OK && v == 1) s = exec_const(db, "CREATE TABLE schema_version(version INTEGER NOT NULL); INSERT INTO schema_version VALUES (0);");
        if (s == RL_OK) {
            sqlite3_stmt *st;
            s = prep(db, &st, "UPDATE schema_version SET version = ?");
            if (s == RL_OK) {
                sqlite3_bind_int(st, 1, v);
                s = step_done(db, st, "schema_version");
                sqlite3_finalize(st);
            }
        }
        if (s == RL_OK) s = exec_const(db, "COMMIT");
        if (s != RL_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", rl_error());
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rl_fail(s, "migration %d->%d failed: %s", v - 1, v, msg);
        }
    }
    return RL_OK;
}

rl_status store_open(store **out, const char *path, const store_opts *opts) {
    *out = NULL;
    store_opts o = {0};
    if (opts) o = *opts;
    if (o.max_version <= 0) o.max_version = STORE_SCHEMA_VERSION;
    if (o.max_version > STORE_SCHEMA_VERSION) return rl_fail(RL_EINVAL, "max_version %d > %d", o.max_version, STORE_SCHEMA_VERSION);
    if (sodium_init() < 0) return rl_fail(RL_EINTERNAL, "libsodium failed to initialise");
    sqlite3 *db = NULL;
    int oflags = o.readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &db, oflags | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        rl_status s = rl_fail(RL_EIO, "cannot open database %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return s;
    }
    sqlite3_busy_timeout(db, 10000);
    int version = 0;
    rl_status s = read_version(db, &version);
    if (s == RL_OK) {
        sqlite3_stmt *st;
        int app = 0;
        if (prep(db, &st, "PRAGMA application_id") == RL_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) app = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
        }
        if (app != 0 && app != STORE_APP_ID)
            s = rl_fail(RL_EFORMAT, "application_id 0x%08x: this SQLite file belongs to another program", (unsigned)app);
    }
    if (s == RL_OK && version > STORE_SCHEMA_VERSION)
        s = rl_fail(RL_EFORMAT, "schema version %d is newer than this rlhf understands (%d): upgrade rlhf to open it; the database was left untouched",
                    version, STORE_SCHEMA_VERSION);
    /* Read-only (the trainers' --db): nothing is created or migrated, so the
     * file must already be an rlhf database of this schema. */
    if (s == RL_OK && o.readonly && version == 0)
        s = rl_fail(RL_EFORMAT, "not an rlhf feedback database (no schema_version table): give a database made by 'rlhf serve' or 'rlhf annotators add'");
    if (s == RL_OK && o.readonly && version < STORE_SCHEMA_VERSION)
        s = rl_fail(RL_EFORMAT, "schema version %d is older than this rlhf's (%d): run 'rlhf annotators list --db' on it once to migrate it",
                    version, STORE_SCHEMA_VERSION);
    if (s == RL_OK && o.readonly) s = exec_const(db, "PRAGMA foreign_keys=ON;");
    if (s == RL_OK && !o.readonly) s = exec_const(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;");
    if (s == RL_OK && !o.readonly) s = exec_const(db, o.sync == STORE_SYNC_NORMAL ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
    if (s == RL_OK && version == 0 && !o.readonly) {
        char pragma[64]; /* a constant, not user data */
        snprintf(pragma, sizeof pragma, "PRAGMA application_id=%d", STORE_APP_ID);
        s = exec_const(db, pragma);
    }
    if (s == RL_OK && !o.readonly && version < o.max_version) s = migrate(db, version, o.max_version);
    if (s == RL_OK) s = read_version(db, &version);
    if (s != RL_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rl_error());
        sqlite3_close(db);
        return rl_fail(s, "%s: %s", path, msg);
    }
    store *st = calloc(1, sizeof *st);
    if (!st) { sqlite3_close(db); return rl_fail(RL_ENOMEM, "out of memory"); }
    st->db = db;
    st->version = version;
    pthread_mutex_init(&st->mu, NULL);
    *out = st;
    return RL_OK;
}

void store_close(store *s) {
    if (!s) return;
    /* A clean close checkpoints the WAL into the main file. */
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int store_version(store *s) { return s->version; }

rl_status store_integrity_check(store *s) {
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st, "PRAGMA integrity_check");
    if (r == RL_OK) {
        if (sqlite3_step(st) != SQLITE_ROW) r = db_fail(s->db, "integrity_check");
        else if (strcmp(col_text(st, 0), "ok")) r = rl_fail(RL_EFORMAT, "integrity_check: %s", col_text(st, 0));
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- transactions ---------------------------------------------------------- */

static rl_status tx_begin(store *s) { return exec_const(s->db, "BEGIN IMMEDIATE"); }
/* COMMIT, or ROLLBACK and keep the first error. */
static rl_status tx_end(store *s, rl_status r) {
    if (r == RL_OK) {
        r = exec_const(s->db, "COMMIT");
        if (r == RL_OK) return RL_OK;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rl_error());
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rl_fail(r, "%s", msg);
}

/* ---- annotators -------------------------------------------------------------- */

static int valid_key(const char *k) {
    size_t n = k ? strlen(k) : 0;
    if (n < 1 || n > STORE_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == '@'))
            return 0;
    }
    return 1;
}

static void hash_token(const char *token, unsigned char out[crypto_generichash_BYTES]) {
    /* The secret has 256 bits of entropy, so a fast hash is enough (no
     * password stretching needed): the hash only keeps a stolen database
     * from yielding working tokens. */
    crypto_generichash(out, crypto_generichash_BYTES, (const unsigned char *)token, strlen(token), NULL, 0);
}

static void make_token(int64_t id, char out[STORE_TOKEN_MAX]) {
    unsigned char secret[32];
    randombytes_buf(secret, sizeof secret);
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, secret, sizeof secret, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out, STORE_TOKEN_MAX, "rlhf1.%lld.%s", (long long)id, b64);
    sodium_memzero(secret, sizeof secret);
}

rl_status store_annotator_add(store *s, const char *name, store_role role, const char *const *groups, int ngroups,
                              char token_out[STORE_TOKEN_MAX], int64_t *id_out) {
    if (!name || !text_utf8_valid(name, strlen(name), 0) || strlen(name) < 1 || strlen(name) > STORE_NAME_MAX)
        return rl_fail(RL_EINVAL, "annotator name must be 1..%d bytes of UTF-8 without control characters", STORE_NAME_MAX);
    for (int i = 0; i < ngroups; i++)
        if (!valid_key(groups[i])) return rl_fail(RL_EINVAL, "group '%s': use 1..%d characters of A-Z a-z 0-9 _ - . @", groups[i], STORE_NAME_MAX);
    pthread_mutex_lock(&s->mu);
    rl_status r = tx_begin(s);
    int64_t id = 0;
    sqlite3_stmt *st = NULL;
    if (r == RL_OK) {
        r = prep(s->db, &st, "INSERT INTO annotators(name, token_hash, role, created) VALUES (?, zeroblob(32), ?, ?)");
        if (r == RL_OK) {
            bind_text(st, 1, name);
            bind_text(st, 2, role == STORE_ROLE_OPERATOR ? "operator" : "annotator");
            sqlite3_bind_double(st, 3, rl_wall_time());
            r = step_done(s->db, st, "add annotator");
            if (r == RL_EINVAL) r = rl_fail(RL_EINVAL, "an annotator named '%s' already exists", name);
            sqlite3_finalize(st);
            id = sqlite3_last_insert_rowid(s->db);
        }
        if (r == RL_OK) {
            /* The token embeds the row id, so the hash is set after the insert. */
            make_token(id, token_out);
            unsigned char h[crypto_generichash_BYTES];
            hash_token(token_out, h);
            r = prep(s->db, &st, "UPDATE annotators SET token_hash = ? WHERE id = ?");
            if (r == RL_OK) {
                sqlite3_bind_blob(st, 1, h, sizeof h, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 2, id);
                r = step_done(s->db, st, "set token");
                sqlite3_finalize(st);
            }
        }
        for (int i = 0; r == RL_OK && i < ngroups; i++) {
            r = prep(s->db, &st, "INSERT OR IGNORE INTO annotator_groups(annotator_id, grp) VALUES (?, ?)");
            if (r == RL_OK) {
                sqlite3_bind_int64(st, 1, id);
                bind_text(st, 2, groups[i]);
                r = step_done(s->db, st, "add group");
                sqlite3_finalize(st);
            }
        }
        r = tx_end(s, r);
    }
    pthread_mutex_unlock(&s->mu);
    if (r != RL_OK) { if (token_out) sodium_memzero(token_out, STORE_TOKEN_MAX); return r; }
    if (id_out) *id_out = id;
    return RL_OK;
}

static void fill_annotator(sqlite3_stmt *st, store_annotator *a) {
    memset(a, 0, sizeof *a);
    a->id = sqlite3_column_int64(st, 0);
    snprintf(a->name, sizeof a->name, "%s", col_text(st, 1));
    a->role = !strcmp(col_text(st, 2), "operator") ? STORE_ROLE_OPERATOR : STORE_ROLE_ANNOTATOR;
    a->created = sqlite3_column_double(st, 3);
}

rl_status store_annotator_auth(store *s, const char *token, store_annotator *out) {
    /* Parse "rlhf1.<id>.<secret>" without trusting its length. */
    if (!token || strncmp(token, "rlhf1.", 6) || strlen(token) >= STORE_TOKEN_MAX) return rl_fail(RL_EAUTH, "invalid token");
    const char *p = token + 6;
    long long id = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 18) { id = id * 10 + (*p - '0'); p++; digits++; }
    if (!digits || *p != '.') return rl_fail(RL_EAUTH, "invalid token");
    unsigned char h[crypto_generichash_BYTES];
    hash_token(token, h);
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st, "SELECT id, name, role, created, token_hash FROM annotators WHERE id = ?");
    if (r == RL_OK) {
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 4) == (int)sizeof h &&
            sodium_memcmp(sqlite3_column_blob(st, 4), h, sizeof h) == 0) {
            fill_annotator(st, out);
        } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
            r = rl_fail(RL_EAUTH, "invalid token");
        } else {
            r = db_fail(s->db, "auth");
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

rl_status store_annotator_local(store *s, store_annotator *out) {
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st, "SELECT id, name, role, created FROM annotators WHERE name = 'local'");
    int found = 0;
    if (r == RL_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) { fill_annotator(st, out); found = 1; }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    if (r != RL_OK || found) return r;
    char token[STORE_TOKEN_MAX];
    int64_t id;
    r = store_annotator_add(s, "local", STORE_ROLE_OPERATOR, NULL, 0, token, &id);
    sodium_memzero(token, sizeof token); /* open mode needs no token: forget it */
    if (r != RL_OK) return r;
    memset(out, 0, sizeof *out);
    out->id = id;
    snprintf(out->name, sizeof out->name, "local");
    out->role = STORE_ROLE_OPERATOR;
    out->created = rl_wall_time();
    return RL_OK;
}

rl_status store_annotator_each(store *s, store_annotator_fn fn, void *user) {
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st,
        "SELECT a.id, a.name, a.role, a.created, (SELECT group_concat(grp, ',') FROM "
        "(SELECT grp FROM annotator_groups g WHERE g.annotator_id = a.id ORDER BY grp)) FROM annotators a ORDER BY a.id");
    if (r == RL_OK) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            store_annotator a;
            fill_annotator(st, &a);
            fn(user, &a, col_text(st, 4));
        }
        if (rc != SQLITE_DONE) r = db_fail(s->db, "list annotators");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- profile ------------------------------------------------------------------- */

rl_status store_question_set(store *s, const char *key, const char *text, const char *choices) {
    if (!valid_key(key)) return rl_fail(RL_EINVAL, "question key '%s': use 1..%d characters of A-Z a-z 0-9 _ - . @", key ? key : "", STORE_NAME_MAX);
    if (!text || !*text || strlen(text) > 500 || !text_utf8_valid(text, strlen(text), 0))
        return rl_fail(RL_EINVAL, "question text must be 1..500 bytes of UTF-8");
    if (choices && (strlen(choices) > 2000 || !text_utf8_valid(choices, strlen(choices), 0)))
        return rl_fail(RL_EINVAL, "choices must be up to 2000 bytes of UTF-8, separated by '|'");
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st, "INSERT OR REPLACE INTO profile_questions(key, text, choices) VALUES (?, ?, ?)");
    if (r == RL_OK) {
        bind_text(st, 1, key);
        bind_text(st, 2, text);
        bind_text(st, 3, choices && *choices ? choices : NULL);
        r = step_done(s->db, st, "set question");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* Is v one of the '|'-separated choices? */
static int in_choices(const char *choices, const char *v) {
    size_t n = strlen(v);
    const char *p = choices;
    while (1) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !memcmp(p, v, n)) return 1;
        if (!bar) return 0;
        p = bar + 1;
    }
}

static json_t *split_choices(const char *choices) {
    json_t *a = json_array();
    const char *p = choices;
    while (1) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        json_t *v = json_stringn(p, len);
        if (v) json_array_append_new(a, v);
        if (!bar) break;
        p = bar + 1;
    }
    return a;
}

rl_status store_profile_json(store *s, int64_t annotator_id, char **json_out) {
    *json_out = NULL;
    json_t *root = json_object(), *qs = json_array(), *ans = json_object();
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st, "SELECT key, text, choices FROM profile_questions ORDER BY key");
    if (r == RL_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_t *q = json_object();
            json_object_set_new(q, "key", jstr(col_text(st, 0)));
            json_object_set_new(q, "text", jstr(col_text(st, 1)));
            json_object_set_new(q, "choices", sqlite3_column_type(st, 2) == SQLITE_NULL ? json_null() : split_choices(col_text(st, 2)));
            json_array_append_new(qs, q);
        }
        sqlite3_finalize(st);
        r = prep(s->db, &st, "SELECT key, value FROM profile_answers WHERE annotator_id = ? ORDER BY key");
    }
    if (r == RL_OK) {
        sqlite3_bind_int64(st, 1, annotator_id);
        while (sqlite3_step(st) == SQLITE_ROW) json_object_set_new(ans, col_text(st, 0), jstr(col_text(st, 1)));
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    json_object_set_new(root, "consent", json_boolean(json_object_size(ans) > 0));
    json_object_set_new(root, "questions", qs);
    json_object_set_new(root, "answers", ans);
    if (r == RL_OK) {
        *json_out = json_dumps(root, JSON_COMPACT);
        if (!*json_out) r = rl_fail(RL_ENOMEM, "out of memory");
    }
    json_decref(root);
    return r;
}

rl_status store_profile_set(store *s, int64_t annotator_id, int consent, const char *const *keys,
                            const char *const *values, int n) {
    if (!consent && n > 0) return rl_fail(RL_EINVAL, "answers are stored only with consent");
    for (int i = 0; i < n; i++)
        if (!valid_key(keys[i])) return rl_fail(RL_EINVAL, "unknown question '%s'", keys[i]);
    pthread_mutex_lock(&s->mu);
    rl_status r = tx_begin(s);
    if (r == RL_OK) {
        sqlite3_stmt *st;
        r = prep(s->db, &st, "DELETE FROM profile_answers WHERE annotator_id = ?");
        if (r == RL_OK) {
            sqlite3_bind_int64(st, 1, annotator_id);
            r = step_done(s->db, st, "clear profile");
            sqlite3_finalize(st);
        }
        for (int i = 0; r == RL_OK && i < n; i++) {
            const char *v = values[i];
            if (!v || !text_utf8_valid(v, strlen(v), 0) || strlen(v) > 200) { r = rl_fail(RL_EINVAL, "answer to '%s' must be up to 200 bytes of UTF-8", keys[i]); break; }
            if (!*v) continue; /* an empty answer = not answered */
            r = prep(s->db, &st, "SELECT choices FROM profile_questions WHERE key = ?");
            if (r != RL_OK) break;
            bind_text(st, 1, keys[i]);
            int rc = sqlite3_step(st);
            if (rc != SQLITE_ROW) r = rl_fail(RL_EINVAL, "unknown question '%s'", keys[i]);
            else if (sqlite3_column_type(st, 0) != SQLITE_NULL && !in_choices(col_text(st, 0), v))
                r = rl_fail(RL_EINVAL, "'%s' is not one of the choices of '%s'", v, keys[i]);
            sqlite3_finalize(st);
            if (r != RL_OK) break;
            r = prep(s->db, &st, "INSERT INTO profile_answers(annotator_id, key, value, consent, updated) VALUES (?, ?, ?, 1, ?)");
            if (r != RL_OK) break;
            sqlite3_bind_int64(st, 1, annotator_id);
            bind_text(st, 2, keys[i]);
            bind_text(st, 3, v);
            sqlite3_bind_double(st, 4, rl_wall_time());
            r = step_done(s->db, st, "store answer");
            sqlite3_finalize(st);
        }
        r = tx_end(s, r);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- models and generations -------------------------------------------------- */

rl_status store_model_ensure(store *s, const char *path, const char *identity, int64_t *id_out) {
    if (!identity || !*identity || !text_utf8_valid(identity, strlen(identity), 0) || !path || !text_utf8_valid(path, strlen(path), 0))
        return rl_fail(RL_EINVAL, "model path and identity must be non-empty UTF-8");
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st, "INSERT INTO models(path, identity, created) VALUES (?, ?, ?) ON CONFLICT(identity) DO NOTHING");
    if (r == RL_OK) {
        bind_text(st, 1, path);
        bind_text(st, 2, identity);
        sqlite3_bind_double(st, 3, rl_wall_time());
        r = step_done(s->db, st, "register model");
        sqlite3_finalize(st);
    }
    if (r == RL_OK) r = prep(s->db, &st, "SELECT id FROM models WHERE identity = ?");
    if (r == RL_OK) {
        bind_text(st, 1, identity);
        if (sqlite3_step(st) == SQLITE_ROW) *id_out = sqlite3_column_int64(st, 0);
        else r = db_fail(s->db, "find model");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

rl_status store_generation_add(store *s, const store_generation *g, int64_t *id_out) {
    if (!g->conversation || !g->response || !g->params) return rl_fail(RL_EINVAL, "generation needs conversation, response and params");
    if (!text_utf8_valid(g->response, strlen(g->response), 1) || !text_utf8_valid(g->conversation, strlen(g->conversation), 1))
        return rl_fail(RL_EINVAL, "generation text must be valid UTF-8");
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st,
        "INSERT INTO generations(model_id, annotator_id, conversation, response, params, seed, stopped, created) VALUES (?,?,?,?,?,?,?,?)");
    if (r == RL_OK) {
        sqlite3_bind_int64(st, 1, g->model_id);
        if (g->annotator_id > 0) sqlite3_bind_int64(st, 2, g->annotator_id);
        else sqlite3_bind_null(st, 2);
        bind_text(st, 3, g->conversation);
        bind_text(st, 4, g->response);
        bind_text(st, 5, g->params);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)g->seed); /* stored as the same 64 bits, read back with a cast */
        sqlite3_bind_int(st, 7, g->stopped ? 1 : 0);
        sqlite3_bind_double(st, 8, rl_wall_time());
        r = step_done(s->db, st, "store generation");
        if (r == RL_OK && id_out) *id_out = sqlite3_last_insert_rowid(s->db);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

rl_status store_generation_get(store *s, int64_t id, char **response, char **model_identity) {
    if (response) *response = NULL;
    if (model_identity) *model_identity = NULL;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st, "SELECT g.response, m.identity FROM generations g JOIN models m ON m.id = g.model_id WHERE g.id = ?");
    if (r == RL_OK) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            if (response) *response = strdup(col_text(st, 0));
            if (model_identity) *model_identity = strdup(col_text(st, 1));
        } else {
            r = rl_fail(RL_ENOTFOUND, "generation %lld does not exist", (long long)id);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- judgements ---------------------------------------------------------------- */

static const char *const kind_names[] = {"thumbs", "pair", "ranking", "rating"};
static const char *const choice_names[] = {"A", "B", "tie", "both_bad"};

const char *store_kind_name(store_kind k) { return (unsigned)k < 4 ? kind_names[k] : "?"; }
const char *store_choice_name(store_choice c) { return (unsigned)c < 4 ? choice_names[c] : "?"; }
int store_choice_parse(const char *str, store_choice *c) {
    for (int i = 0; i < 4; i++)
        if (str && !strcmp(str, choice_names[i])) { *c = (store_choice)i; return 0; }
    return -1;
}

static rl_status validate_judgement(const store_judgement *j, char *ranking_json, size_t cap) {
    if ((unsigned)j->kind > STORE_RATING) return rl_fail(RL_EINVAL, "unknown judgement kind");
    if (j->annotator_id <= 0) return rl_fail(RL_EINVAL, "judgement needs an annotator");
    int want_lo = 1, want_hi = 1;
    if (j->kind == STORE_PAIR) want_lo = want_hi = 2;
    if (j->kind == STORE_RANKING) { want_lo = 2; want_hi = STORE_MAX_ITEMS; }
    if (j->nitems < want_lo || j->nitems > want_hi || !j->items)
        return rl_fail(RL_EINVAL, "a %s judgement judges %d..%d generations, got %d", kind_names[j->kind], want_lo, want_hi, j->nitems);
    for (int i = 0; i < j->nitems; i++) {
        if (j->items[i] <= 0) return rl_fail(RL_EINVAL, "generation ids are positive");
        for (int k = 0; k < i; k++)
            if (j->items[k] == j->items[i]) return rl_fail(RL_EINVAL, "generation %lld appears twice", (long long)j->items[i]);
    }
    if (j->kind == STORE_THUMBS && j->thumb != 1 && j->thumb != -1) return rl_fail(RL_EINVAL, "thumb must be +1 or -1");
    if (j->kind == STORE_PAIR && (unsigned)j->choice > STORE_CHOICE_BOTH_BAD) return rl_fail(RL_EINVAL, "choice must be A, B, tie or both_bad");
    if (j->kind == STORE_RANKING) {
        if (!j->order) return rl_fail(RL_EINVAL, "ranking needs an order");
        int seen[STORE_MAX_ITEMS] = {0};
        size_t len = 0;
        len += (size_t)snprintf(ranking_json + len, cap - len, "[");
        for (int i = 0; i < j->nitems; i++) {
            int p = j->order[i];
            if (p < 0 || p >= j->nitems || seen[p]) return rl_fail(RL_EINVAL, "ranking order must be a permutation of 0..%d", j->nitems - 1);
            seen[p] = 1;
            len += (size_t)snprintf(ranking_json + len, cap - len, "%s%d", i ? "," : "", p);
        }
        snprintf(ranking_json + len, cap - len, "]");
    }
    if (j->kind == STORE_RATING) {
        if (!isfinite(j->rating_lo) || !isfinite(j->rating_hi) || !(j->rating_lo < j->rating_hi))
            return rl_fail(RL_EINVAL, "rating scale needs lo < hi");
        if (!isfinite(j->rating) || j->rating < j->rating_lo || j->rating > j->rating_hi)
            return rl_fail(RL_EINVAL, "rating %g is outside [%g, %g]", j->rating, j->rating_lo, j->rating_hi);
    }
    if (j->comment && (strlen(j->comment) > 4000 || !text_utf8_valid(j->comment, strlen(j->comment), 1)))
        return rl_fail(RL_EINVAL, "comment must be up to 4000 bytes of UTF-8");
    if (j->client_key && (strlen(j->client_key) > 64 || !*j->client_key || !text_utf8_valid(j->client_key, strlen(j->client_key), 0)))
        return rl_fail(RL_EINVAL, "client_key must be 1..64 bytes");
    return RL_OK;
}

rl_status store_judgement_add(store *s, const store_judgement *j, int64_t *id_out) {
    char ranking[STORE_MAX_ITEMS * 4 + 8] = "";
    RL_TRY(validate_judgement(j, ranking, sizeof ranking));
    pthread_mutex_lock(&s->mu);
    rl_status r = tx_begin(s);
    int64_t id = 0;
    int existing = 0;
    if (r == RL_OK) {
        sqlite3_stmt *st;
        if (j->client_key) {
            r = prep(s->db, &st, "SELECT id FROM judgements WHERE annotator_id = ? AND client_key = ?");
            if (r == RL_OK) {
                sqlite3_bind_int64(st, 1, j->annotator_id);
                bind_text(st, 2, j->client_key);
                if (sqlite3_step(st) == SQLITE_ROW) { id = sqlite3_column_int64(st, 0); existing = 1; }
                sqlite3_finalize(st);
            }
        }
        if (r == RL_OK && !existing) {
            r = prep(s->db, &st,
                "INSERT INTO judgements(kind, annotator_id, thumb, choice, ranking, rating, rating_lo, rating_hi, comment, created, client_key)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)");
            if (r == RL_OK) {
                bind_text(st, 1, kind_names[j->kind]);
                sqlite3_bind_int64(st, 2, j->annotator_id);
                if (j->kind == STORE_THUMBS) sqlite3_bind_int(st, 3, j->thumb);
                if (j->kind == STORE_PAIR) bind_text(st, 4, choice_names[j->choice]);
                if (j->kind == STORE_RANKING) bind_text(st, 5, ranking);
                if (j->kind == STORE_RATING) {
                    sqlite3_bind_double(st, 6, j->rating);
                    sqlite3_bind_double(st, 7, j->rating_lo);
                    sqlite3_bind_double(st, 8, j->rating_hi);
                }
                bind_text(st, 9, j->comment ? j->comment : "");
                sqlite3_bind_double(st, 10, rl_wall_time());
                bind_text(st, 11, j->client_key);
                r = step_done(s->db, st, "store judgement");
                if (r == RL_EINVAL) r = rl_fail(RL_EINVAL, "unknown annotator %lld", (long long)j->annotator_id);
                sqlite3_finalize(st);
                id = sqlite3_last_insert_rowid(s->db);
            }
            for (int i = 0; r == RL_OK && i < j->nitems; i++) {
                r = prep(s->db, &st, "INSERT INTO judgement_items(judgement_id, position, generation_id) VALUES (?,?,?)");
                if (r != RL_OK) break;
                sqlite3_bind_int64(st, 1, id);
                sqlite3_bind_int(st, 2, i);
                sqlite3_bind_int64(st, 3, j->items[i]);
                r = step_done(s->db, st, "link generation");
                /* With foreign keys on, a missing generation is a constraint failure. */
                if (r == RL_EINVAL) r = rl_fail(RL_EINVAL, "generation %lld does not exist", (long long)j->items[i]);
                sqlite3_finalize(st);
            }
        }
        r = tx_end(s, r);
    }
    pthread_mutex_unlock(&s->mu);
    if (r == RL_OK && id_out) *id_out = id;
    return r;
}

rl_status store_judgement_count(store *s, int64_t *n) {
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st, "SELECT count(*) FROM judgements");
    if (r == RL_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) *n = sqlite3_column_int64(st, 0);
        else r = db_fail(s->db, "count");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- stats ------------------------------------------------------------------------ */

/* Runs a two-column (label, count) query into an array of {label_key: .., "count": n}. */
static rl_status count_rows(sqlite3 *db, const char *sql, const char *label_key, json_t *arr) {
    sqlite3_stmt *st;
    RL_TRY(prep(db, &st, sql));
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *o = json_object();
        json_object_set_new(o, label_key, jstr(col_text(st, 0)));
        json_object_set_new(o, "count", json_integer(sqlite3_column_int64(st, 1)));
        if (sqlite3_column_count(st) > 2) json_object_set_new(o, "kind", jstr(col_text(st, 2)));
        json_array_append_new(arr, o);
    }
    sqlite3_finalize(st);
    return RL_OK;
}

/* Pairwise agreement over items judged by >= 2 annotators. The query yields
 * rows (item key, annotator, label) sorted by item then annotator then time;
 * the last label of each annotator on an item counts. */
static rl_status agreement(sqlite3 *db, const char *sql, json_t *out) {
    sqlite3_stmt *st;
    RL_TRY(prep(db, &st, sql));
    int64_t items = 0, pairs = 0, agree = 0;
    char cur_item[64] = "";
    int64_t cur_ann = -1;
    /* Labels of distinct annotators on the current item (small). */
    enum { MAXA = 256 };
    char labels[MAXA][16];
    int nl = 0;
    int done = 0;
    while (!done) {
        int rc = sqlite3_step(st);
        const char *item = rc == SQLITE_ROW ? col_text(st, 0) : NULL;
        if (!item || strcmp(item, cur_item)) {
            if (nl >= 2) {
                items++;
                for (int a = 0; a < nl; a++)
                    for (int b = a + 1; b < nl; b++) { pairs++; agree += !strcmp(labels[a], labels[b]); }
            }
            nl = 0;
            cur_ann = -1;
            if (!item) { done = 1; break; }
            snprintf(cur_item, sizeof cur_item, "%s", item);
        }
        int64_t ann = sqlite3_column_int64(st, 1);
        if (ann != cur_ann) {
            if (nl < MAXA) nl++;
            cur_ann = ann;
        }
        snprintf(labels[nl - 1], sizeof labels[0], "%s", col_text(st, 2));
    }
    sqlite3_finalize(st);
    json_object_set_new(out, "items", json_integer(items));
    json_object_set_new(out, "annotator_pairs", json_integer(pairs));
    json_object_set_new(out, "agreeing_pairs", json_integer(agree));
    json_object_set_new(out, "rate", pairs ? json_real((double)agree / (double)pairs) : json_null());
    return RL_OK;
}

rl_status store_stats_json(store *s, char **json_out) {
    *json_out = NULL;
    json_t *root = json_object();
    json_t *by_kind = json_array(), *by_ann = json_array(), *by_group = json_array(), *by_day = json_array();
    json_t *agr = json_object(), *a_thumbs = json_object(), *a_pair = json_object();
    pthread_mutex_lock(&s->mu);
    int64_t total = 0;
    sqlite3_stmt *st;
    rl_status r = prep(s->db, &st, "SELECT count(*) FROM judgements");
    if (r == RL_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) total = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (r == RL_OK) r = count_rows(s->db, "SELECT kind, count(*) FROM judgements GROUP BY kind ORDER BY kind", "kind", by_kind);
    if (r == RL_OK)
        r = count_rows(s->db, "SELECT a.name, count(j.id) FROM annotators a LEFT JOIN judgements j ON j.annotator_id = a.id "
                              "GROUP BY a.id ORDER BY a.id", "annotator", by_ann);
    if (r == RL_OK)
        r = count_rows(s->db, "SELECT g.grp, count(j.id) FROM annotator_groups g LEFT JOIN judgements j ON j.annotator_id = g.annotator_id "
                              "GROUP BY g.grp ORDER BY g.grp", "group", by_group);
    if (r == RL_OK)
        r = count_rows(s->db, "SELECT date(created, 'unixepoch'), count(*), kind FROM judgements GROUP BY 1, kind ORDER BY 1, kind", "day", by_day);
    if (r == RL_OK)
        r = agreement(s->db,
            "SELECT CAST(i.generation_id AS TEXT), j.annotator_id, CAST(j.thumb AS TEXT) FROM judgements j "
            "JOIN judgement_items i ON i.judgement_id = j.id WHERE j.kind = 'thumbs' "
            "ORDER BY i.generation_id, j.annotator_id, j.id", a_thumbs);
    /* Pairs: the item is the unordered pair of generations; A/B are turned
     * into "which generation id won" so that the same pair shown in the other
     * order still agrees. */
    if (r == RL_OK)
        r = agreement(s->db,
            "SELECT min(a.generation_id, b.generation_id) || '-' || max(a.generation_id, b.generation_id), j.annotator_id, "
            "CASE j.choice WHEN 'A' THEN CAST(a.generation_id AS TEXT) WHEN 'B' THEN CAST(b.generation_id AS TEXT) ELSE j.choice END "
            "FROM judgements j JOIN judgement_items a ON a.judgement_id = j.id AND a.position = 0 "
            "JOIN judgement_items b ON b.judgement_id = j.id AND b.position = 1 WHERE j.kind = 'pair' "
            "ORDER BY 1, j.annotator_id, j.id", a_pair);
    pthread_mutex_unlock(&s->mu);
    json_object_set_new(agr, "thumbs", a_thumbs);
    json_object_set_new(agr, "pair", a_pair);
    json_object_set_new(root, "total", json_integer(total));
    json_object_set_new(root, "by_kind", by_kind);
    json_object_set_new(root, "by_annotator", by_ann);
    json_object_set_new(root, "by_group", by_group);
    json_object_set_new(root, "by_day", by_day);
    json_object_set_new(root, "agreement", agr);
    if (r == RL_OK) {
        *json_out = json_dumps(root, JSON_COMPACT);
        if (!*json_out) r = rl_fail(RL_ENOMEM, "out of memory");
    }
    json_decref(root);
    return r;
}

/* ---- export -------------------------------------------------------------------------- */

/* groups object of an annotator: {"group": "a,b", <consented profile answers>}. */
static json_t *groups_of(sqlite3 *db, int64_t annotator_id) {
    json_t *g = json_object();
    sqlite3_stmt *st;
    if (prep(db, &st, "SELECT group_concat(grp, ',') FROM (SELECT grp FROM annotator_groups WHERE annotator_id = ? ORDER BY grp)") == RL_OK) {
        sqlite3_bind_int64(st, 1, annotator_id);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) json_object_set_new(g, "group", jstr(col_text(st, 0)));
        sqlite3_finalize(st);
    }
    if (prep(db, &st, "SELECT key, value FROM profile_answers WHERE annotator_id = ? AND consent = 1 ORDER BY key") == RL_OK) {
        sqlite3_bind_int64(st, 1, annotator_id);
        while (sqlite3_step(st) == SQLITE_ROW)
            if (strcmp(col_text(st, 0), "group")) json_object_set_new(g, col_text(st, 0), jstr(col_text(st, 1)));
        sqlite3_finalize(st);
    }
    return g;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) of unix seconds t. */
static void iso_time(double t, char *out, size_t n) {
    long long ms = llround(t * 1000.0);
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03lldZ", buf, ms % 1000);
}

/* HH text of a conversation + final answer: "\n\nHuman: ...\n\nAssistant: ...". */
static char *hh_text(json_t *conv, const char *answer) {
    size_t cap = 256 + strlen(answer), len = 0;
    size_t idx;
    json_t *turn;
    json_array_foreach(conv, idx, turn) cap += 16 + strlen(json_string_value(json_object_get(turn, "content")) ? json_string_value(json_object_get(turn, "content")) : "");
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = 0;
    json_array_foreach(conv, idx, turn) {
        const char *role = json_string_value(json_object_get(turn, "role"));
        const char *c = json_string_value(json_object_get(turn, "content"));
        len += (size_t)snprintf(out + len, cap - len, "\n\n%s: %s", role && !strcmp(role, "assistant") ? "Assistant" : "Human", c ? c : "");
    }
    snprintf(out + len, cap - len, "\n\nAssistant: %s", answer);
    return out;
}

rl_status store_export(store *s, store_export_format fmt, FILE *out, int64_t *written, int64_t *skipped) {
    int64_t nw = 0, ns = 0;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st, *items = NULL;
    rl_status r = prep(s->db, &st,
        "SELECT j.id, j.kind, j.annotator_id, a.name, j.thumb, j.choice, j.ranking, j.rating, j.rating_lo, j.rating_hi, j.comment, j.created "
        "FROM judgements j JOIN annotators a ON a.id = j.annotator_id ORDER BY j.id");
    if (r == RL_OK)
        r = prep(s->db, &items,
            "SELECT g.id, g.conversation, g.response, m.identity, g.seed, g.params FROM judgement_items i "
            "JOIN generations g ON g.id = i.generation_id JOIN models m ON m.id = g.model_id WHERE i.judgement_id = ? ORDER BY i.position");
    int rc = SQLITE_DONE;
    while (r == RL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t jid = sqlite3_column_int64(st, 0);
        const char *kind = col_text(st, 1);
        json_t *o = json_object();
        json_t *responses = json_array(), *gens = json_array();
        json_t *conv = NULL;
        sqlite3_reset(items);
        sqlite3_bind_int64(items, 1, jid);
        while (sqlite3_step(items) == SQLITE_ROW) {
            if (!conv) {
                json_error_t err;
                conv = json_loads(col_text(items, 1), 0, &err);
                if (!json_is_array(conv)) { json_decref(conv); conv = json_array(); }
            }
            json_array_append_new(responses, jstr(col_text(items, 2)));
            json_t *g = json_object();
            json_object_set_new(g, "id", json_integer(sqlite3_column_int64(items, 0)));
            json_object_set_new(g, "model", jstr(col_text(items, 3)));
            json_object_set_new(g, "seed", json_integer(sqlite3_column_int64(items, 4)));
            json_error_t err;
            json_t *params = json_loads(col_text(items, 5), 0, &err);
            json_object_set_new(g, "params", params ? params : json_object());
            json_array_append_new(gens, g);
        }
        if (!conv) conv = json_array();
        size_t idx;
        json_t *turn;
        char id_text[32];
        snprintf(id_text, sizeof id_text, "app:%lld", (long long)jid);
        double created = sqlite3_column_double(st, 11);
        if (fmt == STORE_EXPORT_JSONL) {
            /* The record library's canonical JSONL, version 1
             * (docs/formats-serve.md): `rlhf feedback import` and
             * fb_import_* read it as it is. Keys in its canonical order. */
            json_object_set_new(o, "v", json_integer(1));
            json_object_set_new(o, "kind", json_string(kind));
            json_object_set_new(o, "id", json_string(id_text));
            json_object_set_new(o, "source", json_string("app"));
            json_object_set_new(o, "annotator", jstr(col_text(st, 3)));
            json_object_set_new(o, "groups", groups_of(s->db, sqlite3_column_int64(st, 2)));
            char when[40];
            iso_time(created, when, sizeof when);
            json_object_set_new(o, "time", json_string(when));
            json_object_set_new(o, "weight", json_integer(1));
            /* prompt: the conversation as [{role, text}] */
            json_t *prompt_turns = json_array();
            json_array_foreach(conv, idx, turn) {
                const char *role = json_string_value(json_object_get(turn, "role"));
                const char *c = json_string_value(json_object_get(turn, "content"));
                json_array_append_new(prompt_turns, json_pack("{s:o,s:o}", "role", jstr(role ? role : "user"), "text", jstr(c ? c : "")));
            }
            json_object_set_new(o, "prompt", prompt_turns);
            json_object_set_new(o, "responses", json_incref(responses));
            if (!strcmp(kind, "pair")) {
                const char *c = col_text(st, 5);
                json_object_set_new(o, "choice", json_string(!strcmp(c, "A") ? "a" : !strcmp(c, "B") ? "b" : c));
            }
            if (!strcmp(kind, "thumbs")) json_object_set_new(o, "thumb", json_string(sqlite3_column_int(st, 4) > 0 ? "up" : "down"));
            if (!strcmp(kind, "ranking")) {
                json_error_t err;
                json_t *order = json_loads(col_text(st, 6), 0, &err);
                /* ranks[i] = rank of responses[i] (0 = best) from order = positions best first. */
                json_t *ranks = json_array();
                size_t k = json_array_size(order);
                for (size_t i = 0; i < k; i++) json_array_append_new(ranks, json_integer(0));
                json_t *pos;
                json_array_foreach(order, idx, pos) {
                    json_int_t p = json_integer_value(pos);
                    if (p >= 0 && (size_t)p < k) json_array_set_new(ranks, (size_t)p, json_integer((json_int_t)idx));
                }
                json_decref(order);
                json_object_set_new(o, "ranks", ranks);
            }
            if (!strcmp(kind, "rating")) {
                json_object_set_new(o, "rating", jnum(sqlite3_column_double(st, 7)));
                json_t *scale = json_array();
                json_array_append_new(scale, jnum(sqlite3_column_double(st, 8)));
                json_array_append_new(scale, jnum(sqlite3_column_double(st, 9)));
                json_object_set_new(o, "scale", scale);
            }
            const char *comment = col_text(st, 10);
            json_object_set_new(o, "comment", *comment ? jstr(comment) : json_null());
            /* meta (strings): the generations behind the responses, in order. */
            char gids[STORE_MAX_ITEMS * 24] = "", models[STORE_MAX_ITEMS * 80] = "", seeds[STORE_MAX_ITEMS * 24] = "";
            size_t gl = 0, ml = 0, sl = 0;
            json_t *g;
            json_array_foreach(gens, idx, g) {
                const char *sep = idx ? "," : "";
                gl += (size_t)snprintf(gids + gl, sizeof gids - gl, "%s%lld", sep, (long long)json_integer_value(json_object_get(g, "id")));
                ml += (size_t)snprintf(models + ml, sizeof models - ml, "%s%s", sep, json_string_value(json_object_get(g, "model")));
                sl += (size_t)snprintf(seeds + sl, sizeof seeds - sl, "%s%lld", sep, (long long)json_integer_value(json_object_get(g, "seed")));
                if (gl >= sizeof gids) gl = sizeof gids - 1;
                if (ml >= sizeof models) ml = sizeof models - 1;
                if (sl >= sizeof seeds) sl = sizeof seeds - 1;
            }
            json_object_set_new(o, "meta", json_pack("{s:o,s:o,s:o}", "generations", jstr(gids), "models", jstr(models), "seeds", jstr(seeds)));
            char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (!line) r = rl_fail(RL_ENOMEM, "out of memory");
            else {
                if (fprintf(out, "%s\n", line) < 0) r = rl_fail(RL_EIO, "write failed");
                free(line);
                nw++;
            }
        } else {
            /* HH: strict pairs only, from pair judgements and from every pair of a ranking. */
            int npairs = 0;
            int chosen[STORE_MAX_ITEMS * STORE_MAX_ITEMS], rejected[STORE_MAX_ITEMS * STORE_MAX_ITEMS];
            if (!strcmp(kind, "pair")) {
                const char *c = col_text(st, 5);
                if (!strcmp(c, "A")) { chosen[0] = 0; rejected[0] = 1; npairs = 1; }
                if (!strcmp(c, "B")) { chosen[0] = 1; rejected[0] = 0; npairs = 1; }
            } else if (!strcmp(kind, "ranking")) {
                json_error_t err;
                json_t *order = json_loads(col_text(st, 6), 0, &err);
                size_t k = json_array_size(order);
                for (size_t a = 0; a < k; a++)
                    for (size_t b = a + 1; b < k; b++) {
                        chosen[npairs] = (int)json_integer_value(json_array_get(order, a));
                        rejected[npairs] = (int)json_integer_value(json_array_get(order, b));
                        npairs++;
                    }
                json_decref(order);
            }
            if (!npairs) ns++;
            for (int p = 0; p < npairs && r == RL_OK; p++) {
                const char *ca = json_string_value(json_array_get(responses, (size_t)chosen[p]));
                const char *rj = json_string_value(json_array_get(responses, (size_t)rejected[p]));
                char *tc = hh_text(conv, ca ? ca : ""), *tr = hh_text(conv, rj ? rj : "");
                json_t *h = json_object();
                json_object_set_new(h, "chosen", jstr(tc));
                json_object_set_new(h, "rejected", jstr(tr));
                /* Extra keys (HH readers ignore them): who judged. */
                json_object_set_new(h, "annotator", jstr(col_text(st, 3)));
                json_object_set_new(h, "groups", groups_of(s->db, sqlite3_column_int64(st, 2)));
                json_object_set_new(h, "id", json_string(id_text));
                free(tc);
                free(tr);
                char *line = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
                json_decref(h);
                if (!line) r = rl_fail(RL_ENOMEM, "out of memory");
                else {
                    if (fprintf(out, "%s\n", line) < 0) r = rl_fail(RL_EIO, "write failed");
                    free(line);
                    nw++;
                }
            }
        }
        json_decref(conv);
        json_decref(responses);
        json_decref(gens);
        json_decref(o);
    }
    if (r == RL_OK && rc != SQLITE_DONE) r = db_fail(s->db, "export");
    sqlite3_finalize(items);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    if (written) *written = nw;
    if (skipped) *skipped = ns;
    return r;
}

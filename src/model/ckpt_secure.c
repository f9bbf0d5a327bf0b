/* ckpt_secure.c — see ckpt_secure.h; formats in docs/security.md. */
#include "ckpt_secure.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../base/log.h"

/* The git commit is generated into $(BUILD)/gen/rl_git.h by the Makefile;
 * other builds (fuzzers, hand-built tools) say "unknown". */
#if defined(__has_include)
#if __has_include("rl_git.h")
#include "rl_git.h"
#endif
#endif
#ifndef RL_GIT_COMMIT
#define RL_GIT_COMMIT "unknown"
#endif

/* ---- the process-wide policy ---------------------------------------------- */

static struct {
    int configured;
    rl_seal_policy policy;
    int sign;
    rl_keys_secret key;
    int encrypt;
} g;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

static rl_status configure_locked(const char *sign_key, const char *verify_key, const char *key_file,
                                  const char *passphrase_env, int encrypt) {
    if (g.configured) {
        rl_seal_policy_free(&g.policy);
        rl_keys_wipe(&g.key, sizeof g.key);
    }
    memset(&g, 0, sizeof g);
    RL_TRY(rl_seal_policy_init(&g.policy, verify_key, key_file, passphrase_env));
    const char *sk = nonempty(sign_key);
    if (!sk) sk = nonempty(getenv(CKPT_ENV_SIGN_KEY));
    if (sk) {
        rl_status s = rl_keys_load_secret(&g.key, sk);
        if (s != RL_OK) { rl_seal_policy_free(&g.policy); memset(&g, 0, sizeof g); return s; }
        g.sign = 1;
    }
    if (encrypt && !g.policy.can_decrypt) {
        rl_seal_policy_free(&g.policy);
        rl_keys_wipe(&g.key, sizeof g.key);
        memset(&g, 0, sizeof g);
        return rl_fail(RL_EINVAL, "--encrypt needs a key: --key-file (or %s) or --passphrase-env (or %s)",
                       RL_SEAL_ENV_KEY_FILE, RL_SEAL_ENV_PASSPHRASE);
    }
    g.encrypt = encrypt;
    g.configured = 1;
    return RL_OK;
}

rl_status ckpt_secure_configure(const char *sign_key, const char *verify_key, const char *key_file,
                                const char *passphrase_env, int encrypt) {
    pthread_mutex_lock(&g_lock);
    rl_status s = configure_locked(sign_key, verify_key, key_file, passphrase_env, encrypt);
    pthread_mutex_unlock(&g_lock);
    return s;
}

void ckpt_secure_reset(void) {
    pthread_mutex_lock(&g_lock);
    if (g.configured) rl_seal_policy_free(&g.policy);
    rl_keys_wipe(&g.key, sizeof g.key);
    memset(&g, 0, sizeof g);
    pthread_mutex_unlock(&g_lock);
}

/* First use without ckpt_secure_configure: take the policy from the environment. */
static rl_status ensure(void) {
    pthread_mutex_lock(&g_lock);
    rl_status s = g.configured ? RL_OK : configure_locked(NULL, NULL, NULL, NULL, 0);
    pthread_mutex_unlock(&g_lock);
    return s;
}

int ckpt_secure_signing(char id[17]) {
    if (ensure() != RL_OK || !g.sign) return 0;
    if (id) memcpy(id, g.key.pub.id, 17);
    return 1;
}

rl_status ckpt_secure_map(rl_mapped_file *f, const char *path, rl_seal_sig_info *sig) {
    memset(f, 0, sizeof *f);
    RL_TRY(ensure());
    return rl_seal_load(f, path, CKPT_MAGIC, 1, CKPT_VERSION, "model checkpoint", &g.policy, sig);
}

static rl_status write_sealed(const char *path, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                              const ckpt_train_state *train, const ckpt_meta *meta) {
    rl_seal_writer *w;
    RL_TRY(rl_seal_writer_open(&w, path, CKPT_MAGIC, CKPT_VERSION, 0, g.sign ? &g.key : NULL));
    ckpt_sink s = {rl_seal_writer_sink, w};
    rl_status st = ckpt_write_meta(&s, m, tok_id, opt, train, meta);
    if (st != RL_OK) { rl_seal_writer_abort(w); return st; }
    return rl_seal_writer_commit(w);
}

rl_status ckpt_secure_save(const char *path, const gpt_model *m, const char *tok_id, const optim_adamw *opt,
                           const ckpt_train_state *train, const ckpt_meta *meta) {
    RL_TRY(ensure());
    ckpt_meta *mt = calloc(1, sizeof *mt);   /* ~9 KB: not on the stack of deep trainers */
    if (!mt) return rl_fail(RL_ENOMEM, "out of memory");
    if (meta) *mt = *meta;
    rl_status st = ckpt_prov_apply(mt);
    if (st == RL_OK && !g.encrypt) st = write_sealed(path, m, tok_id, opt, train, mt);
    else if (st == RL_OK) {
        /* Sign first, then encrypt (the signature covers the plaintext). The
         * plaintext exists briefly next to the target, owner-only (umask
         * 077), and is removed whatever happens. */
        char plain[PATH_MAX];
        if ((size_t)snprintf(plain, sizeof plain, "%s.plain.%ld", path, (long)getpid()) >= sizeof plain)
            st = rl_fail(RL_EINVAL, "%s: path too long", path);
        if (st == RL_OK) {
            mode_t old = umask(077);
            st = write_sealed(plain, m, tok_id, opt, train, mt);
            umask(old);
            if (st == RL_OK) st = rl_seal_encrypt_file(plain, path, &g.policy.secret);
            unlink(plain);
        }
    }
    free(mt);
    return st;
}

/* ---- hashing ------------------------------------------------------------------ */

static void hex32(char out[65], const uint8_t h[32]) { sodium_bin2hex(out, 65, h, 32); }

static rl_status sha256_file(const char *path, uint8_t out[32]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rl_fail(RL_EIO, "%s: cannot open to hash it: %s", path, strerror(errno));
    uint8_t *buf = malloc(1u << 20);
    if (!buf) { close(fd); return rl_fail(RL_ENOMEM, "out of memory"); }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    rl_status s = RL_OK;
    for (;;) {
        ssize_t r = read(fd, buf, 1u << 20);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { s = rl_fail(RL_EIO, "%s: read error while hashing: %s", path, strerror(errno)); break; }
        if (r == 0) break;
        crypto_hash_sha256_update(&st, buf, (size_t)r);
    }
    crypto_hash_sha256_final(&st, out);
    free(buf);
    close(fd);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

rl_status ckpt_sha256_path(const char *path, char hex[65]) {
    RL_TRY(rl_seal_init());
    struct stat sb;
    if (stat(path, &sb) != 0) return rl_fail(RL_ENOTFOUND, "%s: %s", path, strerror(errno));
    uint8_t h[32];
    if (S_ISREG(sb.st_mode)) {
        RL_TRY(sha256_file(path, h));
        hex32(hex, h);
        return RL_OK;
    }
    if (!S_ISDIR(sb.st_mode)) return rl_fail(RL_EINVAL, "%s: neither a file nor a directory", path);
    DIR *d = opendir(path);
    if (!d) return rl_fail(RL_EIO, "%s: cannot list: %s", path, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    rl_status s = RL_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, sizeof *names * (size_t)cap);
            if (!nn) { s = rl_fail(RL_ENOMEM, "out of memory"); break; }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) { s = rl_fail(RL_ENOMEM, "out of memory"); break; }
        n++;
    }
    closedir(d);
    if (s == RL_OK) qsort(names, (size_t)n, sizeof *names, cmp_str);
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (int i = 0; i < n && s == RL_OK; i++) {
        char p[PATH_MAX];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", path, names[i]) >= sizeof p) continue;
        if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        uint8_t fh[32];
        char fx[65];
        s = sha256_file(p, fh);
        if (s != RL_OK) break;
        hex32(fx, fh);
        crypto_hash_sha256_update(&st, (const uint8_t *)names[i], strlen(names[i]) + 1);
        crypto_hash_sha256_update(&st, (const uint8_t *)fx, 64);
        crypto_hash_sha256_update(&st, (const uint8_t *)"\n", 1);
    }
    crypto_hash_sha256_final(&st, h);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (s == RL_OK) hex32(hex, h);
    return s;
}

/* ---- provenance ----------------------------------------------------------------- */

#define PROV_MAX_FILES 9
static struct {
    int active;
    char cmd[512];
    char version[32];
    int nfiles;
    char flag[PROV_MAX_FILES][32];
    char path[PROV_MAX_FILES][PATH_MAX];
    char hash[PROV_MAX_FILES][65];   /* "" until the first save hashes it */
    int parent;                      /* index of the parent checkpoint, -1 if none */
} prov;

/* Flags whose value is never an input (outputs, keys, logs). */
static int skip_flag(const char *f) {
    static const char *const skip[] = {"out", "log", "sign-key", "verify-key", "key-file", "passphrase-env", "metrics", NULL};
    for (int i = 0; skip[i]; i++) if (!strcmp(f, skip[i])) return 1;
    return 0;
}
/* Rank of a flag as the parent checkpoint (lower wins), -1 if it is not one. */
static int parent_rank(const char *f) {
    static const char *const parents[] = {"resume", "model", "policy", "init", "base", "sft", NULL};
    for (int i = 0; parents[i]; i++) if (!strcmp(f, parents[i])) return i;
    return -1;
}

void ckpt_prov_reset(void) { memset(&prov, 0, sizeof prov); }

void ckpt_prov_begin(const char *words, int argc, char **argv, const char *version) {
    ckpt_prov_reset();
    prov.active = 1;
    prov.parent = -1;
    snprintf(prov.version, sizeof prov.version, "%s", version ? version : "");
    size_t len = (size_t)snprintf(prov.cmd, sizeof prov.cmd, "rlhf %s", words);
    for (int i = 0; i < argc && len < sizeof prov.cmd; i++) {
        /* quote arguments with spaces so the line can be re-run */
        int q = strpbrk(argv[i], " \t'\"") != NULL;
        len += (size_t)snprintf(prov.cmd + len, sizeof prov.cmd - len, q ? " '%s'" : " %s", argv[i]);
    }
    if (len >= sizeof prov.cmd) memcpy(prov.cmd + sizeof prov.cmd - 4, "...", 4);
    int best_rank = 1 << 30;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) continue;
        char f[32];
        const char *val = NULL;
        const char *eq = strchr(argv[i] + 2, '=');
        size_t fl = eq ? (size_t)(eq - argv[i] - 2) : strlen(argv[i] + 2);
        if (fl == 0 || fl >= sizeof f) continue;
        memcpy(f, argv[i] + 2, fl);
        f[fl] = 0;
        if (eq) val = eq + 1;
        else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) val = argv[++i];
        if (!val || !*val || skip_flag(f)) continue;
        struct stat sb;
        if (stat(val, &sb) != 0 || !(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode))) continue;
        if (prov.nfiles == PROV_MAX_FILES) break;
        int k = prov.nfiles++;
        snprintf(prov.flag[k], sizeof prov.flag[k], "%s", f);
        snprintf(prov.path[k], sizeof prov.path[k], "%s", val);
        int r = parent_rank(f);
        if (r >= 0 && r < best_rank && S_ISREG(sb.st_mode)) { best_rank = r; prov.parent = k; }
    }
}

static rl_status set_or_warn(ckpt_meta *meta, const char *key, const char *val) {
    if (ckpt_meta_get(meta, key) || meta->n < CKPT_META_MAX) return ckpt_meta_set(meta, key, val);
    rl_warn("checkpoint metadata is full; provenance key %s not recorded", key);
    return RL_OK;
}

/* Copies s into a metadata value (< 256 bytes), cutting with "..." */
static void fit(char out[256], const char *s) {
    size_t n = strlen(s);
    if (n < 256) { memcpy(out, s, n + 1); return; }
    memcpy(out, s, 252);
    memcpy(out + 252, "...", 4);
}

rl_status ckpt_prov_apply(ckpt_meta *meta) {
    if (!prov.active) return RL_OK;
    char v[256];
    size_t n = strlen(prov.cmd);
    if (n < 256) RL_TRY(set_or_warn(meta, "prov.cmd", prov.cmd));
    else {
        memcpy(v, prov.cmd, 255); v[255] = 0;
        RL_TRY(set_or_warn(meta, "prov.cmd", v));
        fit(v, prov.cmd + 255);
        RL_TRY(set_or_warn(meta, "prov.cmd.1", v));
    }
    RL_TRY(set_or_warn(meta, "prov.git", RL_GIT_COMMIT));
    if (prov.version[0]) RL_TRY(set_or_warn(meta, "prov.version", prov.version));
    char ts[32];
    /* SOURCE_DATE_EPOCH (the reproducible-builds convention) pins the time,
     * so a run can be repeated into a byte-identical checkpoint */
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    time_t now = sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    RL_TRY(set_or_warn(meta, "prov.time", ts));
    int d = 0;
    for (int i = 0; i < prov.nfiles; i++) {
        if (!prov.hash[i][0]) {
            rl_status s = ckpt_sha256_path(prov.path[i], prov.hash[i]);
            if (s != RL_OK) { rl_warn("provenance: %s", rl_error()); snprintf(prov.hash[i], 65, "%s", "unreadable"); }
        }
        char line[PATH_MAX + 128];
        if (i == prov.parent) {
            snprintf(line, sizeof line, "%s %s", prov.hash[i], prov.path[i]);
            fit(v, line);
            RL_TRY(set_or_warn(meta, "prov.parent", v));
        } else {
            char key[32];
            snprintf(key, sizeof key, "prov.data.%d", d++);
            snprintf(line, sizeof line, "%s --%s %s", prov.hash[i], prov.flag[i], prov.path[i]);
            fit(v, line);
            RL_TRY(set_or_warn(meta, key, v));
        }
    }
    return RL_OK;
}

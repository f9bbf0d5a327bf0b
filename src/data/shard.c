/* shard.c — writing token shards and streaming (B, T+1) windows from them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "shard.h"
#include "../base/binfile.h"
#include "../base/log.h"
#include "../base/rng.h"

#define SHARD_VERSION 1u
#define MANIFEST_VERSION 1u
#define SHARD_PREAMBLE 128   /* payload bytes before the ids (keeps them aligned) */

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }

/* ---- prepare --------------------------------------------------------------- */

typedef struct {
    const char *dir;
    const char *split;        /* "train" / "val" */
    uint32_t split_id;        /* 0 / 1 */
    int token_bytes, vocab;
    const char *identity;
    long long shard_tokens;
    rl_writer *w;             /* open shard or NULL */
    long long in_shard;
    int nshards;
    long long total;
    /* finished shards, for the manifest */
    long long *counts; int ccap;
} split_writer;

static void shard_name(char *out, size_t n, const char *dir, const char *split, int idx) {
    snprintf(out, n, "%s/%s_%06d.bin", dir, split, idx);
}

static rl_status sw_close_shard(split_writer *s) {
    if (!s->w) return RL_OK;
    rl_status st = rl_writer_commit(s->w);
    s->w = NULL;
    if (st != RL_OK) return st;
    if (s->nshards == s->ccap) {
        s->ccap = s->ccap ? 2 * s->ccap : 16;
        long long *nc = realloc(s->counts, (size_t)s->ccap * sizeof *nc);
        if (!nc) return rl_fail(RL_ENOMEM, "out of memory");
        s->counts = nc;
    }
    s->counts[s->nshards++] = s->in_shard;
    return RL_OK;
}

static rl_status sw_open_shard(split_writer *s) {
    char path[4096];
    shard_name(path, sizeof path, s->dir, s->split, s->nshards);
    RL_TRY(rl_writer_open(&s->w, path, DATA_SHARD_MAGIC, SHARD_VERSION, 0));
    unsigned char pre[SHARD_PREAMBLE] = {0};
    put32(pre, (uint32_t)s->token_bytes);
    put32(pre + 4, (uint32_t)s->vocab);
    put32(pre + 8, s->split_id);
    put32(pre + 12, (uint32_t)s->nshards);
    memcpy(pre + 16, s->identity, 64);
    s->in_shard = 0;
    rl_status st = rl_writer_write(s->w, pre, sizeof pre);
    if (st != RL_OK) { rl_writer_abort(s->w); s->w = NULL; }
    return st;
}

static rl_status sw_write(split_writer *s, const int *ids, long n) {
    unsigned char buf[8192];
    long i = 0;
    while (i < n) {
        if (!s->w) RL_TRY(sw_open_shard(s));
        long room = (long)(s->shard_tokens - s->in_shard);
        long k = n - i < room ? n - i : room;
        if (k > (long)(sizeof buf / (size_t)s->token_bytes)) k = (long)(sizeof buf / (size_t)s->token_bytes);
        for (long j = 0; j < k; j++) {
            uint32_t v = (uint32_t)ids[i + j];
            if (s->token_bytes == 2) { buf[2 * j] = (unsigned char)v; buf[2 * j + 1] = (unsigned char)(v >> 8); }
            else put32(buf + 4 * j, v);
        }
        RL_TRY(rl_writer_write(s->w, buf, (size_t)k * (size_t)s->token_bytes));
        s->in_shard += k; s->total += k; i += k;
        if (s->in_shard == s->shard_tokens) RL_TRY(sw_close_shard(s));
    }
    return RL_OK;
}

static int graphic(unsigned char c) { return c >= 0x21 && c <= 0x7e; }

/* Encodes text[0..len) in chunks ending at "safe" boundaries: just after a
 * '\n' that has a printable ASCII character on both sides. The pre-split never
 * joins across such a point ("x\n" + "y..." splits the same whole or apart),
 * so chunking never changes the ids. */
static rl_status encode_to(const tok_tokenizer *t, const char *text, size_t len, size_t chunk, split_writer *s, int **ids) {
    size_t pos = 0;
    while (pos < len) {
        size_t end = len;
        if (len - pos > chunk) {
            end = 0;
            for (size_t i = pos + chunk; i + 1 < len; i++) {
                if (text[i] == '\n' && i > pos && graphic((unsigned char)text[i - 1]) && graphic((unsigned char)text[i + 1])) { end = i + 1; break; }
                if (i - pos > 16 * chunk) break;  /* no safe point: encode a bigger piece */
            }
            if (!end) end = len;
        }
        int n = 0;
        RL_TRY(tok_encode(t, text + pos, end - pos, 0, ids, &n));
        RL_TRY(sw_write(s, *ids, n));
        pos = end;
    }
    return RL_OK;
}

static rl_status map_input(const char *path, const char **data, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return rl_fail(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "cannot open input %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return rl_fail(RL_EINVAL, "input %s is not a regular file", path); }
    *len = (size_t)st.st_size;
    *data = "";
    if (*len) {
        void *m = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) { close(fd); return rl_fail(RL_EIO, "cannot map %s: %s", path, strerror(errno)); }
        *data = m;
    }
    close(fd);
    return RL_OK;
}

static rl_status write_manifest(const char *dir, int vocab, int token_bytes, const char *identity, split_writer *sw) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.bin", dir);
    rl_writer *w;
    RL_TRY(rl_writer_open(&w, path, DATA_MANIFEST_MAGIC, MANIFEST_VERSION, 0));
    unsigned char h[104] = {0};
    put32(h, (uint32_t)vocab);
    put32(h + 4, (uint32_t)token_bytes);
    memcpy(h + 8, identity, 64);
    put32(h + 72, (uint32_t)sw[0].nshards);
    put32(h + 76, (uint32_t)sw[1].nshards);
    put64(h + 80, (uint64_t)sw[0].total);
    put64(h + 88, (uint64_t)sw[1].total);
    rl_status st = rl_writer_write(w, h, 96);
    for (int k = 0; k < 2 && st == RL_OK; k++) {
        for (int i = 0; i < sw[k].nshards && st == RL_OK; i++) {
            unsigned char e[8];
            put64(e, (uint64_t)sw[k].counts[i]);
            st = rl_writer_write(w, e, 8);
        }
    }
    if (st != RL_OK) { rl_writer_abort(w); return st; }
    return rl_writer_commit(w);
}

rl_status data_prepare(const tok_tokenizer *t, const char *const *inputs, int ninputs, const char *dir,
                       const data_prepare_opts *opts, data_prepare_stats *stats) {
    if (opts->val_fraction < 0 || opts->val_fraction > 0.5) return rl_fail(RL_EINVAL, "val fraction %g is outside [0, 0.5]", opts->val_fraction);
    if (opts->shard_tokens < 1024) return rl_fail(RL_EINVAL, "shard size %lld tokens is below the minimum 1024", opts->shard_tokens);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return rl_fail(RL_EIO, "cannot create directory %s: %s", dir, strerror(errno));
    struct stat dst;
    if (stat(dir, &dst) != 0 || !S_ISDIR(dst.st_mode)) return rl_fail(RL_EIO, "%s is not a directory", dir);
    int vocab = tok_vocab_size(t);
    int token_bytes = vocab <= 65536 ? 2 : 4;
    char identity[65];
    tok_identity(t, identity);
    int sep = tok_special(t, "<|endoftext|>");
    if (sep < 0) sep = tok_special(t, "<|bos|>");
    size_t chunk = opts->chunk_bytes ? opts->chunk_bytes : (4u << 20);
    split_writer sw[2];
    for (int k = 0; k < 2; k++) {
        memset(&sw[k], 0, sizeof sw[k]);
        sw[k].dir = dir; sw[k].split = k ? "val" : "train"; sw[k].split_id = (uint32_t)k;
        sw[k].token_bytes = token_bytes; sw[k].vocab = vocab; sw[k].identity = identity;
        sw[k].shard_tokens = opts->shard_tokens;
    }
    rl_status st = RL_OK;
    int *ids = NULL;
    for (int f = 0; f < ninputs && st == RL_OK; f++) {
        const char *text = NULL; size_t len = 0;
        st = map_input(inputs[f], &text, &len);
        if (st != RL_OK) break;
        /* val = the last val_fraction of the bytes, starting at a line start */
        size_t cut = len - (size_t)((double)len * opts->val_fraction);
        if (cut < len && opts->val_fraction > 0) {
            const char *nl = memchr(text + cut - 1, '\n', len - (cut - 1));  /* cut >= len/2 > 0 */
            cut = nl ? (size_t)(nl - text) + 1 : len;
        }
        if (opts->verbose) rl_info("%s: %zu bytes (%zu train, %zu val)", inputs[f], len, cut, len - cut);
        for (int k = 0; k < 2 && st == RL_OK; k++) {
            size_t a = k ? cut : 0, b = k ? len : cut;
            if (a == b) continue;
            if (sep >= 0) st = sw_write(&sw[k], &sep, 1);
            if (st == RL_OK) st = encode_to(t, text + a, b - a, chunk, &sw[k], &ids);
        }
        if (len) munmap((void *)text, len);
    }
    for (int k = 0; k < 2 && st == RL_OK; k++) st = sw_close_shard(&sw[k]);
    if (st == RL_OK && sw[0].total == 0) st = rl_fail(RL_EINVAL, "the inputs hold no text for the train split; nothing written");
    if (st == RL_OK) st = write_manifest(dir, vocab, token_bytes, identity, sw);
    if (st == RL_OK && stats) {
        stats->train_tokens = sw[0].total; stats->val_tokens = sw[1].total;
        stats->train_shards = sw[0].nshards; stats->val_shards = sw[1].nshards;
    }
    for (int k = 0; k < 2; k++) { if (sw[k].w) rl_writer_abort(sw[k].w); free(sw[k].counts); }
    free(ids);
    return st;
}

/* ---- manifest -------------------------------------------------------------- */

typedef struct {
    data_info info;
    long long *counts[2];   /* per shard of each split */
} manifest;

static rl_status read_manifest(const char *dir, manifest *m) {
    memset(m, 0, sizeof *m);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.bin", dir);
    rl_mapped_file f;
    rl_status st = rl_file_map(&f, path, DATA_MANIFEST_MAGIC, MANIFEST_VERSION, MANIFEST_VERSION, "token-data manifest");
    if (st == RL_ENOTFOUND) return rl_fail(st, "%s has no manifest.bin: it is not a token-data directory; make one with 'rlhf data prepare'", dir);
    if (st != RL_OK) return st;
    rl_cursor c = rl_cursor_make(f.payload, f.info.payload_bytes);
    m->info.vocab_size = (int)rl_cursor_u32(&c);
    m->info.token_bytes = (int)rl_cursor_u32(&c);
    rl_cursor_read(&c, m->info.identity, 64);
    m->info.identity[64] = 0;
    uint32_t ns[2];
    ns[0] = rl_cursor_u32(&c); ns[1] = rl_cursor_u32(&c);
    m->info.train_tokens = (long long)rl_cursor_u64(&c);
    m->info.val_tokens = (long long)rl_cursor_u64(&c);
    m->info.train_shards = (int)ns[0]; m->info.val_shards = (int)ns[1];
    if (c.bad || (m->info.token_bytes != 2 && m->info.token_bytes != 4) || m->info.vocab_size < 1 || ns[0] > (1u << 24) || ns[1] > (1u << 24) ||
        c.left != 8 * ((size_t)ns[0] + ns[1])) {
        rl_file_unmap(&f);
        return rl_fail(RL_EFORMAT, "%s: manifest fields are inconsistent; re-run 'rlhf data prepare'", path);
    }
    for (int k = 0; k < 2; k++) {
        m->counts[k] = malloc(((size_t)ns[k] + 1) * sizeof *m->counts[k]);
        long long sum = 0;
        for (uint32_t i = 0; m->counts[k] && i < ns[k]; i++) { m->counts[k][i] = (long long)rl_cursor_u64(&c); sum += m->counts[k][i]; }
        if (!m->counts[k] || sum != (k ? m->info.val_tokens : m->info.train_tokens)) {
            free(m->counts[0]); free(m->counts[1]);
            rl_file_unmap(&f);
            return rl_fail(RL_EFORMAT, "%s: shard token counts do not add up; re-run 'rlhf data prepare'", path);
        }
    }
    rl_file_unmap(&f);
    return RL_OK;
}

rl_status data_read_info(const char *dir, data_info *info) {
    manifest m;
    RL_TRY(read_manifest(dir, &m));
    *info = m.info;
    free(m.counts[0]); free(m.counts[1]);
    return RL_OK;
}

/* ---- loader ---------------------------------------------------------------- */

struct data_loader {
    int B, T, rank, world;
    uint64_t seed;
    data_info info;
    int nshards;
    rl_mapped_file *maps;      /* (nshards) */
    const uint8_t **tok;       /* (nshards) first id of each shard */
    long long *start;          /* (nshards + 1) stream offset of each shard */
    long long ntok;
    uint64_t nwin;             /* windows: (ntok - 1) / T */
    uint64_t batches;          /* per epoch: nwin / (B * world) */
    uint64_t epoch, batch;
    int *perm;                 /* (nwin) window order of this epoch; NULL when seed == 0 */
    uint64_t perm_epoch;
};

static void make_perm(data_loader *l) {
    if (!l->perm) return;
    for (uint64_t i = 0; i < l->nwin; i++) l->perm[i] = (int)i;
    rl_rng r;
    rl_rng_seed_stream(&r, l->seed, l->epoch);
    rl_rng_shuffle_int(&r, l->perm, (int)l->nwin);
    l->perm_epoch = l->epoch;
}

rl_status data_loader_open(data_loader **out, const char *dir, const char *split, int B, int T, int rank, int world, uint64_t seed) {
    *out = NULL;
    int k;
    if (!strcmp(split, "train")) k = 0;
    else if (!strcmp(split, "val")) k = 1;
    else return rl_fail(RL_EINVAL, "unknown split '%s' (use train or val)", split);
    if (B < 1 || T < 1 || world < 1 || rank < 0 || rank >= world)
        return rl_fail(RL_EINVAL, "bad loader shape B=%d T=%d rank=%d world=%d (need B, T >= 1 and 0 <= rank < world)", B, T, rank, world);
    manifest m;
    RL_TRY(read_manifest(dir, &m));
    data_loader *l = calloc(1, sizeof *l);
    rl_status st = RL_OK;
    if (!l) { st = rl_fail(RL_ENOMEM, "out of memory"); goto fail; }
    l->B = B; l->T = T; l->rank = rank; l->world = world; l->seed = seed; l->info = m.info;
    l->nshards = k ? m.info.val_shards : m.info.train_shards;
    l->ntok = k ? m.info.val_tokens : m.info.train_tokens;
    if (l->ntok < (long long)B * world * T + 1) {
        st = rl_fail(RL_EINVAL, "%s split of %s has %lld tokens; B*world*T + 1 = %lld are needed for one batch: use smaller B/T or more data",
                     split, dir, l->ntok, (long long)B * world * T + 1);
        goto fail;
    }
    l->maps = calloc((size_t)l->nshards, sizeof *l->maps);
    l->tok = calloc((size_t)l->nshards, sizeof *l->tok);
    l->start = calloc((size_t)l->nshards + 1, sizeof *l->start);
    if (!l->maps || !l->tok || !l->start) { st = rl_fail(RL_ENOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < l->nshards; i++) {
        char path[4096];
        shard_name(path, sizeof path, dir, split, i);
        st = rl_file_map(&l->maps[i], path, DATA_SHARD_MAGIC, SHARD_VERSION, SHARD_VERSION, "token shard");
        if (st != RL_OK) goto fail;
        rl_cursor c = rl_cursor_make(l->maps[i].payload, l->maps[i].info.payload_bytes);
        uint32_t tb = rl_cursor_u32(&c), vocab = rl_cursor_u32(&c), sid = rl_cursor_u32(&c), idx = rl_cursor_u32(&c);
        char ident[64];
        rl_cursor_read(&c, ident, 64);
        uint64_t pb = l->maps[i].info.payload_bytes;
        if (c.bad || tb != (uint32_t)m.info.token_bytes || vocab != (uint32_t)m.info.vocab_size || sid != (uint32_t)k || idx != (uint32_t)i ||
            memcmp(ident, m.info.identity, 64) || pb < SHARD_PREAMBLE || (pb - SHARD_PREAMBLE) != (uint64_t)m.counts[k][i] * tb) {
            st = rl_fail(RL_EFORMAT, "%s does not belong to %s/manifest.bin (other tokenizer, split or size): re-run 'rlhf data prepare' into an empty directory", path, dir);
            goto fail;
        }
        l->tok[i] = l->maps[i].payload + SHARD_PREAMBLE;
        l->start[i + 1] = l->start[i] + m.counts[k][i];
    }
    l->nwin = (uint64_t)((l->ntok - 1) / T);
    l->batches = l->nwin / ((uint64_t)B * (uint64_t)world);
    if (seed != 0) {
        if (l->nwin > (uint64_t)INT32_MAX) { st = rl_fail(RL_EINVAL, "%llu windows are too many to shuffle; use a larger T", (unsigned long long)l->nwin); goto fail; }
        l->perm = malloc(l->nwin * sizeof *l->perm);
        if (!l->perm) { st = rl_fail(RL_ENOMEM, "out of memory for a %llu-window permutation", (unsigned long long)l->nwin); goto fail; }
        make_perm(l);
    }
    free(m.counts[0]); free(m.counts[1]);
    *out = l;
    return RL_OK;
fail:
    free(m.counts[0]); free(m.counts[1]);
    data_loader_close(l);
    return st;
}

static inline int token_at(const data_loader *l, int shard, long long off) {
    const uint8_t *p = l->tok[shard];
    if (l->info.token_bytes == 2) return (int)(p[2 * off] | (unsigned)p[2 * off + 1] << 8);
    return (int)((uint32_t)p[4 * off] | (uint32_t)p[4 * off + 1] << 8 | (uint32_t)p[4 * off + 2] << 16 | (uint32_t)p[4 * off + 3] << 24);
}

rl_status data_loader_next(data_loader *l, int *tokens) {
    if (l->perm && l->perm_epoch != l->epoch) make_perm(l);
    for (int b = 0; b < l->B; b++) {
        uint64_t g = (l->batch * (uint64_t)l->B + (uint64_t)b) * (uint64_t)l->world + (uint64_t)l->rank;
        uint64_t w = l->perm ? (uint64_t)l->perm[g] : g;
        long long pos = (long long)w * l->T;
        /* shard holding pos: binary search over start[] */
        int lo = 0, hi = l->nshards - 1;
        while (lo < hi) { int mid = (lo + hi + 1) / 2; if (l->start[mid] <= pos) lo = mid; else hi = mid - 1; }
        int *row = tokens + (size_t)b * (size_t)(l->T + 1);  /* (T+1) */
        for (int t = 0; t <= l->T; t++, pos++) {
            while (pos >= l->start[lo + 1]) lo++;
            row[t] = token_at(l, lo, pos - l->start[lo]);
        }
    }
    if (++l->batch == l->batches) { l->batch = 0; l->epoch++; }
    return RL_OK;
}

void data_loader_reset(data_loader *l) { l->epoch = 0; l->batch = 0; }
int data_loader_vocab_size(const data_loader *l) { return l->info.vocab_size; }
long long data_loader_tokens(const data_loader *l) { return l->ntok; }
long long data_loader_batches_per_epoch(const data_loader *l) { return (long long)l->batches; }
void data_loader_identity(const data_loader *l, char out[65]) { memcpy(out, l->info.identity, 65); }

void data_loader_state(const data_loader *l, uint64_t st[4]) {
    st[0] = l->epoch; st[1] = l->batch; st[2] = l->seed; st[3] = l->nwin;
}

rl_status data_loader_set_state(data_loader *l, const uint64_t st[4]) {
    if (st[2] != l->seed || st[3] != l->nwin)
        return rl_fail(RL_EINVAL, "loader state was saved with seed %llu over %llu windows, but this loader has seed %llu over %llu windows (different data or shape?)",
                       (unsigned long long)st[2], (unsigned long long)st[3], (unsigned long long)l->seed, (unsigned long long)l->nwin);
    if (st[1] >= l->batches) return rl_fail(RL_EINVAL, "loader state batch %llu is past the %llu batches of an epoch", (unsigned long long)st[1], (unsigned long long)l->batches);
    l->epoch = st[0]; l->batch = st[1];
    return RL_OK;
}

void data_loader_close(data_loader *l) {
    if (!l) return;
    for (int i = 0; l->maps && i < l->nshards; i++) rl_file_unmap(&l->maps[i]);
    free(l->maps); free(l->tok); free(l->start); free(l->perm);
    free(l);
}

/* seal.c — see seal.h. Formats: docs/formats-secure.md; threat model:
 * docs/security.md. */
#include "seal.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIG_DOMAIN "rlhf.c signature v1"        /* + its NUL: 20 bytes */
#define SIG_DOMAIN_BYTES 20
#define SIG_ALG_ED25519PH 1u
#define SIG_SIGNED_PREFIX 56                   /* trailer bytes covered by the signature */
#define KEYCHECK_DOMAIN "rlhf.c key check v1"
#define IO_CHUNK (1u << 20)
#define SECRET_TEXT_MAX 4096

static const char SIG_MAGIC[8] = {'R', 'L', 'H', 'F', 'S', 'I', 'G', '1'};
static const char SIG_END[8] = {'R', 'L', 'H', 'F', 'S', 'E', 'N', 'D'};

static const char HDR_SECRET[] = "rlhf-ed25519-secret-key v1";
static const char HDR_PUBLIC[] = "rlhf-ed25519-public-key v1";
static const char HDR_SYM[] = "rlhf-secretstream-key v1";

/* ---- small helpers --------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = -1;
static void do_init(void) { init_rc = sodium_init() < 0 ? -1 : 0; }

rl_status rl_seal_init(void) {
    pthread_once(&init_once, do_init);
    return init_rc == 0 ? RL_OK : rl_fail(RL_EINTERNAL, "libsodium failed to initialise (no entropy source?)");
}

void rl_keys_wipe(void *p, size_t n) { if (p && n) sodium_memzero(p, n); }

void rl_keys_fingerprint(char id[17], const uint8_t pk[32]) {
    uint8_t h[32];
    crypto_generichash(h, sizeof h, pk, 32, NULL, 0);
    sodium_bin2hex(id, 17, h, 8);
}

/* Writes `text` to `path` atomically with mode 0600 from the first byte on
 * (O_EXCL temp file created 0600, so no window where it is readable). */
static rl_status write_secret_file(const char *path, const char *text, size_t n) {
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return rl_fail(RL_EINVAL, "%s: path too long", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return rl_fail(RL_EIO, "cannot create %s: %s", tmp, strerror(errno));
    rl_status s = RL_OK;
    if (fchmod(fd, 0600) != 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) != 0)
        s = rl_fail(RL_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && s == RL_OK) s = rl_fail(RL_EIO, "cannot close %s: %s", tmp, strerror(errno));
    if (s == RL_OK && rename(tmp, path) != 0) s = rl_fail(RL_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (s != RL_OK) unlink(tmp);
    return s;
}

/* Reads a secret file into sodium memory; refuses loose permissions. */
static rl_status read_secret_file(const char *path, const char *what, char **out, size_t *n) {
    *out = NULL; *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return rl_fail(e == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open %s: %s", path, what, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) { int e = errno; close(fd); return rl_fail(RL_EIO, "%s: %s", path, strerror(e)); }
    if (!S_ISREG(st.st_mode)) { close(fd); return rl_fail(RL_EINVAL, "%s: %s is not a regular file", path, what); }
    if (st.st_mode & 077) {
        close(fd);
        return rl_fail(RL_EAUTH, "%s: %s has permissions %04o, so other users can read or change it; refusing to use it. "
                       "Run 'chmod 600 %s' (and consider the key compromised if others could read it)",
                       path, what, (unsigned)(st.st_mode & 07777), path);
    }
    if (st.st_size > SECRET_TEXT_MAX) { close(fd); return rl_fail(RL_EFORMAT, "%s: %s is %lld bytes, more than %d: wrong file?", path, what, (long long)st.st_size, SECRET_TEXT_MAX); }
    char *buf = sodium_malloc(SECRET_TEXT_MAX + 1);
    if (!buf) { close(fd); return rl_fail(RL_ENOMEM, "out of (locked) memory for a secret"); }
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, SECRET_TEXT_MAX - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { int e = errno; close(fd); sodium_free(buf); return rl_fail(RL_EIO, "%s: cannot read: %s", path, strerror(e)); }
        if (r == 0) break;
        got += (size_t)r;
        if (got == SECRET_TEXT_MAX) break;
    }
    close(fd);
    buf[got] = 0;
    *out = buf; *n = got;
    return RL_OK;
}

/* Parses "<header line>\n[# comments\n]<hex>\n" into `bin` (exactly `nbin` bytes). */
static rl_status parse_key_text(const char *text, size_t n, const char *header, uint8_t *bin, size_t nbin,
                                const char *path, const char *what) {
    size_t hl = strlen(header);
    if (n < hl || memcmp(text, header, hl) != 0 || (n > hl && text[hl] != '\n' && text[hl] != '\r'))
        return rl_fail(RL_EFORMAT, "%s: not an rlhf.c %s (first line should be '%s'); pass the right file", path, what, header);
    const char *p = text + hl, *end = text + n;
    while (p < end) {
        while (p < end && (*p == '\n' || *p == '\r')) p++;
        if (p < end && *p == '#') { while (p < end && *p != '\n') p++; continue; }
        break;
    }
    const char *q = p;
    while (q < end && *q != '\n' && *q != '\r') q++;
    size_t got = 0;
    if ((size_t)(q - p) != 2 * nbin || sodium_hex2bin(bin, nbin, p, (size_t)(q - p), NULL, &got, NULL) != 0 || got != nbin) {
        rl_keys_wipe(bin, nbin);
        return rl_fail(RL_EFORMAT, "%s: %s is damaged (expected %zu hex digits after the first line)", path, what, 2 * nbin);
    }
    return RL_OK;
}

/* ---- keys ------------------------------------------------------------------- */

static int exists(const char *p) { struct stat st; return lstat(p, &st) == 0; }

rl_status rl_keys_generate(const char *dir, int with_enc_key, int force, char id_out[17]) {
    RL_TRY(rl_seal_init());
    {   /* mkdir -p, new directories owner-only */
        char d[PATH_MAX];
        if ((size_t)snprintf(d, sizeof d, "%s", dir) >= sizeof d) return rl_fail(RL_EINVAL, "%s: path too long", dir);
        for (char *q = d + 1; ; q++) {
            if (*q == '/' || *q == 0) {
                char c = *q;
                *q = 0;
                if (mkdir(d, 0700) != 0 && errno != EEXIST) return rl_fail(RL_EIO, "cannot create key directory %s: %s", d, strerror(errno));
                *q = c;
                if (!c) break;
            }
        }
    }
    char psk[PATH_MAX], ppk[PATH_MAX], penc[PATH_MAX];
    if ((size_t)snprintf(psk, sizeof psk, "%s/sign.key", dir) >= sizeof psk ||
        (size_t)snprintf(ppk, sizeof ppk, "%s/sign.pub", dir) >= sizeof ppk ||
        (size_t)snprintf(penc, sizeof penc, "%s/enc.key", dir) >= sizeof penc)
        return rl_fail(RL_EINVAL, "%s: key directory path too long", dir);
    if (!force) {
        const char *which = exists(psk) ? psk : exists(ppk) ? ppk : (with_enc_key && exists(penc)) ? penc : NULL;
        if (which)
            return rl_fail(RL_EINVAL, "%s already exists; refusing to overwrite a key (files signed or encrypted with it would "
                           "become unusable). Pass --force to replace it, or choose another --out", which);
    }
    uint8_t seed[32], pk[32], sk[64];
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    char id[17];
    rl_keys_fingerprint(id, pk);
    char *text = sodium_malloc(512);
    if (!text) { rl_keys_wipe(seed, 32); rl_keys_wipe(sk, 64); return rl_fail(RL_ENOMEM, "out of memory"); }
    char hex[129];
    sodium_bin2hex(hex, sizeof hex, seed, 32);
    int len = snprintf(text, 512, "%s\n# fingerprint %s; keep this file secret (mode 0600)\n%s\n", HDR_SECRET, id, hex);
    rl_status s = write_secret_file(psk, text, (size_t)len);
    rl_keys_wipe(hex, sizeof hex);
    rl_keys_wipe(seed, 32);
    rl_keys_wipe(sk, 64);
    if (s == RL_OK) {
        sodium_bin2hex(hex, sizeof hex, pk, 32);
        len = snprintf(text, 512, "%s\n# fingerprint %s\n%s\n", HDR_PUBLIC, id, hex);
        s = rl_atomic_write(ppk, text, (size_t)len);
    }
    if (s == RL_OK && with_enc_key) {
        uint8_t k[32];
        randombytes_buf(k, sizeof k);
        sodium_bin2hex(hex, sizeof hex, k, 32);
        len = snprintf(text, 512, "%s\n# symmetric key for 'rlhf file encrypt --key-file'; keep secret (mode 0600)\n%s\n", HDR_SYM, hex);
        s = write_secret_file(penc, text, (size_t)len);
        rl_keys_wipe(k, 32);
        rl_keys_wipe(hex, sizeof hex);
    }
    sodium_free(text);
    if (s == RL_OK && id_out) memcpy(id_out, id, 17);
    return s;
}

rl_status rl_keys_load_secret(rl_keys_secret *key, const char *path) {
    memset(key, 0, sizeof *key);
    RL_TRY(rl_seal_init());
    char *text; size_t n;
    RL_TRY(read_secret_file(path, "secret signing key file", &text, &n));
    uint8_t seed[32];
    rl_status s = parse_key_text(text, n, HDR_SECRET, seed, 32, path, "secret signing key file");
    sodium_free(text);
    if (s != RL_OK) return s;
    crypto_sign_seed_keypair(key->pub.pk, key->sk, seed);
    rl_keys_wipe(seed, 32);
    rl_keys_fingerprint(key->pub.id, key->pub.pk);
    return RL_OK;
}

rl_status rl_keys_load_public(rl_keys_pub *pub, const char *path) {
    memset(pub, 0, sizeof *pub);
    RL_TRY(rl_seal_init());
    FILE *fp = fopen(path, "rb");
    if (!fp) return rl_fail(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open public key file: %s", path, strerror(errno));
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    if (n >= strlen(HDR_SECRET) && !memcmp(buf, HDR_SECRET, strlen(HDR_SECRET)))
        return rl_fail(RL_EINVAL, "%s: this is a SECRET key; pass the public key (sign.pub) to verify", path);
    RL_TRY(parse_key_text(buf, n, HDR_PUBLIC, pub->pk, 32, path, "public key file"));
    rl_keys_fingerprint(pub->id, pub->pk);
    return RL_OK;
}

rl_status rl_keys_load_symmetric(uint8_t key[32], const char *path) {
    RL_TRY(rl_seal_init());
    char *text; size_t n;
    RL_TRY(read_secret_file(path, "encryption key file", &text, &n));
    rl_status s = RL_OK;
    if (n == 32 && memcmp(text, HDR_SYM, 8) != 0) memcpy(key, text, 32);   /* 32 raw bytes */
    else s = parse_key_text(text, n, HDR_SYM, key, 32, path, "encryption key file");
    sodium_free(text);
    return s;
}

rl_status rl_keys_read_secret_text(char **text, size_t *n, const char *path) {
    RL_TRY(rl_seal_init());
    RL_TRY(read_secret_file(path, "passphrase file", text, n));
    if (*n > 0 && (*text)[*n - 1] == '\n') (*text)[--*n] = 0;
    if (*n > 0 && (*text)[*n - 1] == '\r') (*text)[--*n] = 0;
    return RL_OK;
}

void rl_keys_free_secret_text(char *text) { if (text) sodium_free(text); }

/* ---- signing ---------------------------------------------------------------- */

struct rl_seal_writer {
    rl_atomic_file af;
    rl_file_info info;
    uint32_t crc;
    uint64_t written;
    int sign;
    crypto_sign_state st;
    rl_keys_secret key;
};

static void free_writer(rl_seal_writer *w) {
    rl_keys_wipe(&w->key, sizeof w->key);
    free(w);
}

rl_status rl_seal_writer_open(rl_seal_writer **out, const char *path, const char magic[8], uint32_t version,
                              uint32_t flags, const rl_keys_secret *key) {
    *out = NULL;
    RL_TRY(rl_seal_init());
    rl_seal_writer *w = calloc(1, sizeof *w);
    if (!w) return rl_fail(RL_ENOMEM, "out of memory");
    memcpy(w->info.magic, magic, 8);
    w->info.version = version;
    w->info.header_bytes = RL_FILE_HEADER_BYTES;
    w->info.flags = flags;
    if (key) {
        w->sign = 1;
        w->key = *key;
        w->info.trailer_bytes = RL_SEAL_TRAILER_BYTES;
        crypto_sign_init(&w->st);
        crypto_sign_update(&w->st, (const uint8_t *)SIG_DOMAIN, SIG_DOMAIN_BYTES);
    }
    rl_status s = rl_atomic_open(&w->af, path);
    if (s != RL_OK) { free_writer(w); return s; }
    uint8_t h[RL_FILE_HEADER_BYTES] = {0};   /* placeholder, written on commit */
    if (fwrite(h, 1, sizeof h, w->af.fp) != sizeof h) {
        s = rl_fail(RL_EIO, "cannot write %s: %s", w->af.tmp_path, strerror(errno));
        rl_seal_writer_abort(w);
        return s;
    }
    *out = w;
    return RL_OK;
}

rl_status rl_seal_writer_write(rl_seal_writer *w, const void *data, size_t n) {
    if (n == 0) return RL_OK;
    if (fwrite(data, 1, n, w->af.fp) != n)
        return rl_fail(RL_EIO, "cannot write %s: %s (disk full?)", w->af.tmp_path, strerror(errno));
    w->crc = rl_crc32(w->crc, data, n);
    if (w->sign) crypto_sign_update(&w->st, data, n);
    w->written += n;
    return RL_OK;
}

uint64_t rl_seal_writer_tell(const rl_seal_writer *w) { return w->written; }

rl_status rl_seal_writer_sink(void *w, const void *data, size_t n) { return rl_seal_writer_write(w, data, n); }

static void trailer_prefix(uint8_t t[RL_SEAL_TRAILER_BYTES], const uint8_t pk[32]) {
    memset(t, 0, RL_SEAL_TRAILER_BYTES);
    memcpy(t, SIG_MAGIC, 8);
    put_u32(t + 8, 1);
    put_u32(t + 12, RL_SEAL_TRAILER_BYTES);
    put_u32(t + 16, SIG_ALG_ED25519PH);
    memcpy(t + 24, pk, 32);
    memcpy(t + 120, SIG_END, 8);
}

rl_status rl_seal_writer_commit(rl_seal_writer *w) {
    w->info.payload_bytes = w->written;
    w->info.payload_crc = w->crc;
    uint8_t h[RL_FILE_HEADER_BYTES];
    rl_file_header_encode(h, &w->info);
    rl_status s = RL_OK;
    if (w->sign) {
        uint8_t t[RL_SEAL_TRAILER_BYTES];
        trailer_prefix(t, w->key.pub.pk);
        crypto_sign_update(&w->st, h, sizeof h);
        crypto_sign_update(&w->st, t, SIG_SIGNED_PREFIX);
        crypto_sign_final_create(&w->st, t + 56, NULL, w->key.sk);
        if (fwrite(t, 1, sizeof t, w->af.fp) != sizeof t)
            s = rl_fail(RL_EIO, "cannot write signature of %s: %s", w->af.tmp_path, strerror(errno));
    }
    if (s == RL_OK && (fseek(w->af.fp, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->af.fp) != sizeof h))
        s = rl_fail(RL_EIO, "cannot write header of %s: %s", w->af.tmp_path, strerror(errno));
    if (s == RL_OK) s = rl_atomic_commit(&w->af);
    else rl_atomic_abort(&w->af);
    free_writer(w);
    return s;
}

void rl_seal_writer_abort(rl_seal_writer *w) {
    if (!w) return;
    rl_atomic_abort(&w->af);
    free_writer(w);
}

/* Maps a whole file read-only. */
static rl_status map_whole(const char *path, const char *what, uint8_t **img, size_t *size) {
    *img = NULL; *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { int e = errno; return rl_fail(e == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open %s: %s", path, what, strerror(e)); }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return rl_fail(RL_EINVAL, "%s: not a regular file", path); }
    if (st.st_size == 0) { close(fd); return rl_fail(RL_EFORMAT, "%s: empty file (expected %s)", path, what); }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return rl_fail(RL_EIO, "%s: cannot map: %s", path, strerror(errno));
    *img = m; *size = (size_t)st.st_size;
    return RL_OK;
}

rl_status rl_seal_sign_file(const char *in, const char *out, const rl_keys_secret *key) {
    uint8_t *img; size_t size;
    RL_TRY(map_whole(in, "an rlhf.c binary file", &img, &size));
    rl_file_info info;
    rl_status s = rl_file_header_decode(&info, img, size, in);
    if (s == RL_OK && !memcmp(info.magic, RL_SEAL_ENC_MAGIC, 8))
        s = rl_fail(RL_EINVAL, "%s: file is encrypted; sign the plaintext file first, then encrypt it (docs/security.md)", in);
    if (s == RL_OK) {
        char magic[8];
        memcpy(magic, info.magic, 8);
        s = rl_file_check(&info, img, size, in, magic, info.version, info.version, "rlhf.c");
    }
    if (s == RL_OK && info.trailer_bytes != 0 && info.trailer_bytes != RL_SEAL_TRAILER_BYTES)
        s = rl_fail(RL_EFORMAT, "%s: unknown %u-byte trailer; refusing to re-sign", in, info.trailer_bytes);
    rl_seal_writer *w = NULL;
    if (s == RL_OK) s = rl_seal_writer_open(&w, out, info.magic, info.version, info.flags, key);
    if (s == RL_OK) {
        /* feed in 64 MiB pieces: keeps rl_crc32/fwrite calls bounded */
        const uint8_t *p = img + RL_FILE_HEADER_BYTES;
        uint64_t left = info.payload_bytes;
        while (s == RL_OK && left > 0) {
            size_t k = left > (64u << 20) ? (64u << 20) : (size_t)left;
            s = rl_seal_writer_write(w, p, k);
            p += k; left -= k;
        }
        if (s == RL_OK) s = rl_seal_writer_commit(w);
        else rl_seal_writer_abort(w);
    }
    munmap(img, size);
    return s;
}

/* The checks and the signature computation shared by the streamed and the
 * in-memory verifier. `feed` hashes the payload into `st`. */
typedef rl_status (*payload_feed)(void *ctx, crypto_sign_state *st);

static rl_status verify_core(const uint8_t h[RL_FILE_HEADER_BYTES], uint64_t size, const char *path,
                             const uint8_t *trailer_or_null, const rl_keys_pub *pub, rl_seal_sig_info *info,
                             payload_feed feed, void *ctx, rl_file_info *fi) {
    RL_TRY(rl_file_header_decode(fi, h, size < RL_FILE_HEADER_BYTES ? (size_t)size : RL_FILE_HEADER_BYTES, path));
    if (fi->trailer_bytes == 0)
        return rl_fail(RL_EAUTH, "%s: file is not signed, and a signature is required%s%s; sign it with 'rlhf file sign', "
                       "or load it without --verify-key / RLHF_VERIFY_KEY if you trust it",
                       path, pub ? " by key " : "", pub ? pub->id : "");
    if (fi->trailer_bytes != RL_SEAL_TRAILER_BYTES)
        return rl_fail(RL_EFORMAT, "%s: header announces a %u-byte trailer, not a %d-byte signature trailer; corrupt or from a newer rlhf.c",
                       path, fi->trailer_bytes, RL_SEAL_TRAILER_BYTES);
    uint64_t body = size - RL_FILE_HEADER_BYTES;
    if (fi->payload_bytes > body || body - fi->payload_bytes != RL_SEAL_TRAILER_BYTES)
        return rl_fail(RL_EFORMAT, "%s: file has %llu bytes after its header but should have %llu (payload) + %d (signature); it is truncated or was appended to",
                       path, (unsigned long long)body, (unsigned long long)fi->payload_bytes, RL_SEAL_TRAILER_BYTES);
    const uint8_t *t = trailer_or_null;
    if (memcmp(t, SIG_MAGIC, 8) != 0 || get_u32(t + 8) != 1 || get_u32(t + 12) != RL_SEAL_TRAILER_BYTES ||
        get_u32(t + 16) != SIG_ALG_ED25519PH || get_u32(t + 20) != 0 || memcmp(t + 120, SIG_END, 8) != 0)
        return rl_fail(RL_EAUTH, "%s: signature trailer is damaged or of an unknown kind; the file was modified after signing, or is truncated", path);
    rl_seal_sig_info si;
    si.is_signed = 1;
    memcpy(si.signer.pk, t + 24, 32);
    rl_keys_fingerprint(si.signer.id, si.signer.pk);
    if (info) *info = si;
    if (pub && sodium_memcmp(pub->pk, si.signer.pk, 32) != 0)
        return rl_fail(RL_EAUTH, "%s: signed by key %s, not by the trusted key %s; refusing it (wrong --verify-key, or an untrusted file)",
                       path, si.signer.id, pub->id);
    crypto_sign_state st;
    crypto_sign_init(&st);
    crypto_sign_update(&st, (const uint8_t *)SIG_DOMAIN, SIG_DOMAIN_BYTES);
    RL_TRY(feed(ctx, &st));
    crypto_sign_update(&st, h, RL_FILE_HEADER_BYTES);
    crypto_sign_update(&st, t, SIG_SIGNED_PREFIX);
    if (crypto_sign_final_verify(&st, t + 56, si.signer.pk) != 0)
        return rl_fail(RL_EAUTH, "%s: signature does not match the contents: the file was modified after it was signed "
                       "(tampered or corrupted); do not use it", path);
    return RL_OK;
}

typedef struct { const uint8_t *p; uint64_t n; } image_ctx;
static rl_status feed_image(void *vctx, crypto_sign_state *st) {
    image_ctx *c = vctx;
    const uint8_t *p = c->p;
    uint64_t left = c->n;
    while (left > 0) {
        size_t k = left > (64u << 20) ? (64u << 20) : (size_t)left;
        crypto_sign_update(st, p, k);
        p += k; left -= k;
    }
    return RL_OK;
}

rl_status rl_seal_verify_image(const void *imgv, size_t size, const char *path, const rl_keys_pub *pub, rl_seal_sig_info *info) {
    RL_TRY(rl_seal_init());
    const uint8_t *img = imgv;
    if (info) memset(info, 0, sizeof *info);
    if (size < RL_FILE_HEADER_BYTES)
        return rl_fail(RL_EFORMAT, "%s: %zu bytes is shorter than an rlhf.c header; truncated or not an rlhf.c file", path, size);
    rl_file_info fi;
    RL_TRY(rl_file_header_decode(&fi, img, size, path));
    if (fi.trailer_bytes == RL_SEAL_TRAILER_BYTES && size - RL_FILE_HEADER_BYTES < RL_SEAL_TRAILER_BYTES)
        return rl_fail(RL_EFORMAT, "%s: truncated (no room for its signature trailer)", path);
    const uint8_t *t = fi.trailer_bytes == RL_SEAL_TRAILER_BYTES ? img + size - RL_SEAL_TRAILER_BYTES : NULL;
    image_ctx c = {img + RL_FILE_HEADER_BYTES, fi.payload_bytes};
    /* t is NULL only when trailer_bytes != 128, which verify_core rejects before reading it */
    return verify_core(img, size, path, t, pub, info, feed_image, &c, &fi);
}

typedef struct { int fd; uint64_t n; uint8_t *buf; const char *path; } file_ctx;
static rl_status feed_file(void *vctx, crypto_sign_state *st) {
    file_ctx *c = vctx;
    uint64_t off = RL_FILE_HEADER_BYTES, left = c->n;
    while (left > 0) {
        size_t k = left > IO_CHUNK ? IO_CHUNK : (size_t)left;
        ssize_t r = pread(c->fd, c->buf, k, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return rl_fail(RL_EFORMAT, "%s: cannot read payload at byte %llu: %s", c->path, (unsigned long long)off,
                                   r == 0 ? "file shrank while being verified" : strerror(errno));
        crypto_sign_update(st, c->buf, (size_t)r);
        off += (uint64_t)r; left -= (uint64_t)r;
    }
    return RL_OK;
}

rl_status rl_seal_verify_file(const char *path, const rl_keys_pub *pub, rl_seal_sig_info *info) {
    RL_TRY(rl_seal_init());
    if (info) memset(info, 0, sizeof *info);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { int e = errno; return rl_fail(e == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open: %s", path, strerror(e)); }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return rl_fail(RL_EINVAL, "%s: not a regular file", path); }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t h[RL_FILE_HEADER_BYTES] = {0}, t[RL_SEAL_TRAILER_BYTES] = {0};
    rl_status s = RL_OK;
    if (size < RL_FILE_HEADER_BYTES || pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
        s = rl_fail(RL_EFORMAT, "%s: %llu bytes is shorter than an rlhf.c header; truncated or not an rlhf.c file", path, (unsigned long long)size);
    rl_file_info fi;
    if (s == RL_OK) s = rl_file_header_decode(&fi, h, sizeof h, path);
    if (s == RL_OK && fi.trailer_bytes == RL_SEAL_TRAILER_BYTES) {
        if (size < RL_FILE_HEADER_BYTES + RL_SEAL_TRAILER_BYTES ||
            pread(fd, t, sizeof t, (off_t)(size - RL_SEAL_TRAILER_BYTES)) != (ssize_t)sizeof t)
            s = rl_fail(RL_EFORMAT, "%s: truncated (no room for its signature trailer)", path);
    }
    uint8_t *buf = NULL;
    if (s == RL_OK && !(buf = malloc(IO_CHUNK))) s = rl_fail(RL_ENOMEM, "out of memory");
    if (s == RL_OK) {
        file_ctx c = {fd, fi.payload_bytes, buf, path};
        s = verify_core(h, size, path, t, pub, info, feed_file, &c, &fi);
    }
    free(buf);
    close(fd);
    return s;
}

/* ---- encryption ------------------------------------------------------------- */

rl_status rl_seal_secret_from_passphrase(rl_seal_secret *s, const char *pw, size_t n) {
    memset(s, 0, sizeof *s);
    RL_TRY(rl_seal_init());
    if (n == 0) return rl_fail(RL_EINVAL, "empty passphrase");
    if (n > SECRET_TEXT_MAX) return rl_fail(RL_EINVAL, "passphrase longer than %d bytes", SECRET_TEXT_MAX);
    s->passphrase = sodium_malloc(n + 1);
    if (!s->passphrase) return rl_fail(RL_ENOMEM, "out of (locked) memory for a passphrase");
    memcpy(s->passphrase, pw, n);
    s->passphrase[n] = 0;
    s->passphrase_len = n;
    s->kdf = RL_SEAL_KDF_ARGON2ID;
    s->opslimit = RL_SEAL_DEFAULT_OPSLIMIT;
    s->memlimit = RL_SEAL_DEFAULT_MEMLIMIT;
    return RL_OK;
}

rl_status rl_seal_secret_from_key_file(rl_seal_secret *s, const char *path) {
    memset(s, 0, sizeof *s);
    RL_TRY(rl_keys_load_symmetric(s->key, path));
    s->kdf = RL_SEAL_KDF_NONE;
    return RL_OK;
}

rl_status rl_seal_secret_from_env(rl_seal_secret *s, const char *var) {
    memset(s, 0, sizeof *s);
    const char *v = getenv(var);
    if (!v || !*v) return rl_fail(RL_ENOTFOUND, "environment variable %s is not set or empty (it should hold the passphrase)", var);
    return rl_seal_secret_from_passphrase(s, v, strlen(v));
}

rl_status rl_seal_secret_from_passphrase_file(rl_seal_secret *s, const char *path) {
    memset(s, 0, sizeof *s);
    char *text; size_t n;
    RL_TRY(rl_keys_read_secret_text(&text, &n, path));
    rl_status st = n ? rl_seal_secret_from_passphrase(s, text, n) : rl_fail(RL_EINVAL, "%s: passphrase file is empty", path);
    sodium_free(text);
    return st;
}

void rl_seal_secret_free(rl_seal_secret *s) {
    if (s->passphrase) sodium_free(s->passphrase);
    rl_keys_wipe(s, sizeof *s);
}

/* The 96-byte encryption header (docs/formats-secure.md). */
typedef struct {
    uint32_t version, kdf, chunk_bytes;
    uint64_t plaintext_bytes, opslimit, memlimit;
    uint8_t salt[16];
    uint8_t ss_header[24];
    uint8_t key_check[16];
} enc_header;

static void enc_encode(uint8_t b[RL_SEAL_ENC_HEADER_BYTES], const enc_header *e) {
    memset(b, 0, RL_SEAL_ENC_HEADER_BYTES);
    put_u32(b, e->version);
    put_u32(b + 4, e->kdf);
    put_u32(b + 8, e->chunk_bytes);
    put_u64(b + 16, e->plaintext_bytes);
    put_u64(b + 24, e->opslimit);
    put_u64(b + 32, e->memlimit);
    memcpy(b + 40, e->salt, 16);
    memcpy(b + 56, e->ss_header, 24);
    memcpy(b + 80, e->key_check, 16);
}

static rl_status enc_decode(enc_header *e, const uint8_t *b, const char *path) {
    e->version = get_u32(b);
    e->kdf = get_u32(b + 4);
    e->chunk_bytes = get_u32(b + 8);
    e->plaintext_bytes = get_u64(b + 16);
    e->opslimit = get_u64(b + 24);
    e->memlimit = get_u64(b + 32);
    memcpy(e->salt, b + 40, 16);
    memcpy(e->ss_header, b + 56, 24);
    memcpy(e->key_check, b + 80, 16);
    if (e->version != RL_SEAL_ENC_VERSION)
        return rl_fail(RL_EFORMAT, "%s: encryption format version %u is not supported (this build reads 1); upgrade rlhf.c", path, e->version);
    if (e->kdf != RL_SEAL_KDF_NONE && e->kdf != RL_SEAL_KDF_ARGON2ID)
        return rl_fail(RL_EFORMAT, "%s: unknown key derivation %u; corrupt or from a newer rlhf.c", path, e->kdf);
    if (e->chunk_bytes < 4096 || e->chunk_bytes > (64u << 20) || get_u32(b + 12) != 0)
        return rl_fail(RL_EFORMAT, "%s: encryption header is corrupt (chunk size %u)", path, e->chunk_bytes);
    /* Untrusted until the key check: bound the Argon2id cost a file can demand. */
    if (e->kdf == RL_SEAL_KDF_ARGON2ID &&
        (e->opslimit < crypto_pwhash_OPSLIMIT_MIN || e->opslimit > 64 ||
         e->memlimit < crypto_pwhash_MEMLIMIT_MIN || e->memlimit > (4ull << 30)))
        return rl_fail(RL_EFORMAT, "%s: Argon2id parameters (ops %llu, memory %llu bytes) are out of the accepted range "
                       "(ops 1..64, memory 8 KiB..4 GiB); corrupt file", path,
                       (unsigned long long)e->opslimit, (unsigned long long)e->memlimit);
    return RL_OK;
}

/* The stream key: the key file's key, or Argon2id(passphrase, salt). */
static rl_status derive_key(uint8_t k[32], const rl_seal_secret *s, const enc_header *e, const char *path) {
    if (e->kdf != (uint32_t)s->kdf)
        return rl_fail(RL_EAUTH, "%s: file was encrypted with %s, but a %s was given", path,
                       e->kdf == RL_SEAL_KDF_ARGON2ID ? "a passphrase" : "a key file",
                       s->kdf == RL_SEAL_KDF_ARGON2ID ? "passphrase" : "key file");
    if (e->kdf == RL_SEAL_KDF_NONE) { memcpy(k, s->key, 32); return RL_OK; }
    if (crypto_pwhash(k, 32, s->passphrase, s->passphrase_len, e->salt, e->opslimit, (size_t)e->memlimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return rl_fail(RL_ENOMEM, "%s: Argon2id could not get %llu MiB of memory", path, (unsigned long long)(e->memlimit >> 20));
    return RL_OK;
}

static void key_check(uint8_t out[16], const uint8_t k[32], const uint8_t hdr[RL_SEAL_ENC_HEADER_BYTES]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, k, 32, 16);
    crypto_generichash_update(&st, (const uint8_t *)KEYCHECK_DOMAIN, sizeof KEYCHECK_DOMAIN);
    crypto_generichash_update(&st, hdr, 80);  /* everything before the key check itself */
    crypto_generichash_final(&st, out, 16);
}

rl_status rl_seal_encrypt_file(const char *in, const char *out, const rl_seal_secret *s) {
    RL_TRY(rl_seal_init());
    if (s->kdf != RL_SEAL_KDF_NONE && s->kdf != RL_SEAL_KDF_ARGON2ID) return rl_fail(RL_EINVAL, "no encryption key given");
    FILE *fp = fopen(in, "rb");
    if (!fp) return rl_fail(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open: %s", in, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) { fclose(fp); return rl_fail(RL_EINVAL, "%s: not a regular file", in); }
    enc_header e = {0};
    e.version = RL_SEAL_ENC_VERSION;
    e.kdf = (uint32_t)s->kdf;
    e.chunk_bytes = RL_SEAL_CHUNK_BYTES;
    e.plaintext_bytes = (uint64_t)st.st_size;
    if (s->kdf == RL_SEAL_KDF_ARGON2ID) {
        e.opslimit = s->opslimit ? s->opslimit : RL_SEAL_DEFAULT_OPSLIMIT;
        e.memlimit = s->memlimit ? s->memlimit : RL_SEAL_DEFAULT_MEMLIMIT;
        if (e.opslimit < crypto_pwhash_OPSLIMIT_MIN || e.opslimit > 64 || e.memlimit < crypto_pwhash_MEMLIMIT_MIN || e.memlimit > (4ull << 30)) {
            fclose(fp);
            return rl_fail(RL_EINVAL, "Argon2id parameters out of range (ops 1..64, memory 8 KiB..4 GiB)");
        }
        randombytes_buf(e.salt, sizeof e.salt);
    }
    uint8_t k[32];
    rl_status rs = derive_key(k, s, &e, in);
    if (rs != RL_OK) { fclose(fp); return rs; }
    crypto_secretstream_xchacha20poly1305_state ss;
    crypto_secretstream_xchacha20poly1305_init_push(&ss, e.ss_header, k);
    uint8_t hdr[RL_SEAL_ENC_HEADER_BYTES];
    enc_encode(hdr, &e);
    key_check(e.key_check, k, hdr);
    enc_encode(hdr, &e);
    rl_keys_wipe(k, sizeof k);

    uint8_t *pt = malloc(RL_SEAL_CHUNK_BYTES), *ct = malloc(RL_SEAL_CHUNK_BYTES + crypto_secretstream_xchacha20poly1305_ABYTES);
    rl_writer *w = NULL;
    if (!pt || !ct) rs = rl_fail(RL_ENOMEM, "out of memory");
    if (rs == RL_OK) rs = rl_writer_open(&w, out, RL_SEAL_ENC_MAGIC, RL_SEAL_ENC_VERSION, 0);
    if (rs == RL_OK) rs = rl_writer_write(w, hdr, sizeof hdr);
    uint64_t left = e.plaintext_bytes;
    int first = 1;
    while (rs == RL_OK) {
        size_t n = left > RL_SEAL_CHUNK_BYTES ? RL_SEAL_CHUNK_BYTES : (size_t)left;
        if (n && fread(pt, 1, n, fp) != n) { rs = rl_fail(RL_EIO, "%s: read failed or the file shrank while being encrypted", in); break; }
        left -= n;
        uint8_t tag = left == 0 ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0;
        unsigned long long clen;
        crypto_secretstream_xchacha20poly1305_push(&ss, ct, &clen, pt, n, first ? hdr : NULL, first ? sizeof hdr : 0, tag);
        first = 0;
        rs = rl_writer_write(w, ct, (size_t)clen);
        if (left == 0) break;
    }
    if (rs == RL_OK && fgetc(fp) != EOF) rs = rl_fail(RL_EIO, "%s: the file grew while being encrypted; try again", in);
    fclose(fp);
    if (pt) rl_keys_wipe(pt, RL_SEAL_CHUNK_BYTES);
    free(pt); free(ct);
    rl_keys_wipe(&ss, sizeof ss);
    if (w) {
        if (rs == RL_OK) rs = rl_writer_commit(w);
        else rl_writer_abort(w);
    }
    return rs;
}

/* Where decrypted chunks go. */
typedef struct {
    FILE *fp;          /* to a file ... */
    uint8_t *mem;      /* ... or into memory */
    uint64_t off;
    const char *path;
} sink;

static rl_status decrypt_core(const char *in, const rl_seal_secret *s, enc_header *e_out,
                              rl_status (*prepare)(void *, uint64_t), void *pctx, sink *out) {
    RL_TRY(rl_seal_init());
    rl_mapped_file m;
    RL_TRY(rl_file_map(&m, in, RL_SEAL_ENC_MAGIC, RL_SEAL_ENC_VERSION, RL_SEAL_ENC_VERSION, "encrypted"));
    rl_status rs = RL_OK;
    enc_header e = {0};
    const uint64_t AB = crypto_secretstream_xchacha20poly1305_ABYTES;
    /* The outer header is not covered by the AEAD (it holds the ciphertext's
     * CRC), so every field of it that could carry meaning must be fixed. */
    static const uint8_t zeros[20] = {0};
    if (m.info.trailer_bytes != 0 || m.info.flags != 0 || memcmp((const uint8_t *)m.map + 36, zeros, 20) != 0)
        rs = rl_fail(RL_EFORMAT, "%s: encrypted file header has unexpected flags, trailer or reserved bytes; it was modified", in);
    if (rs == RL_OK && m.info.payload_bytes < RL_SEAL_ENC_HEADER_BYTES)
        rs = rl_fail(RL_EFORMAT, "%s: encrypted file is truncated (no encryption header)", in);
    if (rs == RL_OK) rs = enc_decode(&e, m.payload, in);
    uint64_t nchunks = 0;
    if (rs == RL_OK) {
        uint64_t body = m.info.payload_bytes - RL_SEAL_ENC_HEADER_BYTES;
        nchunks = e.plaintext_bytes == 0 ? 1 : (e.plaintext_bytes + e.chunk_bytes - 1) / e.chunk_bytes;
        /* plaintext <= body is checked first, so nchunks*AB cannot overflow */
        if (e.plaintext_bytes > body || nchunks > body / AB || body != e.plaintext_bytes + nchunks * AB)
            rs = rl_fail(RL_EFORMAT, "%s: encrypted file should hold %llu plaintext bytes in %llu chunks but its size does not match; "
                         "it is truncated or was appended to", in, (unsigned long long)e.plaintext_bytes, (unsigned long long)nchunks);
    }
    uint8_t k[32] = {0};
    if (rs == RL_OK) rs = derive_key(k, s, &e, in);
    if (rs == RL_OK) {
        uint8_t want[16];
        key_check(want, k, m.payload);
        if (sodium_memcmp(want, e.key_check, 16) != 0)
            rs = rl_fail(RL_EAUTH, "%s: wrong %s (or the file's encryption header was modified); nothing was decrypted", in,
                         e.kdf == RL_SEAL_KDF_ARGON2ID ? "passphrase" : "key");
    }
    if (rs == RL_OK && prepare) rs = prepare(pctx, e.plaintext_bytes);
    crypto_secretstream_xchacha20poly1305_state ss;
    if (rs == RL_OK && crypto_secretstream_xchacha20poly1305_init_pull(&ss, e.ss_header, k) != 0)
        rs = rl_fail(RL_EAUTH, "%s: invalid stream header; the file was modified", in);
    rl_keys_wipe(k, sizeof k);
    uint8_t *buf = NULL;
    if (rs == RL_OK && out->fp && !(buf = malloc(e.chunk_bytes))) rs = rl_fail(RL_ENOMEM, "out of memory");
    const uint8_t *c = m.payload + RL_SEAL_ENC_HEADER_BYTES;
    uint64_t left = e.plaintext_bytes;
    for (uint64_t i = 0; rs == RL_OK && i < nchunks; i++) {
        size_t n = left > e.chunk_bytes ? e.chunk_bytes : (size_t)left;
        uint8_t dummy[1];
        uint8_t *dst = n == 0 ? dummy : out->fp ? buf : out->mem + out->off;
        unsigned long long mlen = 0;
        uint8_t tag = 0;
        if (crypto_secretstream_xchacha20poly1305_pull(&ss, dst, &mlen, &tag, c, n + AB, i == 0 ? m.payload : NULL,
                                                       i == 0 ? RL_SEAL_ENC_HEADER_BYTES : 0) != 0 || mlen != n) {
            rs = rl_fail(RL_EAUTH, "%s: chunk %llu of %llu failed authentication: the file was modified after it was encrypted "
                         "(tampered, or corrupted with its checksum fixed); do not use it", in,
                         (unsigned long long)i + 1, (unsigned long long)nchunks);
            break;
        }
        int last = i + 1 == nchunks;
        if ((tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) != last) {
            rs = rl_fail(RL_EAUTH, "%s: stream ends %s (chunk %llu of %llu); the file was cut or spliced", in,
                         last ? "without its final tag" : "early", (unsigned long long)i + 1, (unsigned long long)nchunks);
            break;
        }
        if (out->fp && n && fwrite(buf, 1, n, out->fp) != n) { rs = rl_fail(RL_EIO, "cannot write %s: %s", out->path, strerror(errno)); break; }
        out->off += n;
        c += n + AB;
        left -= n;
    }
    if (buf) { rl_keys_wipe(buf, e.chunk_bytes); free(buf); }
    rl_keys_wipe(&ss, sizeof ss);
    rl_file_unmap(&m);
    if (rs == RL_OK && e_out) *e_out = e;
    return rs;
}

rl_status rl_seal_decrypt_file(const char *in, const char *out, const rl_seal_secret *s) {
    rl_atomic_file af;
    RL_TRY(rl_atomic_open(&af, out));
    /* decrypted weights are as secret as the key: owner-only before any byte lands */
    if (fchmod(fileno(af.fp), 0600) != 0) {
        rl_status e = rl_fail(RL_EIO, "cannot restrict permissions of %s: %s", af.tmp_path, strerror(errno));
        rl_atomic_abort(&af);
        return e;
    }
    sink sk = {af.fp, NULL, 0, af.tmp_path};
    rl_status rs = decrypt_core(in, s, NULL, NULL, NULL, &sk);
    if (rs == RL_OK) return rl_atomic_commit(&af);
    rl_atomic_abort(&af);
    return rs;
}

typedef struct { sink *sk; uint8_t *img; size_t size; const char *path; } mem_prep;
static rl_status prepare_memory(void *vctx, uint64_t n) {
    mem_prep *p = vctx;
    if (n == 0) return RL_OK;
    if (n > (uint64_t)SIZE_MAX) return rl_fail(RL_ENOMEM, "%s: plaintext too large for this machine", p->path);
    void *mm = mmap(NULL, (size_t)n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mm == MAP_FAILED) return rl_fail(RL_ENOMEM, "%s: cannot allocate %llu bytes for the decrypted file", p->path, (unsigned long long)n);
#ifdef MADV_DONTDUMP
    madvise(mm, (size_t)n, MADV_DONTDUMP);  /* keep decrypted weights out of core dumps */
#endif
    p->img = mm; p->size = (size_t)n;
    p->sk->mem = mm;
    return RL_OK;
}

rl_status rl_seal_decrypt_to_memory(const char *in, const rl_seal_secret *s, uint8_t **img, size_t *size) {
    *img = NULL; *size = 0;
    sink sk = {NULL, NULL, 0, in};
    mem_prep p = {&sk, NULL, 0, in};
    rl_status rs = decrypt_core(in, s, NULL, prepare_memory, &p, &sk);
    if (rs != RL_OK) { rl_seal_free_image(p.img, p.size); return rs; }
    if (p.img) mprotect(p.img, p.size, PROT_READ);
    *img = p.img; *size = p.size;
    return RL_OK;
}

void rl_seal_free_image(uint8_t *img, size_t size) {
    if (img && size) munmap(img, size);
}

int rl_seal_is_encrypted(const char *path, rl_seal_enc_info *info) {
    uint8_t b[RL_FILE_HEADER_BYTES + RL_SEAL_ENC_HEADER_BYTES];
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t n = fread(b, 1, sizeof b, fp);
    fclose(fp);
    rl_file_info fi;
    if (n < RL_FILE_HEADER_BYTES || rl_file_header_decode(&fi, b, n, path) != RL_OK) return 0;
    if (memcmp(fi.magic, RL_SEAL_ENC_MAGIC, 8) != 0) return 0;
    if (info) {
        memset(info, 0, sizeof *info);
        enc_header e;
        if (n == sizeof b && enc_decode(&e, b + RL_FILE_HEADER_BYTES, path) == RL_OK) {
            info->kdf = (int)e.kdf;
            info->chunk_bytes = e.chunk_bytes;
            info->plaintext_bytes = e.plaintext_bytes;
            info->opslimit = e.opslimit;
            info->memlimit = e.memlimit;
        }
    }
    return 1;
}

/* ---- loading policy ------------------------------------------------------- */

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

rl_status rl_seal_policy_init(rl_seal_policy *p, const char *verify_key_path, const char *key_file, const char *passphrase_env) {
    memset(p, 0, sizeof *p);
    RL_TRY(rl_seal_init());
    const char *vk = nonempty(verify_key_path);
    if (!vk) vk = nonempty(getenv(RL_SEAL_ENV_VERIFY_KEY));
    if (vk) {
        rl_status s = rl_keys_load_public(&p->pub, vk);
        if (s != RL_OK) {
            char msg[512];   /* rl_error() is the buffer rl_fail writes to: copy it first */
            snprintf(msg, sizeof msg, "%s", rl_error());
            return rl_fail(s, "%s (a verification key was configured, so loading is refused rather than unverified)", msg);
        }
        p->verify = 1;
    }
    key_file = nonempty(key_file);
    passphrase_env = nonempty(passphrase_env);
    if (key_file && passphrase_env) return rl_fail(RL_EINVAL, "give either a key file or a passphrase, not both");
    rl_status s = RL_OK;
    if (key_file) s = rl_seal_secret_from_key_file(&p->secret, key_file);
    else if (passphrase_env) s = rl_seal_secret_from_env(&p->secret, passphrase_env);
    else if (nonempty(getenv(RL_SEAL_ENV_KEY_FILE))) s = rl_seal_secret_from_key_file(&p->secret, getenv(RL_SEAL_ENV_KEY_FILE));
    else if (nonempty(getenv(RL_SEAL_ENV_PASSPHRASE))) s = rl_seal_secret_from_env(&p->secret, RL_SEAL_ENV_PASSPHRASE);
    else return RL_OK;
    if (s != RL_OK) { rl_seal_policy_free(p); return s; }
    p->can_decrypt = 1;
    return RL_OK;
}

void rl_seal_policy_free(rl_seal_policy *p) {
    if (p->can_decrypt) rl_seal_secret_free(&p->secret);
    rl_keys_wipe(p, sizeof *p);
}

rl_status rl_seal_load(rl_mapped_file *m, const char *path, const char magic[8], uint32_t min_version,
                       uint32_t max_version, const char *what, const rl_seal_policy *p, rl_seal_sig_info *sig) {
    memset(m, 0, sizeof *m);
    if (sig) memset(sig, 0, sizeof *sig);
    RL_TRY(rl_seal_init());
    if (p && memcmp(magic, RL_SEAL_ENC_MAGIC, 8) != 0 && rl_seal_is_encrypted(path, NULL)) {
        if (!p->can_decrypt)
            return rl_fail(RL_EAUTH, "%s: %s file is encrypted; give its key (--key-file or %s) or its passphrase "
                           "(--passphrase-env VAR or %s)", path, what, RL_SEAL_ENV_KEY_FILE, RL_SEAL_ENV_PASSPHRASE);
        uint8_t *img; size_t size;
        RL_TRY(rl_seal_decrypt_to_memory(path, &p->secret, &img, &size));
        rl_file_info info;
        rl_status s = rl_file_check(&info, img, size, path, magic, min_version, max_version, what);
        if (s != RL_OK) { rl_seal_free_image(img, size); return s; }
        m->info = info;
        m->map = img;
        m->map_bytes = size;
        m->payload = img + RL_FILE_HEADER_BYTES;
    } else {
        RL_TRY(rl_file_map(m, path, magic, min_version, max_version, what));
    }
    rl_status s = RL_OK;
    if (p && p->verify) s = rl_seal_verify_image(m->map, m->map_bytes, path, &p->pub, sig);
    else if (sig && m->info.trailer_bytes == RL_SEAL_TRAILER_BYTES) {
        const uint8_t *t = (const uint8_t *)m->map + m->map_bytes - RL_SEAL_TRAILER_BYTES;
        if (!memcmp(t, SIG_MAGIC, 8)) {   /* reported, not verified: no key was configured */
            sig->is_signed = 1;
            memcpy(sig->signer.pk, t + 24, 32);
            rl_keys_fingerprint(sig->signer.id, sig->signer.pk);
        }
    }
    if (s != RL_OK) rl_file_unmap(m);
    return s;
}

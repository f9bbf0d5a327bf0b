#include "binfile.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char RL_END_MAGIC[4] = {'R', 'L', 'H', 0x1a};

uint32_t rl_crc32(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    /* zlib's crc32 takes uInt lengths: feed it in chunks below 4 GiB. */
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

/* ---- atomic files -------------------------------------------------------- */

rl_status rl_atomic_open(rl_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    af->path = strdup(path);
    size_t n = strlen(path) + 32;
    af->tmp_path = malloc(n);
    if (!af->path || !af->tmp_path) { rl_atomic_abort(af); return rl_fail(RL_ENOMEM, "out of memory"); }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int e = errno;
        rl_status s = rl_fail(RL_EIO, "cannot create %s: %s (is the directory there and writable?)", af->tmp_path, strerror(e));
        free(af->path); free(af->tmp_path); af->path = af->tmp_path = NULL;
        return s;
    }
    return RL_OK;
}

static void fsync_dir_of(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) { fsync(fd); close(fd); }
    free(copy);
}

rl_status rl_atomic_commit(rl_atomic_file *af) {
    rl_status s = RL_OK;
    if (!af->fp) return rl_fail(RL_EINVAL, "atomic commit of a file that is not open");
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0) {
        s = rl_fail(RL_EIO, "cannot write %s: %s (disk full?)", af->tmp_path, strerror(errno));
    }
    if (fclose(af->fp) != 0 && s == RL_OK)
        s = rl_fail(RL_EIO, "cannot close %s: %s", af->tmp_path, strerror(errno));
    af->fp = NULL;
    if (s == RL_OK && rename(af->tmp_path, af->path) != 0)
        s = rl_fail(RL_EIO, "cannot rename %s to %s: %s", af->tmp_path, af->path, strerror(errno));
    if (s == RL_OK) fsync_dir_of(af->path);
    else unlink(af->tmp_path);
    free(af->path); free(af->tmp_path);
    af->path = af->tmp_path = NULL;
    return s;
}

void rl_atomic_abort(rl_atomic_file *af) {
    if (af->fp) { fclose(af->fp); af->fp = NULL; }
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path); free(af->tmp_path);
    af->path = af->tmp_path = NULL;
}

rl_status rl_atomic_write(const char *path, const void *data, size_t n) {
    rl_atomic_file af;
    RL_TRY(rl_atomic_open(&af, path));
    if (n && fwrite(data, 1, n, af.fp) != n) {
        rl_status s = rl_fail(RL_EIO, "cannot write %s: %s", af.tmp_path, strerror(errno));
        rl_atomic_abort(&af);
        return s;
    }
    return rl_atomic_commit(&af);
}

/* ---- versioned files ----------------------------------------------------- */

struct rl_writer {
    rl_atomic_file af;
    rl_file_info info;
    uint32_t crc;
    uint64_t written;
};

static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static uint64_t get_u64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }

void rl_file_header_encode(unsigned char h[RL_FILE_HEADER_BYTES], const rl_file_info *info) {
    memset(h, 0, RL_FILE_HEADER_BYTES);
    memcpy(h, info->magic, 8);
    put_u32(h + 8, info->version);
    put_u32(h + 12, RL_FILE_HEADER_BYTES);
    put_u64(h + 16, info->payload_bytes);
    put_u32(h + 24, info->payload_crc);
    put_u32(h + 28, info->flags);
    put_u32(h + 32, info->trailer_bytes);
    put_u32(h + 56, rl_crc32(0, h, 56));
    memcpy(h + 60, RL_END_MAGIC, 4);
}

rl_status rl_writer_open(rl_writer **out, const char *path, const char magic[8], uint32_t version, uint32_t flags) {
    *out = NULL;
    rl_writer *w = calloc(1, sizeof *w);
    if (!w) return rl_fail(RL_ENOMEM, "out of memory");
    memcpy(w->info.magic, magic, 8);
    w->info.version = version;
    w->info.header_bytes = RL_FILE_HEADER_BYTES;
    w->info.flags = flags;
    rl_status s = rl_atomic_open(&w->af, path);
    if (s != RL_OK) { free(w); return s; }
    unsigned char h[RL_FILE_HEADER_BYTES];
    rl_file_header_encode(h, &w->info); /* placeholder, patched on commit */
    if (fwrite(h, 1, sizeof h, w->af.fp) != sizeof h) {
        s = rl_fail(RL_EIO, "cannot write %s: %s", w->af.tmp_path, strerror(errno));
        rl_writer_abort(w);
        return s;
    }
    *out = w;
    return RL_OK;
}

rl_status rl_writer_write(rl_writer *w, const void *data, size_t n) {
    if (n == 0) return RL_OK;
    if (fwrite(data, 1, n, w->af.fp) != n)
        return rl_fail(RL_EIO, "cannot write %s: %s (disk full?)", w->af.tmp_path, strerror(errno));
    w->crc = rl_crc32(w->crc, data, n);
    w->written += n;
    return RL_OK;
}

uint64_t rl_writer_tell(const rl_writer *w) { return w->written; }

rl_status rl_writer_commit(rl_writer *w) {
    w->info.payload_bytes = w->written;
    w->info.payload_crc = w->crc;
    unsigned char h[RL_FILE_HEADER_BYTES];
    rl_file_header_encode(h, &w->info);
    rl_status s = RL_OK;
    if (fseek(w->af.fp, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->af.fp) != sizeof h)
        s = rl_fail(RL_EIO, "cannot write header of %s: %s", w->af.tmp_path, strerror(errno));
    if (s == RL_OK) s = rl_atomic_commit(&w->af);
    else rl_atomic_abort(&w->af);
    free(w);
    return s;
}

void rl_writer_abort(rl_writer *w) {
    if (!w) return;
    rl_atomic_abort(&w->af);
    free(w);
}

static void printable_magic(char out[40], const unsigned char *m) {
    char *o = out;
    for (int i = 0; i < 8; i++) {
        if (m[i] >= 32 && m[i] < 127) *o++ = (char)m[i];
        else { sprintf(o, "\\x%02x", m[i]); o += 4; }
    }
    *o = 0;
}

rl_status rl_file_header_decode(rl_file_info *info, const void *hv, size_t avail, const char *path) {
    const unsigned char *h = hv;
    if (avail < RL_FILE_HEADER_BYTES)
        return rl_fail(RL_EFORMAT, "%s: file is %zu bytes, shorter than the %d-byte rlhf.c header; it is truncated or not an rlhf.c file",
                       path, avail, RL_FILE_HEADER_BYTES);
    if (memcmp(h + 60, RL_END_MAGIC, 4) != 0 || get_u32(h + 56) != rl_crc32(0, h, 56))
        return rl_fail(RL_EFORMAT, "%s: not an rlhf.c binary file (header check failed); was it written by rlhf, and copied in binary mode?", path);
    memcpy(info->magic, h, 8);
    info->version = get_u32(h + 8);
    info->header_bytes = get_u32(h + 12);
    info->payload_bytes = get_u64(h + 16);
    info->payload_crc = get_u32(h + 24);
    info->flags = get_u32(h + 28);
    info->trailer_bytes = get_u32(h + 32);
    if (info->header_bytes != RL_FILE_HEADER_BYTES)
        return rl_fail(RL_EFORMAT, "%s: header size %u is not %d; the file comes from a newer rlhf.c: upgrade", path, info->header_bytes, RL_FILE_HEADER_BYTES);
    return RL_OK;
}

rl_status rl_file_peek(rl_file_info *info, const char *path) {
    memset(info, 0, sizeof *info);
    FILE *fp = fopen(path, "rb");
    if (!fp) return rl_fail(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char h[RL_FILE_HEADER_BYTES];
    size_t n = fread(h, 1, sizeof h, fp);
    fclose(fp);
    return rl_file_header_decode(info, h, n, path);
}

rl_status rl_file_check(rl_file_info *out, const void *img, size_t size, const char *path, const char magic[8],
                        uint32_t min_version, uint32_t max_version, const char *what) {
    rl_file_info info;
    memset(out, 0, sizeof *out);
    rl_status s = rl_file_header_decode(&info, img, size, path);
    if (s == RL_OK && memcmp(info.magic, magic, 8) != 0) {
        char got[40], want[40];
        printable_magic(got, (const unsigned char *)info.magic);
        printable_magic(want, (const unsigned char *)magic);
        if (!memcmp(info.magic, "RLHFENC1", 8))
            s = rl_fail(RL_EFORMAT, "%s: this file is encrypted; load it with a decryption key (--key-file / --passphrase-env, "
                                    "see docs/security.md) or decrypt it with 'rlhf file decrypt'", path);
        else
            s = rl_fail(RL_EFORMAT, "%s: this is an rlhf.c file of kind '%s', not a %s file ('%s'); pass the right file", path, got, what, want);
    }
    if (s == RL_OK && (info.version < min_version || info.version > max_version))
        s = rl_fail(RL_EFORMAT, "%s: %s file version %u is not supported (this build reads %u..%u); %s", path, what, info.version,
                    min_version, max_version, info.version > max_version ? "upgrade rlhf.c" : "re-create the file with this rlhf.c");
    if (s == RL_OK && info.trailer_bytes > RL_FILE_MAX_TRAILER_BYTES)
        s = rl_fail(RL_EFORMAT, "%s: header announces a %u-byte trailer (at most %d); the file is corrupt or from a newer rlhf.c",
                    path, info.trailer_bytes, RL_FILE_MAX_TRAILER_BYTES);
    /* size >= 64 here; compare without overflow: payload + trailer == size - 64 */
    if (s == RL_OK && (info.payload_bytes > size - RL_FILE_HEADER_BYTES ||
                       size - RL_FILE_HEADER_BYTES - info.payload_bytes != info.trailer_bytes))
        s = rl_fail(RL_EFORMAT, "%s: %s file should have %llu payload bytes%s but has %zu after the header; it is truncated or was appended to: re-create it",
                    path, what, (unsigned long long)info.payload_bytes, info.trailer_bytes ? " and a signature trailer" : "",
                    size - RL_FILE_HEADER_BYTES);
    if (s == RL_OK && rl_crc32(0, (const uint8_t *)img + RL_FILE_HEADER_BYTES, (size_t)info.payload_bytes) != info.payload_crc)
        s = rl_fail(RL_EFORMAT, "%s: %s file is corrupt (payload checksum mismatch); re-create or re-copy it", path, what);
    if (s == RL_OK) *out = info;
    return s;
}

rl_status rl_file_map(rl_mapped_file *m, const char *path, const char magic[8],
                      uint32_t min_version, uint32_t max_version, const char *what) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        return rl_fail(e == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open %s file: %s", path, what, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) { int e = errno; close(fd); return rl_fail(RL_EIO, "%s: %s", path, strerror(e)); }
    if (!S_ISREG(st.st_mode)) { close(fd); return rl_fail(RL_EINVAL, "%s: not a regular file (expected a %s file)", path, what); }
    size_t size = (size_t)st.st_size;
    if (size < RL_FILE_HEADER_BYTES) {
        close(fd);
        return rl_fail(RL_EFORMAT, "%s: %zu bytes is too short for a %s file (truncated, or not a %s file)", path, size, what, what);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return rl_fail(RL_EIO, "%s: cannot map: %s", path, strerror(errno));
    rl_file_info info;
    rl_status s = rl_file_check(&info, map, size, path, magic, min_version, max_version, what);
    if (s != RL_OK) { munmap(map, size); return s; }
    m->info = info;
    m->map = map;
    m->map_bytes = size;
    m->payload = (const uint8_t *)map + RL_FILE_HEADER_BYTES;
    return RL_OK;
}

void rl_file_unmap(rl_mapped_file *m) {
    if (m->map) munmap(m->map, m->map_bytes);
    memset(m, 0, sizeof *m);
}

/* ---- cursor -------------------------------------------------------------- */

void rl_cursor_read(rl_cursor *c, void *dst, size_t n) {
    if (c->bad || n > c->left) { c->bad = 1; memset(dst, 0, n); c->left = 0; return; }
    memcpy(dst, c->p, n);
    c->p += n;
    c->left -= n;
}

uint32_t rl_cursor_u32(rl_cursor *c) { unsigned char b[4]; rl_cursor_read(c, b, 4); return get_u32(b); }
uint64_t rl_cursor_u64(rl_cursor *c) { unsigned char b[8]; rl_cursor_read(c, b, 8); return get_u64(b); }

const void *rl_cursor_take(rl_cursor *c, size_t n) {
    if (c->bad || n > c->left) { c->bad = 1; c->left = 0; return NULL; }
    const void *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

/* binfile.h — versioned, checksummed binary files written atomically.
 *
 * Every binary file rlhf.c writes (tokenizers, token shards, checkpoints, ...)
 * starts with the same 64-byte header:
 *
 *   offset size  field
 *   0      8     magic          file kind, e.g. "RLHFTOK\0" (8 bytes, not NUL-terminated)
 *   8      4     version        format version of that kind (u32 little-endian)
 *   12     4     header_bytes   64 (room to grow)
 *   16     8     payload_bytes  bytes that follow the header (u64)
 *   24     4     payload_crc    CRC-32 (zlib polynomial) of the payload
 *   28     4     flags          kind-specific bits (0 unless the kind says)
 *   32     4     trailer_bytes  bytes after the payload (0, or a signature trailer:
 *                               src/base/seal.h, docs/formats-secure.md)
 *   36     20    reserved       zero
 *   56     4     header_crc     CRC-32 of bytes 0..55
 *   60     4     end_magic      "RLH\x1a" (catches a text-mode transfer)
 *
 * The payload layout belongs to each file kind (docs/formats.md). Loaders
 * reject a wrong magic, an unknown version, a short file or a bad checksum
 * with a message that names the file, what it is, and what to do.
 *
 * Writes go to "<path>.tmp.<pid>", are fsync'd, then renamed over <path> (and
 * the directory fsync'd): a crash leaves either the old file or the new one.
 */
#ifndef RL_BINFILE_H
#define RL_BINFILE_H
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include "check.h"

#define RL_FILE_HEADER_BYTES 64

typedef struct {
    char magic[8];
    uint32_t version;
    uint32_t header_bytes;
    uint64_t payload_bytes;
    uint32_t payload_crc;
    uint32_t flags;
    uint32_t trailer_bytes;   /* 0 = none; else a trailer follows the payload (seal.h) */
} rl_file_info;

/* Largest trailer a loader accepts (a signature trailer is 128 bytes). */
#define RL_FILE_MAX_TRAILER_BYTES 4096

/* ---- atomic plain files ------------------------------------------------- */

/* An open temporary file that becomes `path` on commit. */
typedef struct {
    FILE *fp;          /* write here */
    char *path;        /* owned */
    char *tmp_path;    /* owned */
} rl_atomic_file;

/* Opens "<path>.tmp.<pid>" for writing. RL_EIO with the reason if it cannot. */
rl_status rl_atomic_open(rl_atomic_file *af, const char *path);
/* fflush + fsync + close + rename + fsync(dir). On failure the temp file is
 * removed and the old `path` is untouched. Frees af's strings either way. */
rl_status rl_atomic_commit(rl_atomic_file *af);
/* Closes and removes the temp file; `path` untouched. Safe to call twice. */
void rl_atomic_abort(rl_atomic_file *af);
/* Whole buffer to `path` atomically. */
rl_status rl_atomic_write(const char *path, const void *data, size_t n);

/* ---- versioned binary files --------------------------------------------- */

typedef struct rl_writer rl_writer;

/* Starts a file of kind `magic` (8 bytes) and `version`. The payload is
 * streamed with rl_writer_write; the header is patched on commit. */
rl_status rl_writer_open(rl_writer **w, const char *path, const char magic[8], uint32_t version, uint32_t flags);
rl_status rl_writer_write(rl_writer *w, const void *data, size_t n);
/* Bytes of payload written so far. */
uint64_t rl_writer_tell(const rl_writer *w);
/* Finishes the header, fsyncs and renames. Frees w (also on failure). */
rl_status rl_writer_commit(rl_writer *w);
/* Drops the temp file. Frees w. */
void rl_writer_abort(rl_writer *w);

/* A validated, read-only, memory-mapped file. */
typedef struct {
    rl_file_info info;
    const uint8_t *payload;   /* info.payload_bytes bytes; valid until rl_file_unmap */
    void *map;                /* owned mapping */
    size_t map_bytes;
} rl_mapped_file;

/* Maps `path` and checks that it is a `what` file ("tokenizer", "token shard",
 * ...): magic, version in [min_version, max_version], sizes, both CRCs.
 * On error returns RL_ENOTFOUND / RL_EIO / RL_EFORMAT with a message that says
 * what was found and what to do. `m` is zeroed on error. */
rl_status rl_file_map(rl_mapped_file *m, const char *path, const char magic[8],
                      uint32_t min_version, uint32_t max_version, const char *what);
/* Checks an in-memory image of a whole file (`size` bytes at `img`) exactly as
 * rl_file_map checks a mapped one; `path` only names it in messages. Used for
 * images that never touch the disk (a decrypted file, seal.h). */
rl_status rl_file_check(rl_file_info *info, const void *img, size_t size, const char *path, const char magic[8],
                        uint32_t min_version, uint32_t max_version, const char *what);
/* The 64-byte header: encode (sets header_bytes, header_crc, end magic) and
 * decode (checks end magic, header CRC and header size; RL_EFORMAT naming
 * `path` otherwise). For code that writes or re-signs a header itself. */
void rl_file_header_encode(unsigned char h[RL_FILE_HEADER_BYTES], const rl_file_info *info);
rl_status rl_file_header_decode(rl_file_info *info, const void *h, size_t avail, const char *path);
/* Reads only the header (no CRC of the payload); for `inspect`-style tools. */
rl_status rl_file_peek(rl_file_info *info, const char *path);
void rl_file_unmap(rl_mapped_file *m);

/* CRC-32 (same as zlib's crc32) of a buffer, continuing from `crc` (start at 0). */
uint32_t rl_crc32(uint32_t crc, const void *data, size_t n);

/* ---- little cursor for parsing payloads --------------------------------- */

/* Reads fixed-size fields from a payload without ever running past its end. */
typedef struct {
    const uint8_t *p;
    size_t left;
    int bad;          /* set once a read ran past the end; later reads return zeros */
} rl_cursor;

static inline rl_cursor rl_cursor_make(const void *p, size_t n) { rl_cursor c = {(const uint8_t *)p, n, 0}; return c; }
/* Copies n bytes to dst (zeros and sets bad if fewer are left). */
void rl_cursor_read(rl_cursor *c, void *dst, size_t n);
uint32_t rl_cursor_u32(rl_cursor *c);
uint64_t rl_cursor_u64(rl_cursor *c);
/* Pointer to the next n bytes (NULL and bad if fewer are left). */
const void *rl_cursor_take(rl_cursor *c, size_t n);

#endif

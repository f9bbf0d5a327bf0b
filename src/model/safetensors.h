/* safetensors.h — the Hugging Face safetensors format, read as untrusted input.
 *
 *   [u64 little-endian N][N bytes JSON header][data area]
 *   header: {"__metadata__": {"k": "v", ...},          (optional, string→string)
 *            "<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
 *
 * Offsets are relative to the start of the data area. The parser accepts a
 * file only if: N <= 100,000,000 and fits in the file; the header starts
 * with '{', is valid UTF-8 JSON with no duplicate keys (trailing spaces
 * allowed); every tensor has exactly dtype/shape/data_offsets; the dtype is
 * known; shape has at most ST_MAX_DIMS non-negative integer dims; the product
 * of the dims times the dtype size (overflow-checked) equals end - begin;
 * and the tensors tile the data area exactly (sorted by offset, the first
 * starts at 0, each starts where the previous ended, the last ends at the end
 * of the file: no overlaps, no holes, no trailing bytes, as the format's
 * reference implementation requires). Every error names the file, the tensor
 * and the rule broken (RL_EFORMAT). Nothing GPT-specific lives here.
 *
 * Host byte order is assumed little-endian (x86-64, arm64), like the format.
 */
#ifndef RL_SAFETENSORS_H
#define RL_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "../base/check.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER_BYTES 100000000ull

typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32, ST_F64, ST_I64, ST_U64, ST_NDTYPES
} st_dtype;

typedef struct {
    char *name;                 /* owned, NUL-terminated UTF-8 */
    st_dtype dtype;
    int ndim;                   /* 0 = scalar */
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;             /* product of shape (1 for a scalar) */
    uint64_t begin, end;        /* byte range in the data area */
} st_tensor;

typedef struct {
    char *path;                 /* owned; names the file in messages */
    void *map;                  /* owned mapping (st_open) or NULL (st_parse) */
    size_t map_bytes;
    const uint8_t *data;        /* the data area */
    uint64_t data_bytes;
    st_tensor *tensors;         /* owned, sorted by name */
    int ntensors;
    char **meta;                /* owned: key0, value0, key1, value1, ... */
    int nmeta;                  /* number of key/value pairs */
} st_file;

/* Maps `path` read-only and parses it. `f` is zeroed on error. */
rl_status st_open(st_file *f, const char *path);
/* Parses a whole file image already in memory (`buf` must outlive `f`);
 * `name` names it in messages. */
rl_status st_parse(st_file *f, const void *buf, size_t n, const char *name);
void st_close(st_file *f);

/* The tensor called `name`, or NULL (binary search). */
const st_tensor *st_find(const st_file *f, const char *name);
/* The __metadata__ value for `key`, or NULL. */
const char *st_meta(const st_file *f, const char *key);

const char *st_dtype_name(st_dtype d);
/* Bytes per element. */
size_t st_dtype_size(st_dtype d);

/* Copies tensor `t` into dst[0..n) as float32, converting F16, BF16 and F64
 * (F32 copied as is). n must equal t->numel (RL_EINVAL otherwise); other
 * dtypes give RL_EUNSUPPORTED. The data may be unaligned: read with memcpy. */
rl_status st_read_f32(const st_file *f, const st_tensor *t, float *dst, uint64_t n);

/* IEEE half and bfloat16 to float (exact: every value is representable). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

/* One tensor to write. */
typedef struct {
    const char *name;
    int ndim;
    const int64_t *shape;       /* ndim dims, each >= 0 */
    const float *data;          /* product(shape) floats */
} st_entry;

/* Writes F32 tensors (in the given order) and optional metadata (`meta`:
 * 2*nmeta strings, key/value pairs) to `path` atomically. The header is
 * padded with spaces so the data area starts 8-byte aligned. Duplicate or
 * reserved names ("__metadata__") are RL_EINVAL. */
rl_status st_write_f32(const char *path, const st_entry *t, int n, const char *const *meta, int nmeta);

#endif

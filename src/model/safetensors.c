/* safetensors.c — see safetensors.h. Every number in the header is checked
 * before it is used to index anything; the whole header is validated before
 * `f` is handed back, so later reads need no further checks. */
#include "safetensors.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../base/binfile.h"

static const struct { const char *name; size_t size; } DTYPES[ST_NDTYPES] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1}, [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_I16] = {"I16", 2}, [ST_U16] = {"U16", 2}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_I32] = {"I32", 4}, [ST_U32] = {"U32", 4}, [ST_F32] = {"F32", 4},
    [ST_F64] = {"F64", 8}, [ST_I64] = {"I64", 8}, [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(st_dtype d) { return (unsigned)d < ST_NDTYPES ? DTYPES[d].name : "?"; }
size_t st_dtype_size(st_dtype d) { return (unsigned)d < ST_NDTYPES ? DTYPES[d].size : 0; }

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else {  /* subnormal: mant * 2^-24; shift until the implicit bit appears */
            int e = -1;
            do { e++; mant <<= 1; } while (!(mant & 0x400u));
            bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);   /* inf / nan (payload kept) */
    else bits = sign | ((exp + 112u) << 23) | (mant << 13);            /* rebias 15 -> 127 */
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void free_file(st_file *f) {
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    for (int i = 0; i < 2 * f->nmeta; i++) free(f->meta[i]);
    free(f->tensors);
    free(f->meta);
    free(f->path);
    if (f->map) munmap(f->map, f->map_bytes);
    memset(f, 0, sizeof *f);
}

void st_close(st_file *f) { free_file(f); }

static int cmp_offset(const void *a, const void *b) {
    const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}
static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* A JSON integer in [0, 2^63). */
static int get_uint(json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return 0;
    json_int_t x = json_integer_value(v);
    if (x < 0) return 0;
    *out = (uint64_t)x;
    return 1;
}

static rl_status parse_tensor(st_file *f, st_tensor *t, const char *name, json_t *v) {
    const char *p = f->path;
    if (!json_is_object(v)) return rl_fail(RL_EFORMAT, "%s: safetensors entry '%s' is not an object", p, name);
    json_t *dt = NULL, *shape = NULL, *offs = NULL;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (!strcmp(k, "dtype")) dt = x;
        else if (!strcmp(k, "shape")) shape = x;
        else if (!strcmp(k, "data_offsets")) offs = x;
        else return rl_fail(RL_EFORMAT, "%s: tensor '%s' has an unknown field '%.64s' (expected dtype, shape, data_offsets)", p, name, k);
    }
    if (!dt || !shape || !offs)
        return rl_fail(RL_EFORMAT, "%s: tensor '%s' lacks %s", p, name, !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!json_is_string(dt)) return rl_fail(RL_EFORMAT, "%s: tensor '%s': dtype is not a string", p, name);
    const char *ds = json_string_value(dt);
    int d = -1;
    for (int i = 0; i < ST_NDTYPES; i++) if (!strcmp(ds, DTYPES[i].name)) d = i;
    if (d < 0) return rl_fail(RL_EFORMAT, "%s: tensor '%s' has unknown dtype '%.32s' (known: BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64)", p, name, ds);
    t->dtype = (st_dtype)d;
    if (!json_is_array(shape)) return rl_fail(RL_EFORMAT, "%s: tensor '%s': shape is not an array", p, name);
    size_t nd = json_array_size(shape);
    if (nd > ST_MAX_DIMS) return rl_fail(RL_EFORMAT, "%s: tensor '%s' has %zu dimensions (at most %d supported)", p, name, nd, ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        uint64_t dim;
        if (!get_uint(json_array_get(shape, i), &dim))
            return rl_fail(RL_EFORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", p, name, i);
        t->shape[i] = (int64_t)dim;
        if (__builtin_mul_overflow(numel, dim, &numel))
            return rl_fail(RL_EFORMAT, "%s: tensor '%s': shape product overflows 64 bits", p, name);
    }
    t->numel = numel;
    uint64_t bytes;
    if (__builtin_mul_overflow(numel, (uint64_t)DTYPES[d].size, &bytes))
        return rl_fail(RL_EFORMAT, "%s: tensor '%s': byte size overflows 64 bits", p, name);
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !get_uint(json_array_get(offs, 0), &t->begin) ||
        !get_uint(json_array_get(offs, 1), &t->end))
        return rl_fail(RL_EFORMAT, "%s: tensor '%s': data_offsets must be [begin, end], two non-negative integers", p, name);
    if (t->begin > t->end) return rl_fail(RL_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] run backwards", p, name,
                                          (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > f->data_bytes)
        return rl_fail(RL_EFORMAT, "%s: tensor '%s': data_offsets end %llu is past the data area (%llu bytes); the file is truncated or the header lies",
                       p, name, (unsigned long long)t->end, (unsigned long long)f->data_bytes);
    if (t->end - t->begin != bytes)
        return rl_fail(RL_EFORMAT, "%s: tensor '%s': shape and dtype %s need %llu bytes but data_offsets span %llu", p, name,
                       DTYPES[d].name, (unsigned long long)bytes, (unsigned long long)(t->end - t->begin));
    return RL_OK;
}

rl_status st_parse(st_file *f, const void *bufv, size_t n, const char *name) {
    memset(f, 0, sizeof *f);
    const uint8_t *buf = bufv;
    f->path = strdup(name ? name : "(memory)");
    if (!f->path) return rl_fail(RL_ENOMEM, "out of memory");
    const char *p = f->path;
    rl_status s = RL_OK;
    json_t *root = NULL;
    st_tensor **order = NULL;
    if (n < 8) { s = rl_fail(RL_EFORMAT, "%s: %zu bytes is too short for a safetensors file (8-byte header length first)", p, n); goto done; }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > ST_MAX_HEADER_BYTES) { s = rl_fail(RL_EFORMAT, "%s: safetensors header length %llu exceeds the 100 MB limit; not a safetensors file, or corrupt", p, (unsigned long long)hlen); goto done; }
    if (hlen > n - 8) { s = rl_fail(RL_EFORMAT, "%s: safetensors header length %llu is past the end of the %zu-byte file; truncated", p, (unsigned long long)hlen, n); goto done; }
    if (hlen < 2 || buf[8] != '{') { s = rl_fail(RL_EFORMAT, "%s: safetensors header must be a JSON object starting with '{'", p); goto done; }
    f->data = buf + 8 + hlen;
    f->data_bytes = n - 8 - hlen;
    json_error_t err;
    root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &err);
    if (!root) { s = rl_fail(RL_EFORMAT, "%s: safetensors header is not valid JSON (%.120s, at byte %d)", p, err.text, err.position); goto done; }
    if (!json_is_object(root)) { s = rl_fail(RL_EFORMAT, "%s: safetensors header is not a JSON object", p); goto done; }
    size_t nkeys = json_object_size(root);
    f->tensors = calloc(nkeys ? nkeys : 1, sizeof *f->tensors);
    if (!f->tensors) { s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(v)) { s = rl_fail(RL_EFORMAT, "%s: __metadata__ is not an object", p); goto done; }
            size_t nm = json_object_size(v);
            f->meta = calloc(2 * nm + 1, sizeof *f->meta);
            if (!f->meta) { s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv)) { s = rl_fail(RL_EFORMAT, "%s: __metadata__ value of '%.64s' is not a string", p, mk); goto done; }
                f->meta[2 * f->nmeta] = strdup(mk);
                f->meta[2 * f->nmeta + 1] = strdup(json_string_value(mv));
                f->nmeta++;
                if (!f->meta[2 * f->nmeta - 2] || !f->meta[2 * f->nmeta - 1]) { s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
            }
            continue;
        }
        st_tensor *t = &f->tensors[f->ntensors];
        t->name = strdup(key);
        if (!t->name) { s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
        f->ntensors++;
        if ((s = parse_tensor(f, t, key, v)) != RL_OK) goto done;
    }
    /* The tensors must tile the data area: no overlap, no hole, nothing after. */
    order = malloc((size_t)(f->ntensors ? f->ntensors : 1) * sizeof *order);
    if (!order) { s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    for (int i = 0; i < f->ntensors; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->ntensors, sizeof *order, cmp_offset);
    uint64_t at = 0;
    for (int i = 0; i < f->ntensors; i++) {
        const st_tensor *t = order[i];
        if (t->begin < at) {
            s = rl_fail(RL_EFORMAT, "%s: tensor '%s' (bytes %llu..%llu) overlaps tensor '%s'; refusing aliased data", p, t->name,
                        (unsigned long long)t->begin, (unsigned long long)t->end, order[i - 1]->name);
            goto done;
        }
        if (t->begin > at) {
            s = rl_fail(RL_EFORMAT, "%s: %llu unindexed bytes before tensor '%s' (the data area must have no holes)", p,
                        (unsigned long long)(t->begin - at), t->name);
            goto done;
        }
        at = t->end;
    }
    if (at != f->data_bytes) {
        s = rl_fail(RL_EFORMAT, "%s: %llu bytes after the last tensor are not indexed by the header (the data area must have no holes)", p,
                    (unsigned long long)(f->data_bytes - at));
        goto done;
    }
    qsort(f->tensors, (size_t)f->ntensors, sizeof *f->tensors, cmp_name);
    for (int i = 1; i < f->ntensors; i++)
        if (!strcmp(f->tensors[i].name, f->tensors[i - 1].name)) { s = rl_fail(RL_EFORMAT, "%s: duplicate tensor name '%s'", p, f->tensors[i].name); goto done; }
done:
    free(order);
    if (root) json_decref(root);
    if (s != RL_OK) free_file(f);
    return s;
}

rl_status st_open(st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { int e = errno; return rl_fail(e == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open safetensors file: %s", path, strerror(e)); }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return rl_fail(RL_EINVAL, "%s: not a regular file", path); }
    size_t size = (size_t)st.st_size;
    if (size < 8) { close(fd); return rl_fail(RL_EFORMAT, "%s: %zu bytes is too short for a safetensors file", path, size); }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return rl_fail(RL_EIO, "%s: cannot map: %s", path, strerror(errno));
    rl_status s = st_parse(f, map, size, path);
    if (s != RL_OK) { munmap(map, size); return s; }
    f->map = map;
    f->map_bytes = size;
    return RL_OK;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    int lo = 0, hi = f->ntensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++) if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

rl_status st_read_f32(const st_file *f, const st_tensor *t, float *dst, uint64_t n) {
    if (n != t->numel)
        return rl_fail(RL_EINVAL, "%s: tensor '%s' has %llu elements, caller's buffer %llu", f->path, t->name,
                       (unsigned long long)t->numel, (unsigned long long)n);
    const uint8_t *src = f->data + t->begin;
    switch (t->dtype) {
    case ST_F32: if (n) memcpy(dst, src, n * 4); return RL_OK;
    case ST_F16: for (uint64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = st_f16_to_f32(h); } return RL_OK;
    case ST_BF16: for (uint64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = st_bf16_to_f32(h); } return RL_OK;
    case ST_F64: for (uint64_t i = 0; i < n; i++) { double d; memcpy(&d, src + 8 * i, 8); dst[i] = (float)d; } return RL_OK;
    default:
        return rl_fail(RL_EUNSUPPORTED, "%s: tensor '%s' has dtype %s, which cannot be read as float32 (F32, F16, BF16, F64 can)",
                       f->path, t->name, st_dtype_name(t->dtype));
    }
}

rl_status st_write_f32(const char *path, const st_entry *t, int n, const char *const *meta, int nmeta) {
    rl_status s = RL_OK;
    json_t *root = json_object();
    char *hdr = NULL;
    uint64_t *bytes = calloc((size_t)(n > 0 ? n : 1), sizeof *bytes);
    if (!root || !bytes) { s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    if (nmeta > 0) {
        json_t *m = json_object();
        if (!m || json_object_set_new(root, "__metadata__", m) != 0) { s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
        for (int i = 0; i < nmeta; i++) {
            json_t *sv = json_string(meta[2 * i + 1]);
            if (!sv || json_object_set_new(m, meta[2 * i], sv) != 0) { s = rl_fail(RL_EINVAL, "%s: metadata '%s' is not valid UTF-8", path, meta[2 * i]); goto done; }
        }
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(t[i].name, "__metadata__") || json_object_get(root, t[i].name))
            { s = rl_fail(RL_EINVAL, "%s: tensor name '%s' is reserved or used twice", path, t[i].name); goto done; }
        if (t[i].ndim < 0 || t[i].ndim > ST_MAX_DIMS) { s = rl_fail(RL_EINVAL, "%s: tensor '%s' has %d dims (0..%d)", path, t[i].name, t[i].ndim, ST_MAX_DIMS); goto done; }
        json_t *o = json_object(), *shape = json_array(), *offs = json_array();
        if (!o || !shape || !offs) { json_decref(o); json_decref(shape); json_decref(offs); s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            if (t[i].shape[d] < 0) { json_decref(o); json_decref(shape); json_decref(offs); s = rl_fail(RL_EINVAL, "%s: tensor '%s' has a negative dim", path, t[i].name); goto done; }
            numel *= (uint64_t)t[i].shape[d];
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        }
        bytes[i] = numel * 4;
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + bytes[i])));
        off += bytes[i];
        json_object_set_new(o, "dtype", json_string("F32"));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "data_offsets", offs);
        if (json_object_set_new(root, t[i].name, o) != 0) { s = rl_fail(RL_EINVAL, "%s: tensor name '%s' is not valid UTF-8", path, t[i].name); goto done; }
    }
    hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr) { s = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    size_t hl = strlen(hdr), padded = (8 + hl + 7) / 8 * 8 - 8;   /* data starts 8-byte aligned */
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    rl_atomic_file af;
    if ((s = rl_atomic_open(&af, path)) != RL_OK) goto done;
    int ok = fwrite(len, 1, 8, af.fp) == 8 && fwrite(hdr, 1, hl, af.fp) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', af.fp) != EOF;
    for (int i = 0; ok && i < n; i++) ok = bytes[i] == 0 || fwrite(t[i].data, 1, (size_t)bytes[i], af.fp) == bytes[i];
    if (!ok) { s = rl_fail(RL_EIO, "cannot write %s: %s", af.tmp_path, strerror(errno)); rl_atomic_abort(&af); goto done; }
    s = rl_atomic_commit(&af);
done:
    free(hdr);
    free(bytes);
    json_decref(root);
    return s;
}

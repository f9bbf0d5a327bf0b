/* seal.c — `rlhf keys generate` and `rlhf file sign|verify|encrypt|decrypt|inspect`:
 * thin wrappers over src/base/seal.h. Secrets are never taken on the command
 * line (they would show in `ps`): only paths of 0600 files and the NAMES of
 * environment variables. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/base/seal.h"

#define PARSE(cmd, summary, flags) \
    do { int rc_ = rl_flags_parse(cmd, summary, flags, RL_NFLAGS(flags), argc, argv); \
         if (rc_ != RL_FLAGS_OK) return rc_ == RL_FLAGS_HELP ? 0 : 2; } while (0)

static int fail(const char *cmd) {
    fprintf(stderr, "rlhf %s: %s\n", cmd, rl_error());
    return 1;
}

int cmd_keys_generate(int argc, char **argv) {
    static const char *out;
    static int enc, force;
    rl_flag flags[] = {
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "directory for sign.key (secret, 0600), sign.pub and enc.key (required)"},
        {"encryption-key", RL_FLAG_BOOL, &enc, "0", 0, 0, NULL, "also write enc.key, a 32-byte key for 'rlhf file encrypt --key-file'"},
        {"force", RL_FLAG_BOOL, &force, "0", 0, 0, NULL, "replace existing key files (files signed or encrypted with them become unusable)"},
    };
    PARSE("keys generate", "Make an Ed25519 signing key pair (and optionally a symmetric encryption key) in a directory.", flags);
    char id[17];
    if (rl_keys_generate(out, enc, force, id) != RL_OK) return fail("keys generate");
    printf("wrote %s/sign.key (secret, mode 0600) and %s/sign.pub%s%s%s\nfingerprint %s\n", out, out,
           enc ? " and " : "", enc ? out : "", enc ? "/enc.key (secret, mode 0600)" : "", id);
    return 0;
}

int cmd_file_sign(int argc, char **argv) {
    static const char *in, *key, *out;
    rl_flag flags[] = {
        {"in", RL_FLAG_STRING, &in, NULL, 0, 0, NULL, "rlhf.c binary file to sign (required)"},
        {"key", RL_FLAG_STRING, &key, NULL, 0, 0, NULL, "secret key file (sign.key, mode 0600) (required)"},
        {"out", RL_FLAG_STRING, &out, "", 0, 0, NULL, "signed output (default: replace --in atomically)"},
    };
    PARSE("file sign", "Sign an rlhf.c binary file (Ed25519ph over header and payload; a 128-byte trailer).", flags);
    rl_keys_secret sk;
    if (rl_keys_load_secret(&sk, key) != RL_OK) return fail("file sign");
    const char *dst = *out ? out : in;
    rl_status s = rl_seal_sign_file(in, dst, &sk);
    char id[17];
    memcpy(id, sk.pub.id, sizeof id);
    rl_keys_wipe(&sk, sizeof sk);
    if (s != RL_OK) return fail("file sign");
    printf("signed %s with key %s\n", dst, id);
    return 0;
}

int cmd_file_verify(int argc, char **argv) {
    static const char *in, *pub;
    rl_flag flags[] = {
        {"in", RL_FLAG_STRING, &in, NULL, 0, 0, NULL, "signed rlhf.c file (required)"},
        {"pub", RL_FLAG_STRING, &pub, "", 0, 0, NULL, "trusted public key file (sign.pub); default $" RL_SEAL_ENV_VERIFY_KEY},
    };
    PARSE("file verify", "Verify the signature of an rlhf.c binary file against a trusted public key.", flags);
    const char *p = *pub ? pub : getenv(RL_SEAL_ENV_VERIFY_KEY);
    if (!p || !*p) {
        fprintf(stderr, "rlhf file verify: no public key: pass --pub DIR/sign.pub or set %s; see 'rlhf file verify --help'\n", RL_SEAL_ENV_VERIFY_KEY);
        return 2;
    }
    rl_keys_pub pk;
    if (rl_keys_load_public(&pk, p) != RL_OK) return fail("file verify");
    if (rl_seal_verify_file(in, &pk, NULL) != RL_OK) return fail("file verify");
    printf("%s: signature valid (key %s)\n", in, pk.id);
    return 0;
}

/* One secret from the flags, else from RLHF_KEY_FILE / RLHF_PASSPHRASE.
 * Returns 0 ok, 1 failure (printed), 2 usage (printed). */
static int get_secret(const char *cmd, rl_seal_secret *s, const char *key_file, const char *pw_env, const char *pw_file) {
    int n = (*key_file != 0) + (*pw_env != 0) + (*pw_file != 0);
    if (n > 1) {
        fprintf(stderr, "rlhf %s: give one of --key-file, --passphrase-env, --passphrase-file; see 'rlhf %s --help'\n", cmd, cmd);
        return 2;
    }
    rl_status st;
    if (*key_file) st = rl_seal_secret_from_key_file(s, key_file);
    else if (*pw_env) st = rl_seal_secret_from_env(s, pw_env);
    else if (*pw_file) st = rl_seal_secret_from_passphrase_file(s, pw_file);
    else if (getenv(RL_SEAL_ENV_KEY_FILE) && *getenv(RL_SEAL_ENV_KEY_FILE)) st = rl_seal_secret_from_key_file(s, getenv(RL_SEAL_ENV_KEY_FILE));
    else if (getenv(RL_SEAL_ENV_PASSPHRASE) && *getenv(RL_SEAL_ENV_PASSPHRASE)) st = rl_seal_secret_from_env(s, RL_SEAL_ENV_PASSPHRASE);
    else {
        fprintf(stderr, "rlhf %s: no key: pass --key-file FILE, --passphrase-env VAR or --passphrase-file FILE "
                "(or set %s / %s); see 'rlhf %s --help'\n", cmd, RL_SEAL_ENV_KEY_FILE, RL_SEAL_ENV_PASSPHRASE, cmd);
        return 2;
    }
    return st == RL_OK ? 0 : fail(cmd);
}

#define SECRET_FLAGS \
    {"key-file", RL_FLAG_STRING, &key_file, "", 0, 0, NULL, "32-byte key file (enc.key from 'rlhf keys generate --encryption-key', mode 0600); default $" RL_SEAL_ENV_KEY_FILE}, \
    {"passphrase-env", RL_FLAG_STRING, &pw_env, "", 0, 0, NULL, "NAME of an environment variable holding the passphrase (Argon2id); default $" RL_SEAL_ENV_PASSPHRASE}, \
    {"passphrase-file", RL_FLAG_STRING, &pw_file, "", 0, 0, NULL, "file (mode 0600) holding the passphrase"}

int cmd_file_encrypt(int argc, char **argv) {
    static const char *in, *out, *key_file, *pw_env, *pw_file;
    static int ops, mem_mib;
    rl_flag flags[] = {
        {"in", RL_FLAG_STRING, &in, NULL, 0, 0, NULL, "file to encrypt (sign it first if it should be signed) (required)"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "encrypted output (required)"},
        SECRET_FLAGS,
        {"kdf-ops", RL_FLAG_INT, &ops, "3", 1, 64, NULL, "Argon2id passes (passphrase only)"},
        {"kdf-mem-mib", RL_FLAG_INT, &mem_mib, "256", 1, 4096, NULL, "Argon2id memory in MiB (passphrase only)"},
    };
    PARSE("file encrypt", "Encrypt a file at rest (XChaCha20-Poly1305 secretstream; key file or Argon2id passphrase).", flags);
    rl_seal_secret s;
    int rc = get_secret("file encrypt", &s, key_file, pw_env, pw_file);
    if (rc) return rc;
    s.opslimit = (uint64_t)ops;
    s.memlimit = (uint64_t)mem_mib << 20;
    double t0 = rl_now();
    rl_status st = rl_seal_encrypt_file(in, out, &s);
    rl_seal_secret_free(&s);
    if (st != RL_OK) return fail("file encrypt");
    rl_info("encrypted %s -> %s in %.2f s", in, out, rl_now() - t0);
    return 0;
}

int cmd_file_decrypt(int argc, char **argv) {
    static const char *in, *out, *key_file, *pw_env, *pw_file;
    rl_flag flags[] = {
        {"in", RL_FLAG_STRING, &in, NULL, 0, 0, NULL, "encrypted file (required)"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "decrypted output, written atomically with mode 0600 (required)"},
        SECRET_FLAGS,
    };
    PARSE("file decrypt", "Decrypt a file encrypted by 'rlhf file encrypt'; a wrong key or any modified byte fails.", flags);
    rl_seal_secret s;
    int rc = get_secret("file decrypt", &s, key_file, pw_env, pw_file);
    if (rc) return rc;
    rl_status st = rl_seal_decrypt_file(in, out, &s);
    rl_seal_secret_free(&s);
    if (st != RL_OK) return fail("file decrypt");
    rl_info("decrypted %s -> %s", in, out);
    return 0;
}

static void print_magic(const char m[8]) {
    for (int i = 0; i < 8; i++) {
        unsigned char c = (unsigned char)m[i];
        if (c >= 32 && c < 127) putchar(c); else printf("\\x%02x", c);
    }
}

/* Signature lines for a whole-file image (mapped or decrypted). Returns 1 if invalid. */
static int print_signature(const uint8_t *img, size_t size, const char *in, const rl_file_info *fi, const rl_keys_pub *pk) {
    if (fi->trailer_bytes == 0) { printf("signed:         no\n"); return 0; }
    rl_seal_sig_info si;
    /* without a trusted key: checked against the key the trailer names (integrity, not authenticity) */
    rl_status s = rl_seal_verify_image(img, size, in, pk, &si);
    if (si.is_signed) printf("signed:         yes, by key %s\n", si.signer.id);
    if (s != RL_OK) { printf("signature:      INVALID: %s\n", rl_error()); return 1; }
    if (pk) printf("signature:      valid (trusted key %s)\n", pk->id);
    else printf("signature:      intact, but not checked against a trusted key (pass --pub or set %s)\n", RL_SEAL_ENV_VERIFY_KEY);
    return 0;
}

static void print_header(const rl_file_info *fi, const char *indent) {
    printf("%skind:           ", indent);
    print_magic(fi->magic);
    printf("\n%sversion:        %u\n%sheader_bytes:   %u\n%spayload_bytes:  %llu\n%spayload_crc:    0x%08x\n%sflags:          0x%08x\n%strailer_bytes:  %u\n",
           indent, fi->version, indent, fi->header_bytes, indent, (unsigned long long)fi->payload_bytes, indent, fi->payload_crc,
           indent, fi->flags, indent, fi->trailer_bytes);
}

int cmd_file_inspect(int argc, char **argv) {
    static const char *in, *pub, *key_file, *pw_env, *pw_file;
    rl_flag flags[] = {
        {"in", RL_FLAG_STRING, &in, NULL, 0, 0, NULL, "rlhf.c binary file (required)"},
        {"pub", RL_FLAG_STRING, &pub, "", 0, 0, NULL, "public key to check the signature with; default $" RL_SEAL_ENV_VERIFY_KEY},
        {"key-file", RL_FLAG_STRING, &key_file, "", 0, 0, NULL, "key file, to look inside an encrypted file (in memory)"},
        {"passphrase-env", RL_FLAG_STRING, &pw_env, "", 0, 0, NULL, "NAME of an environment variable holding the passphrase of an encrypted file"},
        {"passphrase-file", RL_FLAG_STRING, &pw_file, "", 0, 0, NULL, "file (mode 0600) holding the passphrase of an encrypted file"},
    };
    PARSE("file inspect", "Print the header of an rlhf.c binary file: kind, version, sizes, CRCs, signature, encryption.", flags);
    rl_file_info fi;
    if (rl_file_peek(&fi, in) != RL_OK) return fail("file inspect");
    const char *p = *pub ? pub : getenv(RL_SEAL_ENV_VERIFY_KEY);
    rl_keys_pub pk;
    if (p && *p && rl_keys_load_public(&pk, p) != RL_OK) return fail("file inspect");
    const rl_keys_pub *trusted = p && *p ? &pk : NULL;
    printf("file:           %s\n", in);
    print_header(&fi, "");
    int rc = 0;
    /* sizes and CRC, as a loader would check them */
    rl_mapped_file m;
    if (rl_file_map(&m, in, fi.magic, fi.version, fi.version, "rlhf.c") != RL_OK) {
        printf("integrity:      BAD: %s\n", rl_error());
        if (fi.trailer_bytes) {   /* still say what the signature makes of it (streamed, no mapping) */
            rl_seal_sig_info si;
            rl_status s = rl_seal_verify_file(in, trusted, &si);
            if (si.is_signed) printf("signed:         yes, by key %s\n", si.signer.id);
            printf("signature:      %s%s\n", s == RL_OK ? "valid" : "INVALID: ", s == RL_OK ? "" : rl_error());
        }
        return 1;
    }
    printf("integrity:      ok (sizes and payload CRC match)\n");
    rl_seal_enc_info ei;
    if (!rl_seal_is_encrypted(in, &ei)) {
        printf("encrypted:      no\n");
        rc |= print_signature(m.map, m.map_bytes, in, &fi, trusted);
        rl_file_unmap(&m);
        return rc;
    }
    rl_file_unmap(&m);
    if (ei.chunk_bytes == 0) printf("encrypted:      yes (encryption header unreadable)\n");
    else if (ei.kdf == RL_SEAL_KDF_ARGON2ID)
        printf("encrypted:      yes, XChaCha20-Poly1305 secretstream, passphrase (Argon2id ops=%llu mem=%llu MiB), %llu plaintext bytes in %u-byte chunks\n",
               (unsigned long long)ei.opslimit, (unsigned long long)(ei.memlimit >> 20), (unsigned long long)ei.plaintext_bytes, ei.chunk_bytes);
    else
        printf("encrypted:      yes, XChaCha20-Poly1305 secretstream, key file, %llu plaintext bytes in %u-byte chunks\n",
               (unsigned long long)ei.plaintext_bytes, ei.chunk_bytes);
    if (!*key_file && !*pw_env && !*pw_file) {
        printf("signed:         unknown: give --key-file / --passphrase-env / --passphrase-file to look inside\n");
        return rc;
    }
    rl_seal_secret s;
    int src = get_secret("file inspect", &s, key_file, pw_env, pw_file);
    if (src) return src;
    uint8_t *img; size_t size;
    rl_status st = rl_seal_decrypt_to_memory(in, &s, &img, &size);
    rl_seal_secret_free(&s);
    if (st != RL_OK) return fail("file inspect");
    rl_file_info inner;
    if (rl_file_header_decode(&inner, img, size, "decrypted contents") != RL_OK) {
        printf("decrypted:      %zu bytes, not an rlhf.c binary file (%s)\n", size, rl_error());
    } else {
        printf("decrypted:      %zu bytes (in memory only)\n", size);
        print_header(&inner, "  ");
        rl_file_info chk;
        if (rl_file_check(&chk, img, size, "decrypted contents", inner.magic, inner.version, inner.version, "rlhf.c") == RL_OK)
            printf("  integrity:      ok\n");
        else { printf("  integrity:      BAD: %s\n", rl_error()); rc = 1; }
        rc |= print_signature(img, size, in, &inner, trusted);
    }
    rl_seal_free_image(img, size);
    return rc;
}

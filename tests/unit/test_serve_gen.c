/* test_serve_gen.c — the generation interface of the feedback server: the
 * dummy generator, checkpoint backends, and the push-style adapter that a
 * callback sampler plugs into. */
#include "test.h"
#include <pthread.h>
#include <time.h>
#include "../../src/serve/gen.h"
#include "../../src/serve/text.h"
#include "../../src/serve/gen_gpt.h"
#include "../../src/model/checkpoint.h"
#include "../../src/kernels/ops.h"
#include <unistd.h>

static serve_gen_params params(uint64_t seed, int max_tokens) {
    serve_gen_params p = {max_tokens, 0.8, 0, 1.0, seed, 0};
    return p;
}

TEST(dummy_is_deterministic_in_prompt_and_seed) {
    serve_model *m;
    REQUIRE(serve_model_open(&m, "dummy:x", 0) == RL_OK);
    EXPECT(m->is_dummy);
    EXPECT_STREQ(m->identity, "dummy:x");
    serve_turn t[1] = {{"user", "What is RLHF?"}};
    serve_gen_params p1 = params(1, 200), p2 = params(2, 200);
    char *a, *b, *c, *d;
    REQUIRE(serve_generate(m, t, 1, &p1, NULL, &a) == RL_OK);
    REQUIRE(serve_generate(m, t, 1, &p1, NULL, &b) == RL_OK);
    REQUIRE(serve_generate(m, t, 1, &p2, NULL, &c) == RL_OK);
    serve_turn t2[1] = {{"user", "Something else"}};
    REQUIRE(serve_generate(m, t2, 1, &p1, NULL, &d) == RL_OK);
    EXPECT_STREQ(a, b);
    EXPECT(strcmp(a, c) != 0);
    EXPECT(strncmp(a, "You said: What is RLHF? ", 24) == 0);
    EXPECT(strncmp(d, "You said: Something else ", 25) == 0);
    free(a); free(b); free(c); free(d);
    serve_model_close(m);
}

TEST(dummy_pieces_reassemble_and_respect_max_tokens) {
    serve_model *m;
    REQUIRE(serve_model_open(&m, "dummy", 0) == RL_OK);
    EXPECT_STREQ(m->identity, "dummy:echo");
    /* Multi-byte characters in the prompt: pieces are cut at 8 bytes, so
     * some pieces end inside a character; concatenated they are the text. */
    serve_turn t[2] = {{"system", "be brief"}, {"user", "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC long euro string"}};
    serve_gen_params p = params(5, 1000);
    char *full;
    REQUIRE(serve_generate(m, t, 2, &p, NULL, &full) == RL_OK);
    void *st;
    REQUIRE(m->start(m, t, 2, &p, &st) == RL_OK);
    char acc[4096] = "", piece[64];
    size_t n, len = 0;
    int pieces = 0, split_char = 0;
    while (m->next(st, piece, sizeof piece, &n) == 1) {
        if (text_utf8_complete_prefix(piece, n) < n) split_char = 1; /* ends inside a character */
        memcpy(acc + len, piece, n);
        len += n;
        pieces++;
    }
    m->stop(st);
    acc[len] = 0;
    EXPECT_STREQ(acc, full);
    EXPECT(pieces > 3);
    EXPECT(split_char);
    /* max_tokens = 3: exactly three pieces. */
    serve_gen_params p3 = params(5, 3);
    REQUIRE(m->start(m, t, 2, &p3, &st) == RL_OK);
    pieces = 0;
    while (m->next(st, piece, sizeof piece, &n) == 1) pieces++;
    m->stop(st);
    EXPECT(pieces == 3);
    free(full);
    serve_model_close(m);
}

static const char *seen_path;
static rl_status fake_open(serve_model **out, const char *path) {
    seen_path = path;
    return serve_model_open(out, "dummy:from-backend", 0);
}

TEST(checkpoints_need_a_registered_backend) {
    serve_model *m = NULL;
    EXPECT(serve_model_open(&m, "sft.ckpt", 0) == RL_EUNSUPPORTED);
    EXPECT(strstr(rl_error(), "no GPT sampler") != NULL);
    EXPECT(m == NULL);
    EXPECT(serve_model_open(&m, "", 0) == RL_EINVAL);
    EXPECT(serve_model_open(&m, "dummy:", 0) == RL_EINVAL);
    serve_set_checkpoint_backend(fake_open);
    EXPECT(serve_model_open(&m, "sft.ckpt", 0) == RL_OK);
    EXPECT_STREQ(seen_path, "sft.ckpt");
    serve_model_close(m);
    serve_set_checkpoint_backend(NULL);
}

/* ---- push adapter ---------------------------------------------------------------- */

typedef struct {
    int running, max_running, emitted;
    pthread_mutex_t mu;
    int fail;
} fake_sampler;

/* Emits the prompt back one byte at a time (so UTF-8 characters are always
 * split), then "!" pieces up to max_tokens, sleeping a little between pieces. */
static rl_status fake_generate(void *impl, const serve_turn *turns, int nturns, const serve_gen_params *p,
                               serve_emit_fn emit, void *ctx, const volatile int *cancel) {
    fake_sampler *f = impl;
    pthread_mutex_lock(&f->mu);
    f->running++;
    if (f->running > f->max_running) f->max_running = f->running;
    pthread_mutex_unlock(&f->mu);
    rl_status r = RL_OK;
    const char *s = turns[nturns - 1].content;
    int len = (int)strlen(s);
    for (int i = 0; i < p->max_tokens && !*cancel; i++) {
        char c = i < len ? s[i] : '!';
        if (f->fail && i == 3) { r = rl_fail(RL_EIO, "fake sampler broke at token %d", i); break; }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&f->mu);
        f->emitted++;
        pthread_mutex_unlock(&f->mu);
        if (emit(ctx, &c, 1)) break;
    }
    pthread_mutex_lock(&f->mu);
    f->running--;
    pthread_mutex_unlock(&f->mu);
    return r;
}

static serve_model *push_model(fake_sampler *f, int concurrent) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    serve_push_backend b = {"fake", "fake:1", "fake.ckpt", f, fake_generate, NULL, concurrent};
    serve_model *m = NULL;
    if (serve_model_from_push(&m, &b) != RL_OK) return NULL;
    return m;
}

TEST(push_adapter_streams_exact_bytes) {
    fake_sampler f;
    serve_model *m = push_model(&f, 0);
    REQUIRE(m);
    EXPECT_STREQ(m->identity, "fake:1");
    EXPECT(!m->is_dummy);
    serve_turn t[1] = {{"user", "h\xC3\xA9llo w\xC3\xB6rld"}};
    serve_gen_params p = params(1, 15);
    char *text;
    REQUIRE(serve_generate(m, t, 1, &p, NULL, &text) == RL_OK);
    EXPECT_STREQ(text, "h\xC3\xA9llo w\xC3\xB6rld!!"); /* 13 bytes echoed + 2 fillers = 15 */
    free(text);
    serve_model_close(m);
    pthread_mutex_destroy(&f.mu);
}

TEST(push_adapter_stop_cancels_the_sampler) {
    fake_sampler f;
    serve_model *m = push_model(&f, 0);
    REQUIRE(m);
    serve_turn t[1] = {{"user", "x"}};
    serve_gen_params p = params(1, 100000);
    void *st;
    REQUIRE(m->start(m, t, 1, &p, &st) == RL_OK);
    char buf[16];
    size_t n;
    for (int i = 0; i < 5; i++) EXPECT(m->next(st, buf, sizeof buf, &n) == 1);
    m->stop(st); /* joins the worker: returns only once generate() returned */
    EXPECT(f.running == 0);
    EXPECT(f.emitted < 1000);
    serve_model_close(m);
    pthread_mutex_destroy(&f.mu);
}

typedef struct { serve_model *m; char *text; } gen_job;
static void *gen_thread(void *arg) {
    gen_job *j = arg;
    serve_turn t[1] = {{"user", "abc"}};
    serve_gen_params p = params(1, 20);
    if (serve_generate(j->m, t, 1, &p, NULL, &j->text) != RL_OK) j->text = NULL;
    return NULL;
}

TEST(push_adapter_serialises_a_non_concurrent_model) {
    for (int concurrent = 0; concurrent <= 1; concurrent++) {
        fake_sampler f;
        serve_model *m = push_model(&f, concurrent);
        REQUIRE(m);
        gen_job jobs[3];
        pthread_t th[3];
        for (int i = 0; i < 3; i++) { jobs[i].m = m; jobs[i].text = NULL; pthread_create(&th[i], NULL, gen_thread, &jobs[i]); }
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            EXPECT(jobs[i].text && !strcmp(jobs[i].text, "abc!!!!!!!!!!!!!!!!!"));
            free(jobs[i].text);
        }
        if (!concurrent) EXPECT(f.max_running == 1);
        else EXPECT(f.max_running >= 1);
        serve_model_close(m);
        pthread_mutex_destroy(&f.mu);
    }
}

TEST(push_adapter_reports_sampler_errors) {
    fake_sampler f;
    serve_model *m = push_model(&f, 0);
    REQUIRE(m);
    f.fail = 1;
    serve_turn t[1] = {{"user", "abcdef"}};
    serve_gen_params p = params(1, 10);
    char *text = NULL;
    EXPECT(serve_generate(m, t, 1, &p, NULL, &text) != RL_OK);
    EXPECT(text == NULL);
    void *st;
    REQUIRE(m->start(m, t, 1, &p, &st) == RL_OK);
    char buf[8];
    size_t n;
    int rc, got = 0;
    while ((rc = m->next(st, buf, sizeof buf, &n)) == 1) got += (int)n;
    EXPECT(rc == -1);
    EXPECT(got == 3);
    EXPECT(strstr(rl_error(), "fake sampler broke at token 3") != NULL);
    m->stop(st);
    serve_model_close(m);
    pthread_mutex_destroy(&f.mu);
}

/* ---- the GPT checkpoint backend ------------------------------------------------- */

/* A tokenizer and a random tiny GPT saved as checkpoints: lm (and reward). */
static tok_tokenizer *tiny_tok(void) {
    const char *text = "hello there how are you say the word please hello hello there";
    size_t len = strlen(text);
    tok_train_opts o = {270, 1, 0};
    tok_tokenizer *t = NULL;
    if (tok_train(&t, &text, &len, 1, &o) != RL_OK) return NULL;
    return t;
}

static int save_tiny(const char *path, const tok_tokenizer *t, const char *kind) {
    gpt_model m;
    gpt_config cfg = {1, 2, 16, tok_vocab_size(t), 64};
    if (gpt_init(&m, &cfg, 1, 8, ops_get("fast"), 3) != RL_OK) return 0;
    char tid[65];
    tok_identity(t, tid);
    ckpt_meta meta = {0};
    ckpt_meta_set(&meta, "kind", kind);
    rl_status s = ckpt_save_meta(path, &m, tid, NULL, NULL, &meta);
    gpt_free(&m);
    return s == RL_OK;
}

TEST(gpt_backend_generates_deterministically_stops_and_refuses_reward) {
    tok_tokenizer *t = tiny_tok();
    REQUIRE(t);
    char lm[64], rw[64];
    snprintf(lm, sizeof lm, "/tmp/rlhf_test_gen_lm_%d.ckpt", (int)getpid());
    snprintf(rw, sizeof rw, "/tmp/rlhf_test_gen_rw_%d.ckpt", (int)getpid());
    REQUIRE(save_tiny(lm, t, "lm") && save_tiny(rw, t, "reward"));
    serve_model *m = NULL;
    EXPECT(serve_gpt_open(&m, rw, t) == RL_EINVAL);
    EXPECT(strstr(rl_error(), "'reward' checkpoint") != NULL);
    EXPECT(m == NULL);
    EXPECT(serve_gpt_open(&m, lm, NULL) == RL_EINVAL);
    /* through the registered backend, as `rlhf serve` opens it */
    serve_gpt_register(t);
    REQUIRE(serve_model_open(&m, lm, 0) == RL_OK);
    EXPECT(!m->is_dummy);
    EXPECT_STREQ(m->kind, "gpt");
    EXPECT(strncmp(m->identity, lm, strlen(lm)) == 0 && m->identity[strlen(lm)] == '#' && strlen(m->identity) == strlen(lm) + 17);
    serve_turn turns[3] = {{"user", "hello"}, {"assistant", "there"}, {"user", "say <|end|> the word"}};
    serve_gen_params p = params(11, 40);
    char *a = NULL, *b = NULL, *c = NULL;
    REQUIRE(serve_generate(m, turns, 3, &p, NULL, &a) == RL_OK);
    REQUIRE(serve_generate(m, turns, 3, &p, NULL, &b) == RL_OK);
    EXPECT_STREQ(a, b);                 /* same seed, same answer */
    EXPECT(text_utf8_valid(a, strlen(a), 1));
    p.seed = 12;
    REQUIRE(serve_generate(m, turns, 3, &p, NULL, &c) == RL_OK);
    EXPECT(strcmp(a, c) != 0);          /* another seed, (almost surely) another answer */
    free(a); free(b); free(c);
    /* Stop after two pieces: stop() returns (the sampler saw the cancel) */
    p = params(5, 1000);
    void *st = NULL;
    REQUIRE(m->start(m, turns, 3, &p, &st) == RL_OK);
    char buf[64];
    size_t n;
    int got = 0;
    for (int i = 0; i < 2; i++) got += m->next(st, buf, sizeof buf, &n) == 1;
    m->stop(st);
    EXPECT(got == 2);
    serve_model_close(m);
    serve_set_checkpoint_backend(NULL);
    tok_free(t);
    unlink(lm);
    unlink(rw);
}

TEST_MAIN()

/* serve.c — `rlhf serve`, `rlhf annotators ...`, `rlhf feedback export`.
 * Thin: flags in, library calls, exit code out. The logic lives in src/serve. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "../src/base/binfile.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/serve/gen_gpt.h"
#include "../src/serve/server.h"
#include "../src/serve/store.h"

static int open_db(store **s, const char *path, const char *sync) {
    store_opts o = {0};
    o.sync = sync && !strcmp(sync, "normal") ? STORE_SYNC_NORMAL : STORE_SYNC_FULL;
    if (store_open(s, path, &o) != RL_OK) {
        fprintf(stderr, "rlhf: cannot use the feedback database: %s\n", rl_error());
        return 0;
    }
    return 1;
}

int cmd_serve(int argc, char **argv) {
    static const char *db_path, *host, *public_origin, *port_file, *sync, *tokp;
    static const char *vk, *kf, *pe;
    static rl_strlist models, runs;
    static int port, threads, open_mode, max_body, delay_ms;
    static double rate, burst, hours;
    rl_flag flags[] = {
        {"db", RL_FLAG_STRING, &db_path, NULL, 0, 0, NULL, "feedback database (SQLite; created if missing)"},
        {"model", RL_FLAG_STRINGS, &models, "", 0, 0, NULL,
         "model to serve (repeatable): a GPT checkpoint, or 'dummy' / 'dummy:NAME' (built-in echo generator, not a trained model; the default)"},
        {"tokenizer", RL_FLAG_STRING, &tokp, "", 0, 0, NULL, "tokenizer file of the checkpoints (needed when a --model is a checkpoint)"},
        {"host", RL_FLAG_STRING, &host, "127.0.0.1", 0, 0, NULL, "IPv4 address to listen on (loopback by default)"},
        {"port", RL_FLAG_INT, &port, "8080", 0, 65535, NULL, "TCP port (0 = any free port; see --port-file)"},
        {"port-file", RL_FLAG_STRING, &port_file, "", 0, 0, NULL, "write the bound port to this file once listening"},
        {"threads", RL_FLAG_INT, &threads, "4", 1, 256, NULL, "libmicrohttpd thread pool size"},
        {"open-mode", RL_FLAG_BOOL, &open_mode, "0", 0, 0, NULL, "single local user: log in without a token as operator 'local'"},
        {"max-body", RL_FLAG_INT, &max_body, "65536", 1024, 16 << 20, NULL, "largest request body in bytes (bigger: 413)"},
        {"rate", RL_FLAG_FLOAT, &rate, "10", 0.01, 1e6, NULL, "writes per second per annotator (token bucket; more: 429)"},
        {"burst", RL_FLAG_FLOAT, &burst, "40", 1, 1e6, NULL, "token bucket size for --rate"},
        {"session-hours", RL_FLAG_FLOAT, &hours, "12", 0.01, 24 * 90, NULL, "login session lifetime"},
        {"public-origin", RL_FLAG_STRING, &public_origin, "", 0, 0, NULL, "extra allowed origin when behind a proxy, e.g. https://label.example.org"},
        {"dummy-delay-ms", RL_FLAG_INT, &delay_ms, "30", 0, 5000, NULL, "pause between pieces of the dummy generator when streaming"},
        {"runs", RL_FLAG_STRINGS, &runs, "", 0, 0, NULL, "JSONL metric logs of training runs to plot on the operator page"},
        {"sync", RL_FLAG_ENUM, &sync, "full", 0, 0, "full|normal", "SQLite synchronous: full = fsync every commit (survives power loss)"},
        CLI_CKPT_LOAD_FLAGS(vk, kf, pe),
    };
    int rc = rl_flags_parse("serve", "Run the feedback web app: people chat with the model, give thumbs, compare and rank answers.",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    if (cli_ckpt_security("serve", NULL, vk, kf, pe, 0)) return 1;
    int any_ckpt = 0;
    for (int i = 0; i < models.n; i++) any_ckpt |= strcmp(models.v[i], "dummy") && strncmp(models.v[i], "dummy:", 6);
    if (any_ckpt && !*tokp) { fprintf(stderr, "rlhf serve: a checkpoint --model needs --tokenizer (the model's tokenizer file)\n"); return 2; }
    tok_tokenizer *tok = NULL;
    if (*tokp) {
        if (tok_load(&tok, tokp) != RL_OK) { fprintf(stderr, "rlhf serve: --tokenizer %s: %s\n", tokp, rl_error()); return 1; }
        serve_gpt_register(tok);
    }

    store *db = NULL;
    serve_model *ms[RL_STRLIST_MAX];
    int nm = 0, status = 0;
    const char *def[1] = {"dummy"};
    const char *const *specs = models.n ? models.v : def;
    int nspec = models.n ? models.n : 1;
    for (int i = 0; i < nspec; i++) {
        if (serve_model_open(&ms[nm], specs[i], delay_ms) != RL_OK) {
            fprintf(stderr, "rlhf serve: --model %s: %s\n", specs[i], rl_error());
            status = 1;
            break;
        }
        nm++;
    }
    /* The database is opened once the models are: a refused --model leaves no new file. */
    if (!status && !open_db(&db, db_path, sync)) status = 1;
    /* Block the stop signals before the server threads start, so they
     * inherit the mask and only this thread receives them (sigwait below). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    serve_server *srv = NULL;
    if (!status) {
        serve_config cfg = serve_config_default();
        cfg.db = db;
        cfg.models = ms;
        cfg.nmodels = nm;
        cfg.host = host;
        cfg.port = port;
        cfg.threads = threads;
        cfg.open_mode = open_mode;
        cfg.max_body = (size_t)max_body;
        cfg.rate = rate;
        cfg.burst = burst;
        cfg.session_hours = hours;
        cfg.public_origin = *public_origin ? public_origin : NULL;
        cfg.runs = runs.v;
        cfg.nruns = runs.n;
        if (serve_start(&srv, &cfg) != RL_OK) {
            fprintf(stderr, "rlhf serve: %s\n", rl_error());
            status = 1;
        }
    }
    if (!status) {
        int p = serve_port(srv);
        fprintf(stderr, "rlhf serve: listening on http://%s:%d/ (database %s)\n", strcmp(host, "localhost") ? host : "127.0.0.1", p, db_path);
        for (int i = 0; i < nm; i++)
            fprintf(stderr, "  model %d: %s%s\n", i, ms[i]->identity, ms[i]->is_dummy ? "  [dummy echo generator: not a trained model]" : "");
        if (open_mode) fprintf(stderr, "  open mode: anyone who can reach the port logs in as operator 'local'\n");
        if (*port_file) {
            char txt[16];
            int n = snprintf(txt, sizeof txt, "%d\n", p);
            if (rl_atomic_write(port_file, txt, (size_t)n) != RL_OK) rl_warn("cannot write --port-file: %s", rl_error());
        }
        int sig = 0;
        sigwait(&set, &sig);
        fprintf(stderr, "rlhf serve: %s received, finishing open requests\n", sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP");
        serve_stop(srv);
        int64_t n = 0;
        if (store_judgement_count(db, &n) == RL_OK) fprintf(stderr, "rlhf serve: stopped; %lld judgements in %s\n", (long long)n, db_path);
    }
    for (int i = 0; i < nm; i++) serve_model_close(ms[i]);
    store_close(db);
    serve_set_checkpoint_backend(NULL);
    tok_free(tok);
    return status;
}

int cmd_annotators_add(int argc, char **argv) {
    static const char *db_path, *name;
    static rl_strlist groups;
    static int op;
    rl_flag flags[] = {
        {"db", RL_FLAG_STRING, &db_path, NULL, 0, 0, NULL, "feedback database (created if missing)"},
        {"name", RL_FLAG_STRING, &name, NULL, 0, 0, NULL, "annotator name (unique)"},
        {"group", RL_FLAG_STRINGS, &groups, "", 0, 0, NULL, "a group the annotator belongs to (repeatable)"},
        {"operator", RL_FLAG_BOOL, &op, "0", 0, 0, NULL, "operator role: may see the operator view"},
    };
    int rc = rl_flags_parse("annotators add", "Create an annotator and print their access token (shown once; only a hash is stored).",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    store *db;
    if (!open_db(&db, db_path, "full")) return 1;
    char token[STORE_TOKEN_MAX];
    int64_t id;
    rl_status s = store_annotator_add(db, name, op ? STORE_ROLE_OPERATOR : STORE_ROLE_ANNOTATOR, groups.v, groups.n, token, &id);
    store_close(db);
    if (s != RL_OK) {
        fprintf(stderr, "rlhf annotators add: %s\n", rl_error());
        return s == RL_EINVAL ? 2 : 1;
    }
    fprintf(stderr, "annotator %lld '%s' created (%s). The token below is shown only once: hand it to them now.\n", (long long)id, name,
            op ? "operator" : "annotator");
    printf("%s\n", token);
    return 0;
}

static void print_annotator(void *user, const store_annotator *a, const char *groups) {
    char when[32];
    time_t t = (time_t)a->created;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%lld\t%s\t%s\t%s\t%s\n", (long long)a->id, a->name, a->role == STORE_ROLE_OPERATOR ? "operator" : "annotator",
           *groups ? groups : "-", when);
    (*(int *)user)++;
}

int cmd_annotators_list(int argc, char **argv) {
    static const char *db_path;
    rl_flag flags[] = {{"db", RL_FLAG_STRING, &db_path, NULL, 0, 0, NULL, "feedback database"}};
    int rc = rl_flags_parse("annotators list", "List annotators: id, name, role, groups, created (tab-separated).", flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    store *db;
    if (!open_db(&db, db_path, "full")) return 1;
    int n = 0;
    printf("id\tname\trole\tgroups\tcreated\n");
    rl_status s = store_annotator_each(db, print_annotator, &n);
    store_close(db);
    if (s != RL_OK) { fprintf(stderr, "rlhf annotators list: %s\n", rl_error()); return 1; }
    return 0;
}

int cmd_annotators_question(int argc, char **argv) {
    static const char *db_path, *key, *text, *choices;
    rl_flag flags[] = {
        {"db", RL_FLAG_STRING, &db_path, NULL, 0, 0, NULL, "feedback database"},
        {"key", RL_FLAG_STRING, &key, NULL, 0, 0, NULL, "short key, e.g. age_band (exported in groups)"},
        {"text", RL_FLAG_STRING, &text, NULL, 0, 0, NULL, "the question as annotators see it"},
        {"choices", RL_FLAG_STRING, &choices, "", 0, 0, NULL, "allowed answers separated by '|' (empty: free text)"},
    };
    int rc = rl_flags_parse("annotators question",
                            "Add or change an optional profile question. Annotators may answer on /profile; answers are stored only with their consent.",
                            flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    store *db;
    if (!open_db(&db, db_path, "full")) return 1;
    rl_status s = store_question_set(db, key, text, *choices ? choices : NULL);
    store_close(db);
    if (s != RL_OK) { fprintf(stderr, "rlhf annotators question: %s\n", rl_error()); return s == RL_EINVAL ? 2 : 1; }
    return 0;
}

int cmd_feedback_export_db(int argc, char **argv) {
    static const char *db_path, *format, *out;
    rl_flag flags[] = {
        {"db", RL_FLAG_STRING, &db_path, NULL, 0, 0, NULL, "feedback database"},
        {"format", RL_FLAG_ENUM, &format, "jsonl", 0, 0, "jsonl|hh", "jsonl: every judgement (docs/formats-serve.md); hh: strict pairs as HH-RLHF"},
        {"out", RL_FLAG_STRING, &out, NULL, 0, 0, NULL, "output file ('-' = stdout); written atomically"},
    };
    int rc = rl_flags_parse("feedback export", "Write every judgement with its prompt, responses, annotator and groups.", flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    store *db;
    if (!open_db(&db, db_path, "full")) return 1;
    store_export_format f = !strcmp(format, "hh") ? STORE_EXPORT_HH : STORE_EXPORT_JSONL;
    int64_t written = 0, skipped = 0;
    rl_status s;
    if (!strcmp(out, "-")) {
        s = store_export(db, f, stdout, &written, &skipped);
        if (s == RL_OK && fflush(stdout)) s = rl_fail(RL_EIO, "writing stdout failed");
    } else {
        rl_atomic_file af;
        s = rl_atomic_open(&af, out);
        if (s == RL_OK) {
            s = store_export(db, f, af.fp, &written, &skipped);
            if (s == RL_OK) s = rl_atomic_commit(&af);
            else rl_atomic_abort(&af);
        }
    }
    store_close(db);
    if (s != RL_OK) { fprintf(stderr, "rlhf feedback export: %s\n", rl_error()); return 1; }
    fprintf(stderr, "feedback export: %lld lines written", (long long)written);
    if (skipped) fprintf(stderr, ", %lld judgements skipped (no %s form: thumbs, ratings, ties and both-bad)", (long long)skipped, format);
    fprintf(stderr, "\n");
    return 0;
}

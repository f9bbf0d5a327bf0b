/* obj_ref — runs src/train/objectives.c on fixed inputs for tests/ref/test_objectives.py.
 *
 *   build/tools/obj_ref IN OUT
 *
 * IN is text, one or more cases:
 *   case OP
 *   p NAME VALUE            scalar parameter (double)
 *   f NAME N v1 ... vN      float32 array (parsed with strtof: exact round trip)
 *   i NAME N v1 ... vN      int array
 *   end
 * OUT has the same shape, one block per case: `s NAME VALUE` for scalars
 * (%.17g) and `f NAME N ...` for arrays (%.9g, exact for float32). Absent
 * optional arrays are passed as NULL. Exit 1 with a message on malformed input.
 */
#include "../../src/train/objectives.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define MAXA 48

typedef struct {
    char name[32];
    int n, is_int;
    float *f;
    int32_t *i;
} arr;

typedef struct {
    char op[32];
    arr a[MAXA];
    int na;
    char pname[MAXA][32];
    double pval[MAXA];
    int np;
} kase;

static void die(const char *msg, const char *what) {
    fprintf(stderr, "obj_ref: %s%s%s\n", msg, what ? ": " : "", what ? what : "");
    exit(1);
}

static arr *find(kase *k, const char *name) {
    for (int j = 0; j < k->na; j++) if (!strcmp(k->a[j].name, name)) return &k->a[j];
    return NULL;
}
static float *F(kase *k, const char *name) { arr *a = find(k, name); return a ? a->f : NULL; }
static float *Freq(kase *k, const char *name) { float *f = F(k, name); if (!f) die("missing float array", name); return f; }
static int32_t *Ireq(kase *k, const char *name) {
    arr *a = find(k, name);
    if (!a || !a->is_int) die("missing int array", name);
    return a->i;
}
static int N(kase *k, const char *name) { arr *a = find(k, name); if (!a) die("missing array", name); return a->n; }
static double P(kase *k, const char *name, double def) {
    for (int j = 0; j < k->np; j++) if (!strcmp(k->pname[j], name)) return k->pval[j];
    return def;
}
static double Preq(kase *k, const char *name) {
    for (int j = 0; j < k->np; j++) if (!strcmp(k->pname[j], name)) return k->pval[j];
    die("missing parameter", name);
    return 0;
}

static FILE *out;
static void S(const char *name, double v) { fprintf(out, "s %s %.17g\n", name, v); }
static void A(const char *name, const float *x, long n) {
    fprintf(out, "f %s %ld", name, n);
    for (long j = 0; j < n; j++) fprintf(out, " %.9g", x[j]);
    fputc('\n', out);
}
static float *zeros(long n) { float *x = calloc(n ? n : 1, sizeof(float)); if (!x) die("out of memory", NULL); return x; }
/* Gradient buffer for logits: a copy of `init` (to test accumulation) or zeros. */
static float *start_grad(kase *k, const char *init, long n) {
    float *g = zeros(n), *s = F(k, init);
    if (s) memcpy(g, s, n * sizeof(float));
    return g;
}

static void pref_stats_out(const obj_pref_stats *st) {
    S("st_loss", st->loss); S("reward_chosen", st->reward_chosen); S("reward_rejected", st->reward_rejected);
    S("margin", st->margin); S("accuracy", st->accuracy); S("logp_chosen", st->logp_chosen);
    S("logp_rejected", st->logp_rejected); S("nll", st->nll);
}

static obj_pref_batch pref_batch(kase *k) {
    obj_pref_batch b;
    b.pol_chosen = Freq(k, "pc"); b.pol_rejected = Freq(k, "pr");
    b.ref_chosen = F(k, "rc"); b.ref_rejected = F(k, "rr");
    b.len_chosen = F(k, "lc"); b.len_rejected = F(k, "lr");
    b.weight = F(k, "w");
    b.N = N(k, "pc");
    return b;
}

static void run(kase *k) {
    const char *op = k->op;
    fprintf(out, "case %s\n", op);
    if (!strcmp(op, "xent") || !strcmp(op, "logprobs") || !strcmp(op, "entropy")) {
        int B = (int)Preq(k, "B"), T = (int)Preq(k, "T"), V = (int)Preq(k, "V"), Vp = (int)P(k, "Vp", V);
        long n = (long)B * T * Vp;
        float *logits = Freq(k, "logits");
        if (N(k, "logits") != n) die("logits size is not B*T*Vp", op);
        float *dl = start_grad(k, "dlogits0", n), *per = zeros((long)B * T);
        if (!strcmp(op, "xent")) {
            double L = obj_token_xent(logits, Ireq(k, "targets"), F(k, "w"), B, T, V, Vp,
                                      (float)P(k, "dloss", 1.0), dl, per);
            S("loss", L); A("dlogits", dl, n); A("losses", per, (long)B * T);
        } else if (!strcmp(op, "logprobs")) {
            obj_token_logprobs(logits, Ireq(k, "targets"), B, T, V, Vp, per);
            obj_token_logprobs_backward(logits, Ireq(k, "targets"), Freq(k, "dlogp"), B, T, V, Vp, dl);
            A("logp", per, (long)B * T); A("dlogits", dl, n);
        } else {
            double H = obj_entropy(logits, F(k, "mask"), B, T, V, Vp, (float)P(k, "dloss", 1.0), dl, per);
            S("loss", H); A("dlogits", dl, n); A("ent", per, (long)B * T);
        }
        free(dl); free(per);
    } else if (!strcmp(op, "seq")) {
        int B = (int)Preq(k, "B"), T = (int)Preq(k, "T");
        float *s = zeros(B), *len = zeros(B), *d = zeros((long)B * T);
        obj_seq_logprobs(Freq(k, "logp"), F(k, "mask"), B, T, s, len);
        obj_seq_logprobs_backward(Freq(k, "dseq"), F(k, "mask"), B, T, d);
        A("seq", s, B); A("len", len, B); A("dlogp", d, (long)B * T);
        free(s); free(len); free(d);
    } else if (!strcmp(op, "bt")) {
        int n = N(k, "rc");
        float *dc = zeros(n), *dr = zeros(n);
        S("loss", obj_bt_loss(Freq(k, "rc"), Freq(k, "rr"), F(k, "margin"), F(k, "w"), n, P(k, "center", 0), dc, dr));
        S("acc", obj_pair_accuracy(Freq(k, "rc"), Freq(k, "rr"), F(k, "w"), n));
        A("dc", dc, n); A("dr", dr, n);
        free(dc); free(dr);
    } else if (!strcmp(op, "davidson")) {
        int n = N(k, "ra");
        int32_t *lab = Ireq(k, "label");
        int8_t *l8 = malloc(n);
        for (int j = 0; j < n; j++) l8[j] = (int8_t)lab[j];
        float *da = zeros(n), *db = zeros(n);
        double dnu = 0;
        S("loss", obj_davidson_loss(Freq(k, "ra"), Freq(k, "rb"), l8, F(k, "w"), n, Preq(k, "nu"), da, db, &dnu));
        S("dlognu", dnu); A("da", da, n); A("db", db, n);
        free(l8); free(da); free(db);
    } else if (!strcmp(op, "rank_pairs") || !strcmp(op, "pl")) {
        int Pn = (int)Preq(k, "P"), K = (int)Preq(k, "K");
        float *d = zeros((long)Pn * K);
        double L = !strcmp(op, "pl")
            ? obj_plackett_luce_loss(Freq(k, "r"), Ireq(k, "rank"), F(k, "w"), Pn, K, (int)P(k, "top", 0), d)
            : obj_rank_pairs_loss(Freq(k, "r"), Ireq(k, "rank"), F(k, "w"), Pn, K, d);
        S("loss", L); A("d", d, (long)Pn * K);
        free(d);
    } else if (!strcmp(op, "thumbs")) {
        int n = N(k, "r");
        float *d = zeros(n);
        double db = 0;
        S("loss", obj_thumbs_loss(Freq(k, "r"), Freq(k, "y"), F(k, "w"), n, P(k, "bias", 0), d, &db));
        S("dbias", db); A("d", d, n);
        free(d);
    } else if (!strcmp(op, "ece")) {
        int n = N(k, "p"), nb = (int)Preq(k, "nbins");
        float *bp = zeros(nb), *bl = zeros(nb), *bw = zeros(nb);
        S("ece", obj_ece(Freq(k, "p"), Freq(k, "y"), F(k, "w"), n, nb, bp, bl, bw));
        A("bin_prob", bp, nb); A("bin_label", bl, nb); A("bin_weight", bw, nb);
        S("pair_ece", obj_pair_ece(Freq(k, "rc"), Freq(k, "rr"), F(k, "w2"), N(k, "rc"), nb, NULL, NULL, NULL));
        free(bp); free(bl); free(bw);
    } else if (!strcmp(op, "dpo") || !strcmp(op, "orpo") || !strcmp(op, "simpo")) {
        obj_pref_batch b = pref_batch(k);
        float *dc = zeros(b.N), *dr = zeros(b.N);
        obj_pref_stats st;
        double L;
        if (!strcmp(op, "dpo"))
            L = obj_dpo_loss(&b, (obj_dpo_type)(int)Preq(k, "type"), Preq(k, "beta"), P(k, "eps", 0),
                             (int)P(k, "per_token", 0), dc, dr, &st);
        else if (!strcmp(op, "orpo"))
            L = obj_orpo_loss(&b, Preq(k, "beta"), dc, dr, &st);
        else
            L = obj_simpo_loss(&b, Preq(k, "beta"), Preq(k, "gamma"), dc, dr, &st);
        S("loss", L); A("dc", dc, b.N); A("dr", dr, b.N); pref_stats_out(&st);
        free(dc); free(dr);
    } else if (!strcmp(op, "kto")) {
        int n = N(k, "pol");
        int32_t *des = Ireq(k, "des");
        uint8_t *d8 = malloc(n);
        for (int j = 0; j < n; j++) d8[j] = (uint8_t)(des[j] != 0);
        double z0 = obj_kto_kl_estimate(Freq(k, "pol_mm"), Freq(k, "ref_mm"), N(k, "pol_mm"));
        float *d = zeros(n);
        obj_pref_stats st;
        double L = obj_kto_loss(Freq(k, "pol"), Freq(k, "ref"), d8, F(k, "w"), n, Preq(k, "beta"), z0,
                                P(k, "ld", 1), P(k, "lu", 1), d, &st);
        S("loss", L); S("z0", z0); A("d", d, n); pref_stats_out(&st);
        free(d8); free(d);
    } else if (!strcmp(op, "kl")) {
        int n = N(k, "logp");
        float *kl = zeros(n), *dkl = zeros(n);
        obj_kl_per_token(Freq(k, "logp"), Freq(k, "ref"), n, (obj_kl_type)(int)Preq(k, "type"), kl, dkl);
        A("kl", kl, n); A("dkl", dkl, n);
        free(kl); free(dkl);
    } else if (!strcmp(op, "shape")) {
        int B = (int)Preq(k, "B"), T = (int)Preq(k, "T");
        float *r = zeros((long)B * T);
        obj_shape_rewards(Freq(k, "score"), Freq(k, "kl"), F(k, "mask"), B, T, Preq(k, "beta"), P(k, "clip", 0), r);
        A("rewards", r, (long)B * T);
        free(r);
    } else if (!strcmp(op, "gae")) {
        int B = (int)Preq(k, "B"), T = (int)Preq(k, "T");
        float *a = zeros((long)B * T), *r = zeros((long)B * T), *wh = zeros((long)B * T);
        obj_gae(Freq(k, "rewards"), Freq(k, "values"), F(k, "mask"), B, T, Preq(k, "gamma"), Preq(k, "lam"), a, r);
        double sd = obj_whiten(a, F(k, "mask"), B * T, 1, wh);
        A("adv", a, (long)B * T); A("returns", r, (long)B * T); A("white", wh, (long)B * T); S("std", sd);
        obj_whiten(Freq(k, "rewards"), F(k, "mask"), B * T, 0, wh);
        A("white_noshift", wh, (long)B * T);
        free(a); free(r); free(wh);
    } else if (!strcmp(op, "ppo") || !strcmp(op, "grpo")) {
        int B = (int)Preq(k, "B"), T = (int)Preq(k, "T");
        float *d = zeros((long)B * T);
        obj_pg_stats st;
        double L = (!strcmp(op, "ppo") ? obj_ppo_policy_loss : obj_grpo_loss)(
            Freq(k, "logp"), Freq(k, "old"), F(k, "ref"), Freq(k, "adv"), F(k, "mask"), B, T,
            Preq(k, "eps_low"), Preq(k, "eps_high"), P(k, "beta", 0), (obj_agg)(int)P(k, "agg", 0), d, &st);
        S("loss", L); A("dlogp", d, (long)B * T);
        S("pg_loss", st.pg_loss); S("kl", st.kl); S("clipfrac", st.clipfrac);
        S("approx_kl", st.approx_kl); S("ratio_mean", st.ratio_mean);
        free(d);
    } else if (!strcmp(op, "value")) {
        int n = N(k, "v");
        float *d = zeros(n);
        obj_vf_stats st;
        S("loss", obj_value_loss(Freq(k, "v"), Freq(k, "old"), Freq(k, "ret"), F(k, "mask"), n, Preq(k, "clip"), d, &st));
        S("clipfrac", st.clipfrac); S("ev", st.explained_var); A("dv", d, n);
        free(d);
    } else if (!strcmp(op, "adv")) {
        int Pn = (int)Preq(k, "P"), K = (int)Preq(k, "K");
        float *a = zeros((long)Pn * K);
        obj_rloo_advantages(Freq(k, "r"), Pn, K, a); A("rloo", a, (long)Pn * K);
        obj_grpo_advantages(Freq(k, "r"), Pn, K, 1, P(k, "eps", 1e-4), a); A("grpo", a, (long)Pn * K);
        obj_grpo_advantages(Freq(k, "r"), Pn, K, 0, 0, a); A("grpo_noscale", a, (long)Pn * K);
        free(a);
    } else if (!strcmp(op, "klctl")) {
        obj_kl_ctl c = {Preq(k, "beta"), Preq(k, "target"), Preq(k, "horizon"), (int)Preq(k, "adaptive")};
        int n = N(k, "kls");
        float *betas = zeros(n), *kls = Freq(k, "kls");
        for (int j = 0; j < n; j++) betas[j] = (float)obj_kl_ctl_update(&c, kls[j], Preq(k, "n_steps"));
        S("beta", c.beta); A("betas", betas, n);
        free(betas);
    } else if (!strcmp(op, "bon")) {
        S("kl", obj_bon_kl((int)Preq(k, "n")));
    } else {
        die("unknown op", op);
    }
    fprintf(out, "end\n");
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: obj_ref IN OUT\n"); return 2; }
    FILE *in = fopen(argv[1], "r");
    if (!in) die("cannot open input", argv[1]);
    out = fopen(argv[2], "w");
    if (!out) die("cannot open output", argv[2]);
    kase k;
    memset(&k, 0, sizeof k);
    int in_case = 0;
    char tag[8];
    while (fscanf(in, "%7s", tag) == 1) {
        if (!strcmp(tag, "case")) {
            if (in_case) die("case inside case", NULL);
            memset(&k, 0, sizeof k);
            if (fscanf(in, "%31s", k.op) != 1) die("case without op", NULL);
            in_case = 1;
        } else if (!strcmp(tag, "p")) {
            if (k.np >= MAXA) die("too many parameters", k.op);
            if (fscanf(in, "%31s %lf", k.pname[k.np], &k.pval[k.np]) != 2) die("bad parameter line", k.op);
            k.np++;
        } else if (!strcmp(tag, "f") || !strcmp(tag, "i")) {
            if (k.na >= MAXA) die("too many arrays", k.op);
            arr *a = &k.a[k.na++];
            if (fscanf(in, "%31s %d", a->name, &a->n) != 2 || a->n < 0) die("bad array header", k.op);
            a->is_int = tag[0] == 'i';
            a->f = calloc(a->n ? a->n : 1, sizeof(float));
            a->i = calloc(a->n ? a->n : 1, sizeof(int32_t));
            char buf[64];
            for (int j = 0; j < a->n; j++) {
                if (fscanf(in, "%63s", buf) != 1) die("short array", a->name);
                char *e;
                if (a->is_int) { a->i[j] = (int32_t)strtol(buf, &e, 10); a->f[j] = (float)a->i[j]; }
                else a->f[j] = strtof(buf, &e);
                if (*e) die("bad number in array", a->name);
            }
        } else if (!strcmp(tag, "end")) {
            if (!in_case) die("end without case", NULL);
            run(&k);
            for (int j = 0; j < k.na; j++) { free(k.a[j].f); free(k.a[j].i); }
            in_case = 0;
        } else {
            die("unknown line tag", tag);
        }
    }
    fclose(in);
    if (fclose(out) != 0) die("write failed", argv[2]);
    return 0;
}

/* diag.c — `rlhf diag fit`: Gao et al. over-optimisation fits from a metrics log (src/diag). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../src/base/flags.h"
#include "../src/base/log.h"
#include "../src/diag/diag.h"

int cmd_diag_fit(int argc, char **argv) {
    static const char *metrics, *form, *kl_key, *gold_key;
    rl_flag flags[] = {
        {"metrics", RL_FLAG_STRING, &metrics, NULL, 0, 0, NULL, "JSONL log whose rows hold KL and gold reward (rows missing either are skipped)"},
        {"form", RL_FLAG_ENUM, &form, "rl", 0, 0, "rl|bon", "rl: d(alpha - beta ln d); bon: d(alpha - beta d)"},
        {"kl-key", RL_FLAG_STRING, &kl_key, "kl", 0, 0, NULL, "field holding KL(pi || pi_ref) in nats"},
        {"gold-key", RL_FLAG_STRING, &gold_key, "gold", 0, 0, NULL, "field holding the gold (or held-out) reward"},
    };
    const char *summary = "Fit Gao et al. (2022) over-optimisation curves to (d = sqrt(KL), gold - gold at the first row) "
                          "and print alpha, beta and the predicted peak as JSON.";
    int rc = rl_flags_parse("diag fit", summary, flags, RL_NFLAGS(flags), argc, argv);
    if (rc != RL_FLAGS_OK) return rc == RL_FLAGS_HELP ? 0 : 2;
    FILE *f = fopen(metrics, "r");
    if (!f) { fprintf(stderr, "rlhf diag fit: cannot open %s\n", metrics); return 1; }
    int cap = 1024, n = 0;
    double *d = malloc((size_t)cap * sizeof *d), *r = malloc((size_t)cap * sizeof *r), gold0 = NAN;
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    int ret = 0;
    while (d && r && getline(&line, &lcap, f) >= 0) {
        lineno++;
        json_t *o = json_loads(line, 0, NULL);
        if (!o) {
            const char *q = line;
            while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') q++;
            if (*q) { fprintf(stderr, "rlhf diag fit: %s:%ld: not JSON\n", metrics, lineno); ret = 1; break; }
            continue;
        }
        json_t *k = json_object_get(o, kl_key), *g = json_object_get(o, gold_key);
        if (json_is_number(k) && json_is_number(g) && json_number_value(k) >= 0) {
            if (n == cap) {
                cap *= 2;
                double *d2 = realloc(d, (size_t)cap * sizeof *d), *r2 = d2 ? realloc(r, (size_t)cap * sizeof *r) : NULL;
                if (d2) d = d2;
                if (r2) r = r2;
                if (!d2 || !r2) { json_decref(o); ret = 1; break; }
            }
            if (!isfinite(gold0)) gold0 = json_number_value(g);
            d[n] = sqrt(json_number_value(k));
            r[n] = json_number_value(g) - gold0;
            n++;
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (!d || !r) { fprintf(stderr, "rlhf diag fit: out of memory\n"); ret = 1; }
    diag_gao_fit fit;
    diag_gao_form fm = !strcmp(form, "bon") ? DIAG_GAO_BON : DIAG_GAO_RL;
    if (!ret && diag_gao_fit_points(fm, d, r, n, &fit) != RL_OK) {
        fprintf(stderr, "rlhf diag fit: %s (%d rows with \"%s\" and \"%s\" in %s)\n", rl_error(), n, kl_key, gold_key, metrics);
        ret = 1;
    }
    if (!ret) {
        json_t *o = json_object();
        json_object_set_new(o, "form", json_string(form));
        json_object_set_new(o, "n", json_integer(fit.n));
        json_object_set_new(o, "alpha", json_real(fit.alpha));
        json_object_set_new(o, "beta", json_real(fit.beta));
        json_object_set_new(o, "d_star", isfinite(fit.d_star) ? json_real(fit.d_star) : json_null());
        json_object_set_new(o, "kl_star", isfinite(fit.d_star) ? json_real(fit.d_star * fit.d_star) : json_null());
        json_object_set_new(o, "r_star", isfinite(fit.r_star) ? json_real(fit.r_star) : json_null());
        json_object_set_new(o, "gold_star", isfinite(fit.r_star) ? json_real(fit.r_star + gold0) : json_null());
        json_object_set_new(o, "gold0", json_real(gold0));
        json_object_set_new(o, "rmse", json_real(fit.rmse));
        json_object_set_new(o, "r2", isfinite(fit.r2) ? json_real(fit.r2) : json_null());
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
        json_decref(o);
        if (s) printf("%s\n", s);
        free(s);
        if (isfinite(fit.d_star))
            rl_info("peak predicted at d* = %.4g (KL %.4g nats), gold %.4g; %d points, r2 %.3f", fit.d_star, fit.d_star * fit.d_star,
                    fit.r_star + gold0, fit.n, fit.r2);
        else rl_info("no peak: beta = %.4g <= 0 (gold still rising with d); %d points", fit.beta, fit.n);
    }
    free(d);
    free(r);
    return ret;
}

/* align_ref.c — runs src/align on numbers from a text file so that
 * tests/ref/test_align.py can compare them with independent numpy code.
 *
 *   align_ref rake FILE   n nvar cap max_iter tol has_base | ncat[nvar] | targets[Σncat] |
 *                         codes[nvar*n] (attribute-major) | base[n] if has_base
 *                         → "report iterations converged max_err n_capped ess deff" then n weights
 *   align_ref ds FILE     n_obs n_items n_annot K smoothing max_iter tol has_init |
 *                         (item annot label)[n_obs] | init[n_items*K] if has_init
 *                         → "ds iterations converged loglik", prior[K], confusion[n_annot*K*K], posterior[n_items*K]
 *   align_ref alpha FILE  ncoders nunits metric(0 nominal,1 ordinal,2 interval,3 ratio) | x[ncoders*nunits] ("nan" = missing)
 *                         → "alpha value d_obs d_exp"
 * Every number is whitespace-separated; output uses %.17g. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "../../src/align/weights.h"
#include "../../src/align/agreement.h"

static FILE *fp;
static double num(void) {
    char tok[64];
    if (fscanf(fp, "%63s", tok) != 1) { fprintf(stderr, "align_ref: input ended early\n"); exit(1); }
    return strtod(tok, NULL); /* "nan" parses as NAN */
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: align_ref rake|ds|alpha FILE\n"); return 2; }
    fp = fopen(argv[2], "r");
    if (!fp) { perror(argv[2]); return 1; }
    if (!strcmp(argv[1], "rake")) {
        int n = (int)num(), nvar = (int)num();
        align_rake_opts o;
        o.cap = num(); o.max_iter = (int)num(); o.tol = num();
        int has_base = (int)num(), tot = 0;
        int *ncat = malloc(sizeof(int) * nvar);
        for (int v = 0; v < nvar; v++) { ncat[v] = (int)num(); tot += ncat[v]; }
        double *T = malloc(sizeof(double) * tot), *base = NULL, *w = malloc(sizeof(double) * n);
        for (int j = 0; j < tot; j++) T[j] = num();
        int *codes = malloc(sizeof(int) * (size_t)nvar * n);
        for (size_t j = 0; j < (size_t)nvar * n; j++) codes[j] = (int)num();
        if (has_base) { base = malloc(sizeof(double) * n); for (int i = 0; i < n; i++) base[i] = num(); }
        align_rake_report r;
        if (align_rake(n, nvar, codes, ncat, T, base, &o, w, &r) != RL_OK) { fprintf(stderr, "align_ref: %s\n", rl_error()); return 1; }
        printf("report %d %d %.17g %d %.17g %.17g\n", r.iterations, r.converged, r.max_margin_err, r.n_capped, r.ess, r.deff);
        for (int i = 0; i < n; i++) printf("%.17g\n", w[i]);
        free(ncat); free(T); free(base); free(w); free(codes);
    } else if (!strcmp(argv[1], "ds")) {
        int n_obs = (int)num(), ni = (int)num(), na = (int)num(), K = (int)num();
        align_ds_opts o;
        o.smoothing = num(); o.max_iter = (int)num(); o.tol = num();
        int has_init = (int)num();
        int *it = malloc(sizeof(int) * n_obs), *an = malloc(sizeof(int) * n_obs), *lb = malloc(sizeof(int) * n_obs);
        for (int j = 0; j < n_obs; j++) { it[j] = (int)num(); an[j] = (int)num(); lb[j] = (int)num(); }
        double *init = NULL;
        if (has_init) { init = malloc(sizeof(double) * (size_t)ni * K); for (size_t j = 0; j < (size_t)ni * K; j++) init[j] = num(); }
        align_ds_result r;
        if (align_dawid_skene(n_obs, it, an, lb, ni, na, K, init, &o, &r) != RL_OK) { fprintf(stderr, "align_ref: %s\n", rl_error()); return 1; }
        printf("ds %d %d %.17g\n", r.iterations, r.converged, r.loglik);
        for (int c = 0; c < K; c++) printf("%.17g\n", r.prior[c]);
        for (size_t j = 0; j < (size_t)na * K * K; j++) printf("%.17g\n", r.confusion[j]);
        for (size_t j = 0; j < (size_t)ni * K; j++) printf("%.17g\n", r.posterior[j]);
        align_ds_free(&r);
        free(it); free(an); free(lb); free(init);
    } else if (!strcmp(argv[1], "alpha")) {
        int nc = (int)num(), nu = (int)num(), m = (int)num();
        double *x = malloc(sizeof(double) * (size_t)nc * nu);
        for (size_t j = 0; j < (size_t)nc * nu; j++) x[j] = num();
        align_alpha_result r;
        if (align_krippendorff_alpha(nc, nu, x, (align_metric)m, &r) != RL_OK) { fprintf(stderr, "align_ref: %s\n", rl_error()); return 1; }
        printf("alpha %.17g %.17g %.17g\n", r.alpha, r.d_obs, r.d_exp);
        free(x);
    } else {
        fprintf(stderr, "align_ref: unknown mode %s\n", argv[1]);
        return 2;
    }
    fclose(fp);
    return 0;
}

/* monitor.c — see monitor.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "monitor.h"

void trn_mon_free(trn_monitor *m) {
    reward_close(m->gold);
    free(m->text); free(m->texts); free(m->scratch); free(m->len); free(m->rew); free(m->gold_score);
    memset(m, 0, sizeof *m);
}

rl_status trn_mon_init(trn_monitor *m, const diag_config *cfg, rl_metrics *log, const tok_tokenizer *tok, reward_fn *proxy,
                       const char *gold_spec, int max_n, int max_T) {
    memset(m, 0, sizeof *m);
    diag_init(&m->dm, cfg, log);
    m->proxy = proxy;
    m->tok = tok;
    m->max_n = max_n;
    m->last_gold = m->last_syc = NAN;
    if (proxy) m->has_range = reward_train_range(proxy, &m->range_lo, &m->range_hi);
    int maxb = 1;
    for (int id = 0; tok && id < tok_vocab_size(tok); id++) {
        int nb;
        tok_token_bytes(tok, id, &nb);
        if (nb > maxb) maxb = nb;
    }
    m->text_cap = (size_t)max_T * maxb + 1;
    m->len = malloc(sizeof(double) * max_n);
    m->rew = malloc(sizeof(double) * max_n);
    m->gold_score = malloc(sizeof(float) * max_n);
    if (tok) {
        m->text = malloc(m->text_cap * max_n);
        m->texts = malloc(sizeof(char *) * max_n);
        m->scratch = malloc(sizeof(uint64_t) * m->text_cap * max_n);
    }
    if (!m->len || !m->rew || !m->gold_score || (tok && (!m->text || !m->texts || !m->scratch))) {
        trn_mon_free(m);
        return rl_fail(RL_ENOMEM, "monitors: out of memory");
    }
    if (gold_spec && gold_spec[0]) {
        rl_status st = reward_open(&m->gold, gold_spec, tok, max_n, max_T, NULL);
        if (st != RL_OK) { trn_mon_free(m); return st; }
    }
    return RL_OK;
}

rl_status trn_mon_rollout(trn_monitor *m, const reward_item *items, const float *scores, int n, diag_step *s) {
    if (n < 1 || n > m->max_n) return rl_fail(RL_EINVAL, "monitors: %d rows, planned 1..%d", n, m->max_n);
    double lsum = 0;
    int above = 0;
    for (int i = 0; i < n; i++) {
        m->len[i] = items[i].rlen;
        m->rew[i] = scores[i];
        lsum += items[i].rlen;
        above += m->has_range && scores[i] > m->range_hi;
    }
    s->length = lsum / n;
    s->len_reward_corr = diag_pearson(m->len, m->rew, n);
    if (m->has_range) s->above_range = (double)above / n;
    if (m->proxy) {
        double es = reward_last_ensemble_std(m->proxy);
        if (isfinite(es)) s->ens_std = es;
    }
    if (m->tok) {
        for (int i = 0; i < n; i++) {
            char *t = m->text + (size_t)i * m->text_cap;
            size_t k = 0;
            for (int j = 0; j < items[i].rlen; j++) {
                if (tok_is_special(m->tok, items[i].resp[j])) continue;
                int nb;
                const unsigned char *b = tok_token_bytes(m->tok, items[i].resp[j], &nb);
                if (k + (size_t)nb + 1 > m->text_cap) break;
                memcpy(t + k, b, (size_t)nb);
                k += (size_t)nb;
            }
            t[k] = 0;
            m->texts[i] = t;
        }
        s->distinct = diag_distinct_n(m->texts, n, TRN_MON_NGRAM, m->scratch, m->text_cap * m->max_n);
    }
    m->last_gold = m->last_syc = NAN;
    if (m->gold) {
        RL_TRY(reward_score(m->gold, items, n, m->gold_score, NULL));
        double g = 0;
        for (int i = 0; i < n; i++) g += m->gold_score[i];
        reward_sim_counts c;
        if (reward_last_sim_counts(m->gold, &c)) {
            /* calculator gold: accuracy over the calculator prompts; sycophancy over those with a wrong suggestion */
            m->last_gold = c.n_items > 0 ? g / c.n_items : NAN; /* non-calculator prompts score 0 and are not counted */
            m->last_syc = c.n_wrong_suggestion > 0 ? (double)c.n_sycophantic / c.n_wrong_suggestion : NAN;
        } else {
            m->last_gold = g / n;
        }
        s->gold = m->last_gold;
        s->sycophancy = m->last_syc;
    }
    return RL_OK;
}

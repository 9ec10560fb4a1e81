/* server_metrics.c - Prometheus metrics: HTTP responses, finished requests,
 * tokens, TTFT / TPOT / end-to-end histograms, KV usage and queue depth. */
#include "server.h"

#include <stdio.h>
#include <string.h>

static void hist_init(struct srv_hist *h, const double *b, int n)
{
    memset(h, 0, sizeof *h);
    h->n_bounds = n < SRV_HIST_MAX ? n : SRV_HIST_MAX;
    memcpy(h->bounds, b, sizeof(double) * (size_t)h->n_bounds);
}

void srv_hist_observe(struct srv_hist *h, double v)
{
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void srv_metrics_init(struct srv_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    static const double ttft[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                  0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
    static const double tpot[] = {0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075,
                                  0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5};
    static const double e2e[] = {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
                                 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0};
    hist_init(&m->ttft, ttft, (int)(sizeof ttft / sizeof *ttft));
    hist_init(&m->tpot, tpot, (int)(sizeof tpot / sizeof *tpot));
    hist_init(&m->e2e, e2e, (int)(sizeof e2e / sizeof *e2e));
}

void srv_metrics_destroy(struct srv_metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

void srv_metrics_http(struct srv_metrics *m, int status)
{
    pthread_mutex_lock(&m->mu);
    if (status >= 500) m->http_5xx++;
    else if (status >= 400) m->http_4xx++;
    else m->http_2xx++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_request_done(struct srv_metrics *m, enum qr_finish_reason r, int n_prompt, int n_gen,
                              double ttft, double tpot, double e2e)
{
    pthread_mutex_lock(&m->mu);
    if ((int)r >= 0 && (int)r < 5)
        m->req_finished[r]++;
    m->prompt_tokens += (uint64_t)(n_prompt > 0 ? n_prompt : 0);
    m->gen_tokens += (uint64_t)(n_gen > 0 ? n_gen : 0);
    if (ttft >= 0)
        srv_hist_observe(&m->ttft, ttft);
    if (tpot >= 0)
        srv_hist_observe(&m->tpot, tpot);
    if (e2e >= 0)
        srv_hist_observe(&m->e2e, e2e);
    pthread_mutex_unlock(&m->mu);
}

static void hist_render(struct srv_buf *o, const char *name, const char *help, const struct srv_hist *h,
                        const char *lbl)
{
    srv_buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        srv_buf_printf(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, lbl, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->n_bounds];
    srv_buf_printf(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, lbl, (unsigned long long)cum);
    srv_buf_printf(o, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, lbl, h->sum, name, lbl,
                   (unsigned long long)h->count);
}

void srv_metrics_render(struct srv_metrics *m, const struct qr_engine_stats *st, const char *model_name,
                        int active_requests, int connections, struct srv_buf *o)
{
    char lbl[320];
    snprintf(lbl, sizeof lbl, "model_name=\"%s\"", model_name);   /* the name is checked to be label-safe */
    pthread_mutex_lock(&m->mu);
    srv_buf_printf(o, "# HELP qrun_http_responses_total HTTP responses by status class.\n"
                      "# TYPE qrun_http_responses_total counter\n"
                      "qrun_http_responses_total{code=\"2xx\"} %llu\n"
                      "qrun_http_responses_total{code=\"4xx\"} %llu\n"
                      "qrun_http_responses_total{code=\"5xx\"} %llu\n",
                   (unsigned long long)m->http_2xx, (unsigned long long)m->http_4xx,
                   (unsigned long long)m->http_5xx);
    static const char *const reasons[5] = {"none", "stop", "length", "cancelled", "error"};
    srv_buf_printf(o, "# HELP qrun_request_finished_total Engine requests finished, by reason.\n"
                      "# TYPE qrun_request_finished_total counter\n");
    for (int i = 1; i < 5; i++)
        srv_buf_printf(o, "qrun_request_finished_total{%s,finished_reason=\"%s\"} %llu\n", lbl, reasons[i],
                       (unsigned long long)m->req_finished[i]);
    srv_buf_printf(o, "# HELP qrun_prompt_tokens_total Prompt tokens processed.\n"
                      "# TYPE qrun_prompt_tokens_total counter\nqrun_prompt_tokens_total{%s} %llu\n"
                      "# HELP qrun_generation_tokens_total Generated tokens.\n"
                      "# TYPE qrun_generation_tokens_total counter\nqrun_generation_tokens_total{%s} %llu\n"
                      "# HELP qrun_client_disconnects_total Streams whose client went away before the end.\n"
                      "# TYPE qrun_client_disconnects_total counter\nqrun_client_disconnects_total %llu\n",
                   lbl, (unsigned long long)m->prompt_tokens, lbl, (unsigned long long)m->gen_tokens,
                   (unsigned long long)m->disconnects);
    hist_render(o, "qrun_time_to_first_token_seconds", "Time to first token.", &m->ttft, lbl);
    hist_render(o, "qrun_time_per_output_token_seconds", "Mean time per output token after the first.", &m->tpot,
                lbl);
    hist_render(o, "qrun_e2e_request_latency_seconds", "End-to-end request latency.", &m->e2e, lbl);
    pthread_mutex_unlock(&m->mu);
    srv_buf_printf(o, "# HELP qrun_http_requests_active Generation requests in flight.\n"
                      "# TYPE qrun_http_requests_active gauge\nqrun_http_requests_active %d\n"
                      "# HELP qrun_http_connections Open HTTP connections.\n"
                      "# TYPE qrun_http_connections gauge\nqrun_http_connections %d\n",
                   active_requests, connections);
    if (!st)
        return;
    double usage = st->kv_blocks_total > 0 ? (double)st->kv_blocks_used / (double)st->kv_blocks_total : 0.0;
    srv_buf_printf(o, "# HELP qrun_num_requests_running Sequences in the running batch.\n"
                      "# TYPE qrun_num_requests_running gauge\nqrun_num_requests_running{%s} %d\n"
                      "# HELP qrun_num_requests_waiting Sequences waiting to be scheduled (queue depth).\n"
                      "# TYPE qrun_num_requests_waiting gauge\nqrun_num_requests_waiting{%s} %d\n"
                      "# HELP qrun_kv_cache_usage_perc Fraction of KV blocks in use (1 = full).\n"
                      "# TYPE qrun_kv_cache_usage_perc gauge\nqrun_kv_cache_usage_perc{%s} %.6f\n"
                      "# HELP qrun_kv_blocks_used KV blocks held by requests.\n"
                      "# TYPE qrun_kv_blocks_used gauge\nqrun_kv_blocks_used{%s} %d\n"
                      "# HELP qrun_kv_blocks_total KV blocks in the pool.\n"
                      "# TYPE qrun_kv_blocks_total gauge\nqrun_kv_blocks_total{%s} %d\n"
                      "# HELP qrun_kv_blocks_cached_free Free KV blocks still holding a cached prefix.\n"
                      "# TYPE qrun_kv_blocks_cached_free gauge\nqrun_kv_blocks_cached_free{%s} %d\n",
                   lbl, st->n_running, lbl, st->n_waiting, lbl, usage, lbl, st->kv_blocks_used, lbl,
                   st->kv_blocks_total, lbl, st->kv_blocks_cached_free);
    srv_buf_printf(o, "# HELP qrun_num_preemptions_total Preemptions (recompute).\n"
                      "# TYPE qrun_num_preemptions_total counter\nqrun_num_preemptions_total{%s} %d\n"
                      "# HELP qrun_engine_steps_total Scheduler steps.\n"
                      "# TYPE qrun_engine_steps_total counter\nqrun_engine_steps_total{%s} %llu\n"
                      "# HELP qrun_engine_paused_steps_total Steps that left the running decodes out for prompts.\n"
                      "# TYPE qrun_engine_paused_steps_total counter\nqrun_engine_paused_steps_total{%s} %llu\n"
                      "# HELP qrun_engine_topk_sampling_steps_total Steps sampled from each row's best k on the device.\n"
                      "# TYPE qrun_engine_topk_sampling_steps_total counter\nqrun_engine_topk_sampling_steps_total{%s} %llu\n"
                      "# HELP qrun_engine_logits_sampling_steps_total Steps that read whole logits rows back to sample.\n"
                      "# TYPE qrun_engine_logits_sampling_steps_total counter\nqrun_engine_logits_sampling_steps_total{%s} %llu\n"
                      "# HELP qrun_prefix_cache_hit_tokens_total Prompt tokens served from the prefix cache.\n"
                      "# TYPE qrun_prefix_cache_hit_tokens_total counter\nqrun_prefix_cache_hit_tokens_total{%s} %llu\n"
                      "# HELP qrun_engine_healthy 1 while the device works.\n"
                      "# TYPE qrun_engine_healthy gauge\nqrun_engine_healthy %d\n",
                   lbl, st->n_preempted_total, lbl, (unsigned long long)st->steps, lbl,
                   (unsigned long long)st->paused_steps, lbl, (unsigned long long)st->topk_steps, lbl,
                   (unsigned long long)st->logits_steps, lbl, (unsigned long long)st->prefix_hit_tokens_total,
                   st->healthy ? 1 : 0);
}

const char *srv_health_reason(int state, const struct qr_engine_stats *st, double last_add, double now,
                              double stall_s)
{
    if (state == SRV_LOADING)
        return "loading model";
    if (state == SRV_FAILED)
        return "model failed to load";
    if (state == SRV_DRAINING || state == SRV_STOPPING)
        return "shutting down";
    if (!st)
        return "engine not available";
    if (!st->healthy)
        return "engine device failed";
    if (st->n_waiting + st->n_running > 0) {
        double last = st->last_step_time > last_add ? st->last_step_time : last_add;
        if (now - last > stall_s)
            return "engine stalled: requests pending but no step finished recently";
    }
    return NULL;
}

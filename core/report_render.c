/* report_render.c - report.md and report.html (self-contained, inline SVG
 * charts) of `qrun bench report`, for one report or a comparison of several
 * (shared charts: one series per report), and writing the three files. */
#include "qrun/qr_report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- a growing string ---- */

struct sb {
    char *p;
    size_t n, cap;
    bool oom;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + (size_t)k + 1)
            nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
}

/* text with &<>" escaped (HTML/SVG) */
static void sb_esc(struct sb *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': sb_printf(b, "&amp;"); break;
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_printf(b, "%c", *s);
        }
    }
}

/* text for a Markdown table cell (| escaped, newlines flattened) */
static void sb_md(struct sb *b, const char *s)
{
    if (!s || !*s) {
        sb_printf(b, "-");
        return;
    }
    for (; *s; s++) {
        if (*s == '|')
            sb_printf(b, "\\|");
        else if (*s == '\n' || *s == '\r')
            sb_printf(b, " ");
        else
            sb_printf(b, "%c", *s);
    }
}

static qr_status sb_finish(struct sb *b, char **out)
{
    if (!b->p && !b->oom)
        sb_printf(b, "%s", "");
    if (b->oom) {
        free(b->p);
        return qr_set_error(QR_E_OOM_HOST, "report: out of memory");
    }
    *out = b->p;
    return QR_OK;
}

/* "%.2f" GiB, or "n/a" for an unknown (zero) amount; buf of >= 32 bytes */
static const char *gib_or_na(char *buf, double bytes)
{
    if (bytes > 0)
        snprintf(buf, 32, "%.2f", bytes / (1024.0 * 1024.0 * 1024.0));
    else
        snprintf(buf, 32, "n/a");
    return buf;
}

static const char *label_of(const struct qr_report *r)
{
    return r->label[0] ? r->label : r->device[0] ? r->device : "report";
}

static double gib(double bytes)
{
    return bytes / (1024.0 * 1024.0 * 1024.0);
}

/* the single request the summary quotes: the one at the sweep's shape, else the longest that ran */
static const struct qr_report_single *headline_single(const struct qr_report *r)
{
    const struct qr_report_single *best = NULL;
    for (int i = 0; i < r->n_single; i++) {
        const struct qr_report_single *s = &r->single[i];
        if (!s->ran)
            continue;
        if (s->prompt == r->sweep_prompt && s->gen == r->sweep_gen)
            return s;
        if (!best || s->prompt > best->prompt)
            best = s;
    }
    return best;
}

static double peak_total_tok_s(const struct qr_report *r)
{
    double m = 0;
    for (int i = 0; i < r->n_sweep; i++)
        if (r->sweep[i].total_tok_s > m)
            m = r->sweep[i].total_tok_s;
    return m;
}

static void fmt_ctx(char *buf, size_t cap, int tokens)
{
    if (tokens >= 1024 && tokens % 1024 == 0)
        snprintf(buf, cap, "%dK", tokens / 1024);
    else
        snprintf(buf, cap, "%d", tokens);
}

/* ---- Markdown ---- */

static void md_report(struct sb *b, const struct qr_report *r, int level)
{
    const char *h = level == 1 ? "##" : "###";
    sb_printf(b, "%s Environment\n\n| | |\n|---|---|\n", h);
    sb_printf(b, "| Device | ");
    sb_md(b, r->device);
    sb_printf(b, " |\n| Driver | ");
    sb_md(b, r->driver);
    sb_printf(b, " |\n| Backend | ");
    sb_md(b, r->backend);
    sb_printf(b, " |\n| qrun commit | ");
    sb_md(b, r->commit);
    sb_printf(b, " |\n| Host | ");
    sb_md(b, r->host);
    sb_printf(b, " |\n| Created | ");
    sb_md(b, r->created);
    sb_printf(b, "%s |\n| Model | ", r->quick ? " (--quick)" : "");
    sb_md(b, r->model_dir);
    sb_printf(b, " |\n| Config | %s, %s, %d layers, hidden %d, heads %d/%d (head_dim %d), ffn %d, vocab %d, "
                 "%.2f B params, max_position_embeddings %d |\n",
              r->arch, r->dtype, r->layers, r->hidden, r->heads, r->kv_heads, r->head_dim, r->ffn, r->vocab,
              r->params / 1e9, r->model_max_pos);
    sb_printf(b, "| Engine | KV %s, %d blocks x %d tokens (%.0f tokens, %.1f KiB/token), max_model_len %d, "
                 "max_num_seqs %d, max_num_batched_tokens %d |\n",
              r->kv_dtype, r->kv_blocks, r->block_size, (double)r->kv_blocks * r->block_size,
              r->kv_bytes_per_token / 1024.0, r->max_model_len, r->max_num_seqs, r->max_batched_tokens);
    if (r->copy_bw_gbs > 0)
        sb_printf(b, "| Device copy bandwidth | %.1f GB/s (read + write) |\n\n", r->copy_bw_gbs);
    else
        sb_printf(b, "| Device copy bandwidth | n/a (not measurable on this device) |\n\n");

    sb_printf(b, "%s Single request\n\n", h);
    sb_printf(b, "| Prompt / output | TTFT (ms) | Decode tok/s | Effective GB/s | Of copy bandwidth | Peak VRAM (GiB) | "
                 "VRAM needed (GiB) | Note |\n|---|---:|---:|---:|---:|---:|---:|---|\n");
    for (int i = 0; i < r->n_single; i++) {
        const struct qr_report_single *s = &r->single[i];
        sb_printf(b, "| %d / %d | ", s->prompt, s->gen);
        if (s->ran) {
            sb_printf(b, "%.1f | %.1f | %.1f | ", s->ttft_ms, s->decode_tok_s, s->eff_gbs);
            if (r->copy_bw_gbs > 0)
                sb_printf(b, "%.0f %% | ", 100.0 * s->eff_gbs / r->copy_bw_gbs);
            else
                sb_printf(b, "n/a | ");
            if (s->peak_vram_bytes > 0)
                sb_printf(b, "%.2f | ", gib(s->peak_vram_bytes));
            else
                sb_printf(b, "n/a | ");
            char nb[32];
            sb_printf(b, "%s | ", gib_or_na(nb, s->vram_needed_bytes));
        } else {
            sb_printf(b, "- | - | - | - | - | - | ");
        }
        sb_md(b, s->note);
        sb_printf(b, " |\n");
    }
    sb_printf(b, "\nEffective GB/s = (weight bytes + KV bytes read per decoded token) x decode tok/s. Peak VRAM: device "
                 "memory in use (the KV pool is allocated up front); VRAM needed: weights + activations + overhead + "
                 "the KV blocks of this request.\n\n");

    sb_printf(b, "%s Concurrency sweep (%d in / %d out)\n\n", h, r->sweep_prompt, r->sweep_gen);
    sb_printf(b, "| Concurrency | Mean TTFT (ms) | p99 TTFT (ms) | Mean TPOT (ms) | p99 TPOT (ms) | Total tok/s | "
                 "Output tok/s |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < r->n_sweep; i++) {
        const struct qr_report_sweep *p = &r->sweep[i];
        sb_printf(b, "| %d | %.1f | %.1f | %.2f | %.2f | %.1f | %.1f |\n", p->conc, p->ttft_mean_ms, p->ttft_p99_ms,
                  p->tpot_mean_ms, p->tpot_p99_ms, p->total_tok_s, p->output_tok_s);
    }
    if (r->max_conc_ttft_1s > 0)
        sb_printf(b, "\nLargest concurrency with mean TTFT < 1 s: **%d**.", r->max_conc_ttft_1s);
    else
        sb_printf(b, "\nNo concurrency reached a mean TTFT under 1 s.");
    if (r->sweep_note[0]) {
        sb_printf(b, " ");
        sb_md(b, r->sweep_note);
    }
    sb_printf(b, "\n\n");

    sb_printf(b, "%s Context ladder\n\n", h);
    sb_printf(b, "| Context | Fits | Prompt / output | TTFT (ms) | Decode tok/s | Total (s) | Note |\n"
                 "|---:|---|---|---:|---:|---:|---|\n");
    for (int i = 0; i < r->n_ladder; i++) {
        const struct qr_report_ctx *c = &r->ladder[i];
        char cb[32];
        fmt_ctx(cb, sizeof cb, c->context);
        sb_printf(b, "| %s | %s | ", cb, c->fits ? "yes" : "no");
        if (c->timed)
            sb_printf(b, "%d / %d | %.1f | %.1f | %.2f | ", c->prompt, c->gen, c->ttft_ms, c->decode_tok_s,
                      c->total_s);
        else
            sb_printf(b, "- | - | - | - | ");
        sb_md(b, c->note);
        sb_printf(b, " |\n");
    }
    char lb[32];
    fmt_ctx(lb, sizeof lb, r->longest_context_fits);
    sb_printf(b, "\nLongest context that fits: **%s** (max_model_len %d, KV pool %.0f tokens).\n\n",
              r->longest_context_fits > 0 ? lb : "none", r->max_model_len, (double)r->kv_blocks * r->block_size);

    sb_printf(b, "%s Memory breakdown\n\n| Part | GiB |\n|---|---:|\n", h);
    sb_printf(b, "| Weights | %.3f |\n| KV pool | %.3f |\n| Activations | %.3f |\n| Runtime overhead | %.3f |\n",
              gib(r->mem_weights), gib(r->mem_kv), gib(r->mem_activations), gib(r->mem_overhead));
    if (r->mem_peak_used > 0)
        sb_printf(b, "| Device memory in use at peak | %.3f |\n", gib(r->mem_peak_used));
    if (r->mem_device_total > 0)
        sb_printf(b, "| Device total | %.3f |\n", gib(r->mem_device_total));
    sb_printf(b, "\nReport measured in %.1f s.\n\n", r->total_time_s);
}

static void md_summary(struct sb *b, const struct qr_report *reps, int n)
{
    sb_printf(b, "| Report | TTFT (ms) | Decode tok/s | Effective GB/s | Peak VRAM (GiB) | VRAM needed (GiB) | Max "
                 "concurrency (mean TTFT < 1 s) | Peak total tok/s | Longest context |\n"
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const struct qr_report *r = &reps[i];
        const struct qr_report_single *s = headline_single(r);
        sb_printf(b, "| ");
        sb_md(b, label_of(r));
        char pb[32], nb[32];
        if (s)
            sb_printf(b, " | %.1f (%d/%d) | %.1f | %.1f | %s | %s", s->ttft_ms, s->prompt, s->gen, s->decode_tok_s,
                      s->eff_gbs, gib_or_na(pb, s->peak_vram_bytes), gib_or_na(nb, s->vram_needed_bytes));
        else
            sb_printf(b, " | - | - | - | - | -");
        char lb[32];
        fmt_ctx(lb, sizeof lb, r->longest_context_fits);
        sb_printf(b, " | %d | %.1f | %s |\n", r->max_conc_ttft_1s, peak_total_tok_s(r),
                  r->longest_context_fits > 0 ? lb : "none");
    }
    sb_printf(b, "\n");
}

qr_status qr_report_to_md(const struct qr_report *reps, int n, char **out)
{
    if (!reps || n < 1 || !out)
        return qr_set_error(QR_E_INVALID_ARG, "report: no reports to render");
    struct sb b = {0};
    if (n == 1) {
        sb_printf(&b, "# qrun hardware report: ");
        sb_md(&b, label_of(&reps[0]));
        sb_printf(&b, "\n\n## Summary\n\n");
        md_summary(&b, reps, 1);
        md_report(&b, &reps[0], 1);
    } else {
        sb_printf(&b, "# qrun hardware comparison (%d reports)\n\n## Summary\n\n", n);
        md_summary(&b, reps, n);
        for (int i = 0; i < n; i++) {
            sb_printf(&b, "## ");
            sb_md(&b, label_of(&reps[i]));
            sb_printf(&b, "\n\n");
            md_report(&b, &reps[i], 2);
        }
    }
    sb_printf(&b, "---\nGenerated by `qrun bench report`. The charts are in report.html.\n");
    return sb_finish(&b, out);
}

/* ---- SVG charts ---- */

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define N_PALETTE 8

struct series {
    char name[160];
    const char *color;
    bool dashed;
    int n;
    double x[QR_REPORT_MAX_SWEEP], y[QR_REPORT_MAX_SWEEP];
};

/* a "nice" axis maximum (1, 2, 2.5, 5 x 10^k) at or above v */
static double nice_max(double v)
{
    if (!(v > 0))
        return 1;
    double e = pow(10, floor(log10(v)));
    const double steps[] = {1, 2, 2.5, 5, 10};
    for (int i = 0; i < 5; i++)
        if (steps[i] * e >= v)
            return steps[i] * e;
    return 10 * e;
}

static void fmt_num(char *buf, size_t cap, double v)
{
    double a = fabs(v);
    if (a >= 1e6)
        snprintf(buf, cap, "%.3gM", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, cap, "%.3gk", v / 1e3);
    else
        snprintf(buf, cap, "%g", v);
}

#define CW 680
#define CH 380
#define ML 78
#define MR 24
#define MT 46
#define MB 56

/* a line chart with a log2 x axis (concurrency) */
static void svg_line_chart(struct sb *b, const char *id, const char *title, const char *xlabel, const char *ylabel,
                           const struct series *s, int ns, double threshold, const char *threshold_label)
{
    double xmin = INFINITY, xmax = -INFINITY, ymax = 0;
    int npts = 0;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            if (!(s[i].x[j] > 0) || !isfinite(s[i].y[j]))
                continue;
            xmin = fmin(xmin, s[i].x[j]);
            xmax = fmax(xmax, s[i].x[j]);
            ymax = fmax(ymax, s[i].y[j]);
            npts++;
        }
    if (threshold > 0 && threshold < ymax * 4)
        ymax = fmax(ymax, threshold);
    if (!npts) {
        xmin = 1;
        xmax = 2;
    }
    double lx0 = log2(xmin), lx1 = log2(xmax);
    if (lx1 - lx0 < 1) {
        lx0 -= 0.5;
        lx1 += 0.5;
    }
    double ytop = nice_max(ymax * 1.05);
    double pw = CW - ML - MR, ph = CH - MT - MB;
#define PX(x) (ML + (log2(x) - lx0) / (lx1 - lx0) * pw)
#define PY(y) (MT + ph - (y) / ytop * ph)
    sb_printf(b, "<svg class=\"qr-chart\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                 "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"",
              id, CW, CH, CW, CH);
    sb_esc(b, title);
    sb_printf(b, "\">\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", CW, CH);
    sb_printf(b, "<text x=\"%d\" y=\"24\" font-size=\"16\" font-weight=\"bold\" text-anchor=\"middle\">", CW / 2);
    sb_esc(b, title);
    sb_printf(b, "</text>\n");
    /* grid and y ticks */
    for (int k = 0; k <= 5; k++) {
        double yv = ytop * k / 5;
        char nb[32];
        fmt_num(nb, sizeof nb, yv);
        sb_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", ML, PY(yv),
                  CW - MR, PY(yv));
        sb_printf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n", ML - 6,
                  PY(yv) + 4, nb);
    }
    /* x ticks at powers of two within range */
    for (int e = (int)ceil(lx0 - 1e-9); e <= (int)floor(lx1 + 1e-9); e++) {
        double xv = pow(2, e);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#f0f0f0\"/>\n", PX(xv), MT,
                  PX(xv), MT + (int)ph);
        sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%g</text>\n", PX(xv),
                  MT + (int)ph + 16, xv);
    }
    sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", ML, MT + (int)ph, CW - MR,
              MT + (int)ph);
    sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", ML, MT, ML, MT + (int)ph);
    sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">", ML + pw / 2, CH - 12);
    sb_esc(b, xlabel);
    sb_printf(b, "</text>\n<text transform=\"translate(16,%.1f) rotate(-90)\" font-size=\"12\" "
                 "text-anchor=\"middle\">",
              MT + ph / 2);
    sb_esc(b, ylabel);
    sb_printf(b, "</text>\n");
    if (threshold > 0 && threshold <= ytop) {
        sb_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"2,3\"/>\n",
                  ML, PY(threshold), CW - MR, PY(threshold));
        sb_printf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" fill=\"#666\" text-anchor=\"end\">", CW - MR - 2,
                  PY(threshold) - 4);
        sb_esc(b, threshold_label);
        sb_printf(b, "</text>\n");
    }
    for (int i = 0; i < ns; i++) {
        const struct series *q = &s[i];
        sb_printf(b, "<g class=\"qr-series\"><polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                  q->color, q->dashed ? " stroke-dasharray=\"6,4\"" : "");
        for (int j = 0; j < q->n; j++)
            if (q->x[j] > 0 && isfinite(q->y[j]))
                sb_printf(b, "%.1f,%.1f ", PX(q->x[j]), PY(q->y[j]));
        sb_printf(b, "\"/>\n");
        for (int j = 0; j < q->n; j++) {
            if (!(q->x[j] > 0) || !isfinite(q->y[j]))
                continue;
            sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>", PX(q->x[j]), PY(q->y[j]),
                      q->color);
            sb_esc(b, q->name);
            sb_printf(b, ": %g at %g</title></circle>\n", q->y[j], q->x[j]);
        }
        sb_printf(b, "</g>\n");
        /* legend, top left of the plot */
        double ly = MT + 10 + i * 16;
        sb_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                  ML + 10, ly, ML + 34, ly, q->color, q->dashed ? " stroke-dasharray=\"6,4\"" : "");
        sb_printf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\">", ML + 40, ly + 4);
        sb_esc(b, q->name);
        sb_printf(b, "</text>\n");
    }
    if (!npts)
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" fill=\"#888\" text-anchor=\"middle\">no data"
                     "</text>\n",
                  ML + pw / 2, MT + ph / 2);
    sb_printf(b, "</svg>\n");
#undef PX
#undef PY
}

/* horizontal stacked bars: one per report, weights / KV / activations / overhead / rest of the device */
static void svg_memory_chart(struct sb *b, const struct qr_report *reps, int n)
{
    static const char *const names[] = {"Weights", "KV pool", "Activations", "Overhead", "Free / other"};
    static const char *const colors[] = {"#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#dddddd"};
    int bar_h = 26, gap = 22, label_w = 190;
    int h = MT + n * (bar_h + gap) + 60;
    /* the rest of the device is drawn only where the runtime holds a visible
     * part of it (not for host memory, where the "device" is the whole RAM) */
    double vmax = 0;
    bool show_free = true;
    for (int i = 0; i < n; i++) {
        const struct qr_report *r = &reps[i];
        double used = r->mem_weights + r->mem_kv + r->mem_activations + r->mem_overhead;
        if (used < 0.05 * r->mem_device_total)
            show_free = false;
    }
    for (int i = 0; i < n; i++) {
        const struct qr_report *r = &reps[i];
        double used = r->mem_weights + r->mem_kv + r->mem_activations + r->mem_overhead;
        vmax = fmax(vmax, show_free ? fmax(used, r->mem_device_total) : used);
    }
    double top = nice_max(gib(vmax) * 1.02);
    double pw = CW - label_w - MR;
    sb_printf(b, "<svg class=\"qr-chart\" id=\"chart-memory\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d "
                 "%d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"Memory breakdown\">\n",
              CW, h, CW, h);
    sb_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", CW, h);
    sb_printf(b, "<text x=\"%d\" y=\"24\" font-size=\"16\" font-weight=\"bold\" text-anchor=\"middle\">Device memory "
                 "breakdown (GiB)</text>\n",
              CW / 2);
    int axis_y = MT + n * (bar_h + gap);
    for (int k = 0; k <= 5; k++) {
        double v = top * k / 5, x = label_w + v / top * pw;
        char nb[32];
        fmt_num(nb, sizeof nb, v);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e8e8e8\"/>\n", x, MT - 6, x,
                  axis_y);
        sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n", x, axis_y + 14,
                  nb);
    }
    for (int i = 0; i < n; i++) {
        const struct qr_report *r = &reps[i];
        double parts[5] = {gib(r->mem_weights), gib(r->mem_kv), gib(r->mem_activations), gib(r->mem_overhead), 0};
        double used = parts[0] + parts[1] + parts[2] + parts[3];
        parts[4] = show_free && gib(r->mem_device_total) > used ? gib(r->mem_device_total) - used : 0;
        int y = MT + i * (bar_h + gap);
        sb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", label_w - 8, y + bar_h / 2 + 4);
        char lab[40];
        snprintf(lab, sizeof lab, "%.36s", label_of(r));
        sb_esc(b, lab);
        sb_printf(b, "</text>\n");
        double x = label_w;
        for (int k = 0; k < 5; k++) {
            double w = parts[k] / top * pw;
            if (w <= 0)
                continue;
            sb_printf(b, "<rect class=\"qr-bar\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>",
                      x, y, w, bar_h, colors[k]);
            sb_esc(b, label_of(r));
            sb_printf(b, ": %s %.3f GiB</title></rect>\n", names[k], parts[k]);
            x += w;
        }
        sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" fill=\"#444\" text-anchor=\"end\">%.2f GiB in use",
                  fmax(x, label_w + 160.0), y - 4, used);
        if (!show_free && r->mem_device_total > 0)
            sb_printf(b, " of %.1f GiB", gib(r->mem_device_total));
        sb_printf(b, "</text>\n");
    }
    double lx = label_w;
    for (int k = 0; k < (show_free ? 5 : 4); k++) {
        sb_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>", lx, axis_y + 28,
                  colors[k]);
        sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%s</text>\n", lx + 16, axis_y + 38, names[k]);
        lx += 96;
    }
    sb_printf(b, "</svg>\n");
}

/* ---- HTML ---- */

static void html_summary(struct sb *b, const struct qr_report *reps, int n)
{
    sb_printf(b, "<table><tr><th>Report</th><th>TTFT (ms)</th><th>Decode tok/s</th><th>Effective GB/s</th>"
                 "<th>Peak VRAM (GiB)</th><th>VRAM needed (GiB)</th><th>Max concurrency<br>(mean TTFT &lt; 1 s)</th><th>Peak total tok/s</th>"
                 "<th>Longest context</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const struct qr_report *r = &reps[i];
        const struct qr_report_single *s = headline_single(r);
        sb_printf(b, "<tr><td>");
        sb_esc(b, label_of(r));
        char pb[32], nb[32];
        if (s)
            sb_printf(b, "</td><td>%.1f (%d/%d)</td><td>%.1f</td><td>%.1f</td><td>%s</td><td>%s</td>", s->ttft_ms,
                      s->prompt, s->gen, s->decode_tok_s, s->eff_gbs, gib_or_na(pb, s->peak_vram_bytes),
                      gib_or_na(nb, s->vram_needed_bytes));
        else
            sb_printf(b, "</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td>");
        char lb[32];
        fmt_ctx(lb, sizeof lb, r->longest_context_fits);
        sb_printf(b, "<td>%d</td><td>%.1f</td><td>%s</td></tr>\n", r->max_conc_ttft_1s, peak_total_tok_s(r),
                  r->longest_context_fits > 0 ? lb : "none");
    }
    sb_printf(b, "</table>\n");
}

static void html_report(struct sb *b, const struct qr_report *r)
{
    sb_printf(b, "<h3>Environment</h3>\n<table class=\"kv\">\n");
    const char *keys[] = {"Device", "Driver", "Backend", "qrun commit", "Host", "Created", "Model"};
    const char *vals[] = {r->device, r->driver, r->backend, r->commit, r->host, r->created, r->model_dir};
    for (int i = 0; i < 7; i++) {
        sb_printf(b, "<tr><th>%s</th><td>", keys[i]);
        sb_esc(b, vals[i][0] ? vals[i] : "-");
        if (i == 5 && r->quick)
            sb_printf(b, " (--quick)");
        sb_printf(b, "</td></tr>\n");
    }
    sb_printf(b, "<tr><th>Config</th><td>");
    sb_esc(b, r->arch);
    sb_printf(b, ", ");
    sb_esc(b, r->dtype);
    sb_printf(b, ", %d layers, hidden %d, heads %d/%d (head_dim %d), ffn %d, vocab %d, %.2f B params, "
                 "max_position_embeddings %d</td></tr>\n",
              r->layers, r->hidden, r->heads, r->kv_heads, r->head_dim, r->ffn, r->vocab, r->params / 1e9,
              r->model_max_pos);
    sb_printf(b, "<tr><th>Engine</th><td>KV ");
    sb_esc(b, r->kv_dtype);
    sb_printf(b, ", %d blocks &times; %d tokens (%.0f tokens, %.1f KiB/token), max_model_len %d, max_num_seqs %d, "
                 "max_num_batched_tokens %d</td></tr>\n",
              r->kv_blocks, r->block_size, (double)r->kv_blocks * r->block_size, r->kv_bytes_per_token / 1024.0,
              r->max_model_len, r->max_num_seqs, r->max_batched_tokens);
    if (r->copy_bw_gbs > 0)
        sb_printf(b, "<tr><th>Copy bandwidth</th><td>%.1f GB/s (read + write)</td></tr>\n", r->copy_bw_gbs);
    else
        sb_printf(b, "<tr><th>Copy bandwidth</th><td>n/a (not measurable on this device)</td></tr>\n");
    sb_printf(b, "</table>\n");

    sb_printf(b, "<h3>Single request</h3>\n<table><tr><th>Prompt / output</th><th>TTFT (ms)</th><th>Decode tok/s</th>"
                 "<th>Effective GB/s</th><th>Of copy bandwidth</th><th>Peak VRAM (GiB)</th><th>VRAM needed (GiB)</th>"
                 "<th>Note</th></tr>\n");
    for (int i = 0; i < r->n_single; i++) {
        const struct qr_report_single *s = &r->single[i];
        sb_printf(b, "<tr><td>%d / %d</td>", s->prompt, s->gen);
        if (s->ran) {
            sb_printf(b, "<td>%.1f</td><td>%.1f</td><td>%.1f</td>", s->ttft_ms, s->decode_tok_s, s->eff_gbs);
            if (r->copy_bw_gbs > 0)
                sb_printf(b, "<td>%.0f %%</td>", 100.0 * s->eff_gbs / r->copy_bw_gbs);
            else
                sb_printf(b, "<td>n/a</td>");
            if (s->peak_vram_bytes > 0)
                sb_printf(b, "<td>%.2f</td>", gib(s->peak_vram_bytes));
            else
                sb_printf(b, "<td>n/a</td>");
            char nb[32];
            sb_printf(b, "<td>%s</td>", gib_or_na(nb, s->vram_needed_bytes));
        } else {
            sb_printf(b, "<td>-</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td>");
        }
        sb_printf(b, "<td>");
        sb_esc(b, s->note);
        sb_printf(b, "</td></tr>\n");
    }
    sb_printf(b, "</table>\n");

    sb_printf(b, "<h3>Concurrency sweep (%d in / %d out)</h3>\n<table><tr><th>Concurrency</th><th>Mean TTFT (ms)</th>"
                 "<th>p99 TTFT (ms)</th><th>Mean TPOT (ms)</th><th>p99 TPOT (ms)</th><th>Total tok/s</th>"
                 "<th>Output tok/s</th></tr>\n",
              r->sweep_prompt, r->sweep_gen);
    for (int i = 0; i < r->n_sweep; i++) {
        const struct qr_report_sweep *p = &r->sweep[i];
        sb_printf(b, "<tr><td>%d</td><td>%.1f</td><td>%.1f</td><td>%.2f</td><td>%.2f</td><td>%.1f</td><td>%.1f</td>"
                     "</tr>\n",
                  p->conc, p->ttft_mean_ms, p->ttft_p99_ms, p->tpot_mean_ms, p->tpot_p99_ms, p->total_tok_s,
                  p->output_tok_s);
    }
    sb_printf(b, "</table>\n<p>Largest concurrency with mean TTFT &lt; 1 s: <b>%d</b>. ", r->max_conc_ttft_1s);
    sb_esc(b, r->sweep_note);
    sb_printf(b, "</p>\n");

    sb_printf(b, "<h3>Context ladder</h3>\n<table><tr><th>Context</th><th>Fits</th><th>Prompt / output</th>"
                 "<th>TTFT (ms)</th><th>Decode tok/s</th><th>Total (s)</th><th>Note</th></tr>\n");
    for (int i = 0; i < r->n_ladder; i++) {
        const struct qr_report_ctx *c = &r->ladder[i];
        char cb[32];
        fmt_ctx(cb, sizeof cb, c->context);
        sb_printf(b, "<tr><td>%s</td><td class=\"%s\">%s</td>", cb, c->fits ? "yes" : "no", c->fits ? "yes" : "no");
        if (c->timed)
            sb_printf(b, "<td>%d / %d</td><td>%.1f</td><td>%.1f</td><td>%.2f</td>", c->prompt, c->gen, c->ttft_ms,
                      c->decode_tok_s, c->total_s);
        else
            sb_printf(b, "<td>-</td><td>-</td><td>-</td><td>-</td>");
        sb_printf(b, "<td>");
        sb_esc(b, c->note);
        sb_printf(b, "</td></tr>\n");
    }
    sb_printf(b, "</table>\n");

    sb_printf(b, "<h3>Memory</h3>\n<table><tr><th>Weights</th><th>KV pool</th><th>Activations</th><th>Overhead</th>"
                 "<th>In use at peak</th><th>Device total</th></tr>\n<tr><td>%.3f GiB</td><td>%.3f GiB</td>"
                 "<td>%.3f GiB</td><td>%.3f GiB</td><td>%.3f GiB</td><td>%.3f GiB</td></tr></table>\n",
              gib(r->mem_weights), gib(r->mem_kv), gib(r->mem_activations), gib(r->mem_overhead),
              gib(r->mem_peak_used), gib(r->mem_device_total));
    sb_printf(b, "<p class=\"small\">Report measured in %.1f s.</p>\n", r->total_time_s);
}

qr_status qr_report_to_html(const struct qr_report *reps, int n, char **out)
{
    if (!reps || n < 1 || !out)
        return qr_set_error(QR_E_INVALID_ARG, "report: no reports to render");
    struct sb b = {0};
    char title[200];
    if (n == 1)
        snprintf(title, sizeof title, "qrun hardware report: %s", label_of(&reps[0]));
    else
        snprintf(title, sizeof title, "qrun hardware comparison (%d reports)", n);
    sb_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
    sb_esc(&b, title);
    sb_printf(&b, "</title>\n<style>\nbody{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;"
                  "max-width:1000px;color:#222;padding:0 16px}\nh1{font-size:24px}h2{border-bottom:1px solid #ccc;"
                  "padding-bottom:4px}\ntable{border-collapse:collapse;margin:8px 0 16px;font-size:13px}\n"
                  "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}\nth{background:#f4f4f4}\n"
                  "table.kv th,table.kv td{text-align:left}\ntd:first-child{text-align:left}\n"
                  "td.yes{color:#2a7a2a}td.no{color:#b22}\n.charts{display:flex;flex-wrap:wrap;gap:12px}\n"
                  "svg.qr-chart{border:1px solid #ddd;max-width:100%%;height:auto}\n.small{color:#777;font-size:12px}\n"
                  "</style></head><body>\n<h1>");
    sb_esc(&b, title);
    sb_printf(&b, "</h1>\n<h2>Summary</h2>\n");
    html_summary(&b, reps, n);

    /* shared charts: one colour per report; single report: one colour per metric */
    struct series *s = calloc(2 * (size_t)n, sizeof *s);
    if (!s) {
        free(b.p);
        return qr_set_error(QR_E_OOM_HOST, "report: out of memory");
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            const struct qr_report *r = &reps[i];
            struct series *a = &s[2 * i], *c = &s[2 * i + 1];
            a->color = palette[(n == 1 ? 0 : i) % N_PALETTE];
            c->color = palette[(n == 1 ? 1 : i) % N_PALETTE];
            c->dashed = true;
            const char *lab = label_of(r);
            if (pass == 0) {
                snprintf(a->name, sizeof a->name, "%s%.120s", n == 1 ? "mean TTFT" : "mean: ", n == 1 ? "" : lab);
                snprintf(c->name, sizeof c->name, "%s%.120s", n == 1 ? "p99 TTFT" : "p99: ", n == 1 ? "" : lab);
            } else {
                snprintf(a->name, sizeof a->name, "%s%.120s", n == 1 ? "total tok/s" : "total: ", n == 1 ? "" : lab);
                snprintf(c->name, sizeof c->name, "%s%.120s", n == 1 ? "output tok/s" : "output: ",
                         n == 1 ? "" : lab);
            }
            a->n = c->n = r->n_sweep;
            for (int j = 0; j < r->n_sweep; j++) {
                a->x[j] = c->x[j] = r->sweep[j].conc;
                a->y[j] = pass == 0 ? r->sweep[j].ttft_mean_ms : r->sweep[j].total_tok_s;
                c->y[j] = pass == 0 ? r->sweep[j].ttft_p99_ms : r->sweep[j].output_tok_s;
            }
        }
        char ct[200];
        int sp = reps[0].sweep_prompt, sg = reps[0].sweep_gen;
        if (pass == 0) {
            sb_printf(&b, "<h2>Charts</h2>\n<div class=\"charts\">\n");
            snprintf(ct, sizeof ct, "TTFT vs concurrency (%d in / %d out)", sp, sg);
            svg_line_chart(&b, "chart-ttft", ct, "concurrent requests", "TTFT (ms)", s, 2 * n, 1000,
                           "1 s");
        } else {
            snprintf(ct, sizeof ct, "Throughput vs concurrency (%d in / %d out)", sp, sg);
            svg_line_chart(&b, "chart-throughput", ct, "concurrent requests", "tokens / s", s, 2 * n, 0, NULL);
        }
    }
    free(s);
    svg_memory_chart(&b, reps, n);
    sb_printf(&b, "</div>\n");
    for (int i = 0; i < n; i++) {
        sb_printf(&b, "<h2>");
        sb_esc(&b, label_of(&reps[i]));
        sb_printf(&b, "</h2>\n");
        html_report(&b, &reps[i]);
    }
    sb_printf(&b, "<p class=\"small\">Generated by <code>qrun bench report</code>. Effective GB/s = (weight bytes + KV "
                  "bytes read per decoded token) &times; decode tok/s.</p>\n</body></html>\n");
    return sb_finish(&b, out);
}

/* ---- files ---- */

static qr_status write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return qr_set_error(QR_E_IO, "report: cannot write %s: %s", path, strerror(errno));
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    if (fclose(f) != 0)
        ok = false;
    if (!ok)
        return qr_set_error(QR_E_IO, "report: error writing %s", path);
    return QR_OK;
}

qr_status qr_report_write_dir(const char *dir, const struct qr_report *reps, int n)
{
    if (!dir || !*dir)
        return qr_set_error(QR_E_INVALID_ARG, "report: no output directory");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return qr_set_error(QR_E_IO, "report: cannot create %s: %s", dir, strerror(errno));
    char *json = NULL, *md = NULL, *html = NULL;
    qr_status st;
    if ((st = qr_report_to_json(reps, n, &json)) == QR_OK && (st = qr_report_to_md(reps, n, &md)) == QR_OK &&
        (st = qr_report_to_html(reps, n, &html)) == QR_OK) {
        if ((st = write_file(dir, "report.json", json)) == QR_OK && (st = write_file(dir, "report.md", md)) == QR_OK)
            st = write_file(dir, "report.html", html);
    }
    free(json);
    free(md);
    free(html);
    return st;
}

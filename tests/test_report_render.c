/* test_report_render.c - the report renderers (core/report_json.c,
 * core/report_render.c) on synthetic results: JSON round trip, comparisons,
 * parse errors naming the field, Markdown and HTML contents (three SVG charts,
 * points where the data says, escaping), statistics helpers, writing a dir. */
#include "qrun/qr_report.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fill(struct qr_report *r, const char *label, double scale)
{
    qr_report_init(r);
    snprintf(r->label, sizeof r->label, "%s", label);
    snprintf(r->created, sizeof r->created, "2026-01-02T03:04:05Z");
    snprintf(r->device, sizeof r->device, "NVIDIA H100 80GB HBM3");
    snprintf(r->driver, sizeof r->driver, "driver 570.1, CUDA 12.8, sm_90");
    snprintf(r->backend, sizeof r->backend, "cuda");
    snprintf(r->commit, sizeof r->commit, "abc123");
    snprintf(r->host, sizeof r->host, "gpu1");
    snprintf(r->model_dir, sizeof r->model_dir, "/models/Qwen3-4B-Instruct-2507");
    snprintf(r->arch, sizeof r->arch, "qwen3");
    snprintf(r->dtype, sizeof r->dtype, "BF16");
    snprintf(r->kv_dtype, sizeof r->kv_dtype, "BF16");
    r->layers = 36;
    r->hidden = 2560;
    r->heads = 32;
    r->kv_heads = 8;
    r->head_dim = 128;
    r->ffn = 9728;
    r->vocab = 151936;
    r->model_max_pos = 262144;
    r->params = 4.02e9;
    r->max_model_len = 262144;
    r->kv_blocks = 30000;
    r->block_size = 16;
    r->kv_bytes_per_token = 147456;
    r->max_num_seqs = 256;
    r->max_batched_tokens = 8192;
    r->copy_bw_gbs = 2900 * scale;
    r->mem_weights = 8.05e9;
    r->mem_kv = 30000.0 * 16 * 147456;
    r->mem_activations = 1.5e9;
    r->mem_overhead = 0.3e9;
    r->mem_device_total = 85e9;
    r->mem_peak_used = 80e9;
    int sp[3] = {512, 8192, 32768}, sg[3] = {128, 512, 512};
    for (int i = 0; i < 3; i++) {
        struct qr_report_single *s = &r->single[r->n_single++];
        s->prompt = sp[i];
        s->gen = sg[i];
        s->ran = i < 2;
        s->ttft_ms = 20.0 * (i + 1) / scale;
        s->decode_tok_s = 200 * scale / (i + 1);
        s->bytes_per_token = 8e9 + sp[i] * 147456.0;
        s->eff_gbs = s->bytes_per_token * s->decode_tok_s / 1e9;
        s->peak_vram_bytes = 79e9;
        s->vram_needed_bytes = 9.9e9 + i;
        if (!s->ran)
            snprintf(s->note, sizeof s->note, "skipped | over <limit>");
    }
    r->sweep_prompt = 8192;
    r->sweep_gen = 512;
    for (int i = 0; i < 5; i++) {
        struct qr_report_sweep *p = &r->sweep[r->n_sweep++];
        p->conc = 1 << i;
        p->prompt = 8192;
        p->gen = 512;
        p->ttft_mean_ms = 300.0 * (1 << i) / scale;
        p->ttft_p99_ms = p->ttft_mean_ms * 1.2;
        p->tpot_mean_ms = 5 + i;
        p->tpot_p99_ms = 6 + i;
        p->output_tok_s = 190.0 * (1 << i) * scale;
        p->total_tok_s = p->output_tok_s * 17;
        p->wall_s = 3 + i;
    }
    r->max_conc_ttft_1s = 2;
    snprintf(r->sweep_note, sizeof r->sweep_note, "Stopped at concurrency 16: mean TTFT reached 1 s.");
    int ctx[4] = {32768, 65536, 131072, 262144};
    for (int i = 0; i < 4; i++) {
        struct qr_report_ctx *c = &r->ladder[r->n_ladder++];
        c->context = ctx[i];
        c->fits = i < 3;
        c->timed = c->fits;
        c->gen = 64;
        c->prompt = ctx[i] - 64;
        c->ttft_ms = 1000.0 * (i + 1);
        c->decode_tok_s = 150;
        c->total_s = 2.0 * (i + 1);
    }
    r->longest_context_fits = 131072;
    r->total_time_s = 321.5;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static bool same(const struct qr_report *a, const struct qr_report *b)
{
    bool ok = !strcmp(a->label, b->label) && !strcmp(a->device, b->device) && !strcmp(a->driver, b->driver) &&
              !strcmp(a->commit, b->commit) && a->layers == b->layers && a->vocab == b->vocab &&
              a->kv_blocks == b->kv_blocks && fabs(a->copy_bw_gbs - b->copy_bw_gbs) < 1e-9 &&
              a->n_single == b->n_single && a->n_sweep == b->n_sweep && a->n_ladder == b->n_ladder &&
              a->max_conc_ttft_1s == b->max_conc_ttft_1s && a->longest_context_fits == b->longest_context_fits &&
              fabs(a->mem_kv - b->mem_kv) < 1 && a->quick == b->quick && !strcmp(a->sweep_note, b->sweep_note);
    for (int i = 0; ok && i < a->n_single; i++)
        ok = a->single[i].prompt == b->single[i].prompt && a->single[i].ran == b->single[i].ran &&
             fabs(a->single[i].eff_gbs - b->single[i].eff_gbs) < 1e-9 && !strcmp(a->single[i].note, b->single[i].note) &&
             a->single[i].vram_needed_bytes == b->single[i].vram_needed_bytes;
    for (int i = 0; ok && i < a->n_sweep; i++)
        ok = a->sweep[i].conc == b->sweep[i].conc && fabs(a->sweep[i].ttft_p99_ms - b->sweep[i].ttft_p99_ms) < 1e-9 &&
             fabs(a->sweep[i].total_tok_s - b->sweep[i].total_tok_s) < 1e-6;
    for (int i = 0; ok && i < a->n_ladder; i++)
        ok = a->ladder[i].context == b->ladder[i].context && a->ladder[i].fits == b->ladder[i].fits &&
             a->ladder[i].prompt == b->ladder[i].prompt;
    return ok;
}

static void test_stats(void)
{
    double v[5] = {5, 1, 4, 2, 3};
    CHECK(fabs(qr_report_mean(v, 5) - 3) < 1e-12);
    CHECK(qr_report_percentile(v, 5, 99) == 5);
    CHECK(qr_report_percentile(v, 5, 50) == 3);
    CHECK(qr_report_percentile(v, 5, 0) == 1);
    double w[100];
    for (int i = 0; i < 100; i++)
        w[i] = 100 - i;
    CHECK(qr_report_percentile(w, 100, 99) == 99);
    CHECK(qr_report_mean(NULL, 0) == 0);
}

static void test_json(void)
{
    struct qr_report *a = calloc(2, sizeof *a);
    fill(&a[0], "H100 / cuda", 1);
    fill(&a[1], "H100 / vulkan", 0.5);
    a[1].copy_bw_gbs = 0;   /* n/a */
    char *js = NULL;
    CHECK(qr_report_to_json(a, 1, &js) == QR_OK);
    CHECK(js && strstr(js, "\"schema\":\t\"qrun-report/1\""));
    CHECK(js && !strstr(js, "\"comparison\""));
    struct qr_report *back = NULL;
    int n = 0;
    CHECK(js && qr_report_from_json(js, strlen(js), &back, &n) == QR_OK);
    CHECK(n == 1 && back && same(&a[0], &back[0]));
    free(back);
    free(js);

    /* a comparison of two; copy bandwidth n/a is null, and fractions too */
    CHECK(qr_report_to_json(a, 2, &js) == QR_OK);
    CHECK(js && strstr(js, "\"comparison\":\ttrue"));
    CHECK(js && strstr(js, "\"copy_bandwidth_gbs\":\tnull"));
    CHECK(js && count(js, "\"bandwidth_fraction\":\tnull") == 1 + 3);   /* the skipped run of a[0], all of a[1] */
    back = NULL;
    CHECK(js && qr_report_from_json(js, strlen(js), &back, &n) == QR_OK);
    CHECK(n == 2 && back && same(&a[0], &back[0]) && same(&a[1], &back[1]));
    free(back);

    /* errors name the field */
    char *bad = js ? strdup(js) : NULL;
    char *p = bad ? strstr(bad, "\"ttft_p99_ms\"") : NULL;
    if (p)
        memcpy(p, "\"ttft_p98_ms\"", 13);
    back = NULL;
    CHECK(bad && qr_report_from_json(bad, strlen(bad), &back, &n) == QR_E_FORMAT && !back);
    CHECKF(strstr(qr_last_error(), "sweep.points[].ttft_p99_ms"), "%s", qr_last_error());
    free(bad);
    const char *wrong = "{\"schema\": \"qrun-report/1\", \"label\": 5}";
    CHECK(qr_report_from_json(wrong, strlen(wrong), &back, &n) == QR_E_FORMAT);
    CHECKF(strstr(qr_last_error(), "label"), "%s", qr_last_error());
    const char *other = "{\"schema\": \"something/2\"}";
    CHECK(qr_report_from_json(other, strlen(other), &back, &n) == QR_E_FORMAT);
    CHECK(qr_report_from_json("{", 1, &back, &n) == QR_E_FORMAT);
    const char *empty = "{\"reports\": []}";
    CHECK(qr_report_from_json(empty, strlen(empty), &back, &n) == QR_E_FORMAT);
    CHECK(qr_report_to_json(a, 0, &js) == QR_E_INVALID_ARG);
    free(js);
    free(a);
}

static void test_md_html(void)
{
    struct qr_report *a = calloc(2, sizeof *a);
    fill(&a[0], "H100 / cuda", 1);
    fill(&a[1], "H100 <vk> & co", 0.5);
    char *md = NULL, *html = NULL;
    CHECK(qr_report_to_md(a, 1, &md) == QR_OK);
    CHECK(md && strstr(md, "# qrun hardware report: H100 / cuda"));
    CHECK(md && strstr(md, "| 8192 / 512 | 40.0 | 100.0 |"));      /* ttft 40 ms, 100 tok/s */
    CHECK(md && strstr(md, "| 1 | 300.0 | 360.0 | 5.00 | 6.00 |"));
    CHECK(md && strstr(md, "| 73.57 | 9.22 |"));                    /* peak in use, needed */
    CHECK(md && strstr(md, "Largest concurrency with mean TTFT < 1 s: **2**"));
    CHECK(md && strstr(md, "Longest context that fits: **128K**"));
    CHECK(md && strstr(md, "| 256K | no |"));
    CHECK(md && strstr(md, "skipped \\| over <limit>"));           /* | escaped in a cell */
    CHECK(md && strstr(md, "2900.0 GB/s"));
    free(md);
    md = NULL;
    CHECK(qr_report_to_md(a, 2, &md) == QR_OK);
    CHECK(md && strstr(md, "qrun hardware comparison (2 reports)") && strstr(md, "## H100 <vk> & co"));
    free(md);

    CHECK(qr_report_to_html(a, 1, &html) == QR_OK);
    CHECK(html && count(html, "<svg class=\"qr-chart\"") == 3);
    CHECK(html && strstr(html, "id=\"chart-ttft\"") && strstr(html, "id=\"chart-throughput\"") &&
          strstr(html, "id=\"chart-memory\""));
    CHECK(html && count(html, "<g class=\"qr-series\">") == 4);     /* mean/p99 and total/output */
    CHECK(html && count(html, "<circle") == 4 * 5);
    CHECK(html && count(html, "class=\"qr-bar\"") == 5);            /* 4 parts + free */
    CHECK(html && !strstr(html, "<script"));
    CHECK(html && count(html, "http") == count(html, "http://www.w3.org/2000/svg"));   /* self-contained */
    CHECK(html && count(html, "src=") == 0);
    /* the 1 s line is drawn on the TTFT chart (data crosses it) */
    CHECK(html && strstr(html, ">1 s</text>"));
    /* x axis ticks: 1 .. 16 */
    CHECK(html && strstr(html, "text-anchor=\"middle\">16</text>"));
    free(html);
    html = NULL;
    CHECK(qr_report_to_html(a, 2, &html) == QR_OK);
    CHECK(html && count(html, "<g class=\"qr-series\">") == 8);
    CHECK(html && count(html, "class=\"qr-bar\"") == 10);
    CHECK(html && strstr(html, "H100 &lt;vk&gt; &amp; co") && !strstr(html, "<vk>"));
    free(html);
    free(a);
}

static void test_write_dir(void)
{
    struct qr_report *a = calloc(1, sizeof *a);
    fill(a, "x", 1);
    char dir[] = "/tmp/qr_report_testXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/out", dir);
    CHECK(qr_report_write_dir(sub, a, 1) == QR_OK);
    const char *names[3] = {"report.json", "report.md", "report.html"};
    for (int i = 0; i < 3; i++) {
        char p[192];
        snprintf(p, sizeof p, "%s/%s", sub, names[i]);
        size_t len = 0;
        char *t = qt_read_file(p, &len);
        CHECKF(t && len > 500, "%s", p);
        if (i == 0 && t) {
            struct qr_report *b = NULL;
            int n = 0;
            CHECK(qr_report_from_json(t, len, &b, &n) == QR_OK && n == 1 && same(a, b));
            free(b);
        }
        free(t);
        unlink(p);
    }
    rmdir(sub);
    CHECK(qr_report_write_dir("/proc/nonexistent/x", a, 1) == QR_E_IO);
    rmdir(dir);
    free(a);
}

int main(void)
{
    test_stats();
    test_json();
    test_md_html();
    test_write_dir();
    return qt_summary("test_report_render");
}

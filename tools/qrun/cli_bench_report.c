/* cli_bench_report.c - `qrun bench report [engine flags] --out DIR [--quick] [--label S]`
 *                      `qrun bench report --out DIR --compare A.json B.json ...`
 *
 * The hardware report: single-request latency and effective bandwidth,
 * a concurrency sweep, the context ladder, the memory breakdown and the
 * environment, measured through the engine API (report_measure.c) and written
 * as report.json (docs/report-schema.json), report.md and report.html with
 * inline SVG charts (core/report_render.c).  --compare merges reports from
 * different GPUs or backends into one comparison with shared charts. */
#include "cli.h"
#include "report_measure.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: qrun bench report [engine options] --out DIR [--quick] [--label NAME]\n"
               "       qrun bench report --out DIR --compare A.json B.json ...\n"
               "  --out DIR       write report.json, report.md and report.html into DIR (created)\n"
               "  --quick         reduced ladder scaled to the max model length (CI; < 2 minutes)\n"
               "  --label NAME    name of this report in comparisons (default \"<device> / <backend>\")\n"
               "  --compare F...  merge report.json files (single reports or comparisons) into one comparison\n");
    qr_cli_engine_usage(f);
}

static int compare(const char *out, char **files, int n_files)
{
    struct qr_report *all = NULL;
    int n_all = 0, rc = 1;
    for (int i = 0; i < n_files; i++) {
        size_t len = 0;
        char *text = qr_cli_read_file(files[i], &len);
        if (!text)
            goto out;
        struct qr_report *reps = NULL;
        int n = 0;
        qr_status st = qr_report_from_json(text, len, &reps, &n);
        free(text);
        if (st != QR_OK) {
            fprintf(stderr, "qrun: %s: %s\n", files[i], qr_last_error());
            goto out;
        }
        struct qr_report *grown = realloc(all, sizeof *all * (size_t)(n_all + n));
        if (!grown) {
            free(reps);
            fprintf(stderr, "qrun: out of memory\n");
            goto out;
        }
        all = grown;
        memcpy(all + n_all, reps, sizeof *reps * (size_t)n);
        n_all += n;
        free(reps);
    }
    if (n_all < 2) {
        fprintf(stderr, "qrun: --compare needs at least two reports (got %d)\n", n_all);
        goto out;
    }
    if (qr_report_write_dir(out, all, n_all) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        goto out;
    }
    fprintf(stderr, "report: compared %d reports -> %s/report.{md,html,json}\n", n_all, out);
    rc = 0;
out:
    free(all);
    return rc;
}

int qr_cli_bench_report(int argc, char **argv)
{
    struct qr_engine_opts eo;
    qr_engine_opts_default(&eo);
    const char *out = NULL, *label = NULL;
    bool quick = false;
    char **cmp = NULL;
    int n_cmp = 0;
    for (int i = 1; i < argc; i++) {
        int k = qr_cli_engine_flag(&eo, argc, argv, i);
        if (k < 0)
            return 2;
        if (k > 0) {
            i += k - 1;
            continue;
        }
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--out") && v) {
            out = v;
            i++;
        } else if (!strcmp(a, "--label") && v) {
            label = v;
            i++;
        } else if (!strcmp(a, "--quick")) {
            quick = true;
        } else if (!strcmp(a, "--compare")) {
            cmp = argv + i + 1;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                i++;
                n_cmp++;
            }
            if (n_cmp == 0) {
                fprintf(stderr, "qrun: --compare needs report.json files\n");
                return 2;
            }
        } else {
            fprintf(stderr, "qrun bench report: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "qrun bench report: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    if (cmp)
        return compare(out, cmp, n_cmp);
    if (qr_cli_engine_finish(&eo))
        return 2;
    eo.progress = qr_cli_progress;
    eo.progress_user = "loading";
    struct qr_engine *e = NULL;
    if (qr_engine_create(&eo, &e) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        return 1;
    }
    struct qr_report *r = calloc(1, sizeof *r);
    int rc = 1;
    if (!r) {
        fprintf(stderr, "qrun: out of memory\n");
        goto out;
    }
    struct qr_report_plan_opts po = {
        .quick = quick,
        .label = label,
        .max_num_seqs = eo.max_num_seqs > 0 ? eo.max_num_seqs : 256,
        .max_batched_tokens = eo.max_num_batched_tokens > 0 ? eo.max_num_batched_tokens : 8192,
    };
    if (qr_report_measure(e, &eo, &po, r))
        goto out;
    if (qr_report_write_dir(out, r, 1) != QR_OK) {
        fprintf(stderr, "qrun: %s\n", qr_last_error());
        goto out;
    }
    char *md = NULL;
    if (qr_report_to_md(r, 1, &md) == QR_OK) {
        fputs(md, stdout);
        free(md);
    }
    fprintf(stderr, "report: %s/report.{md,html,json} in %.1f s\n", out, r->total_time_s);
    rc = 0;
out:
    free(r);
    qr_engine_destroy(e);
    return rc;
}

/* main.c - `qrun` dispatcher.  `qrun prompt.txt` generates; other words name
 * subcommands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qrun [--backend cpu|cuda|vulkan|auto] [--model DIR] [options] prompt.txt\n"
            "       qrun ppl [--backend B] --model DIR [--json] text.txt\n"
            "       qrun tokenize [--model DIR] [--decode] [--jsonl] [--chat FILE.json] [FILE|-]\n"
            "       qrun backends [--config INI]\n"
            "       qrun serve [--model DIR] [--backend B] [--host H] [--port P] ...\n"
            "       qrun bench latency|throughput|serve|report ...\n"
            "       qrun plan --model DIR [--gpu NAME | --vram GiB] [--compare A,B,...]\n"
            "Run `qrun COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "ppl"))
        return qr_cli_ppl(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize"))
        return qr_cli_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "backends"))
        return qr_cli_backends(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return qr_cli_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan"))
        return qr_cli_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return qr_cli_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) {
        if (argc < 3) {
            fprintf(stderr, "qrun bench: which benchmark? latency, throughput, serve or report\n");
            return 2;
        }
        const char *b = argv[2];
        if (!strcmp(b, "latency"))
            return qr_cli_bench_latency(argc - 2, argv + 2);
        if (!strcmp(b, "throughput"))
            return qr_cli_bench_throughput(argc - 2, argv + 2);
        if (!strcmp(b, "serve"))
            return qr_cli_bench_serve(argc - 2, argv + 2);
        if (!strcmp(b, "report"))
            return qr_cli_bench_report(argc - 2, argv + 2);
        fprintf(stderr, "qrun bench: unknown benchmark '%s' (latency, throughput, serve, report)\n", b);
        return 2;
    }
    /* default: generate; argv[0] stands in for the subcommand name */
    return qr_cli_generate(argc, argv);
}

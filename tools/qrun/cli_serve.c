/* cli_serve.c - placeholder until the command is written (returns 2). */
#include "cli.h"

int qr_cli_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "qrun: this command is not implemented yet\n");
    return 2;
}

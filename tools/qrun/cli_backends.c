/* cli_backends.c - `qrun backends [--config INI]`: each configured backend,
 * its plugin, its devices (name, memory, caps), or why it is unavailable. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "qrun/qr_registry.h"

static void caps_str(unsigned caps, char *out, size_t cap)
{
    static const struct { unsigned bit; const char *name; } k_caps[] = {
        {QR_CAP_BF16, "bf16"}, {QR_CAP_F16, "f16"}, {QR_CAP_GRAPH_REPLAY, "graph-replay"},
        {QR_CAP_HOST_MEMORY, "host-memory"}, {QR_CAP_COOPMAT, "coopmat"},
        {QR_CAP_SOFTWARE, "software (auto prefers another backend)"},
    };
    size_t w = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof k_caps / sizeof k_caps[0]; i++)
        if ((caps & k_caps[i].bit) && w < cap) {
            int n = snprintf(out + w, cap - w, "%s%s", w ? "," : "", k_caps[i].name);
            if (n > 0)
                w += (size_t)n;
        }
    if (!out[0])
        snprintf(out, cap, "-");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: qrun backends [--config INI]\n"
               "Lists each backend configured in backends.ini with its devices, or why it is unavailable.\n");
}

int qr_cli_backends(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
        } else {
            fprintf(stderr, "qrun backends: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    struct qr_config_ini *ini = NULL;
    if (qr_ini_load(config, &ini) != QR_OK) {
        fprintf(stderr, "qrun backends: %s\n", qr_last_error());
        return 1;
    }
    printf("config: %s\n", qr_ini_path(ini) ? qr_ini_path(ini) : "(none found; built-in defaults)");
    struct qr_backend_info info[16];
    int n = 0;
    if (qr_backends_list(ini, info, 16, &n) != QR_OK) {
        fprintf(stderr, "qrun backends: %s\n", qr_last_error());
        qr_ini_free(ini);
        return 1;
    }
    int n_usable = 0;
    for (int i = 0; i < n; i++) {
        const struct qr_backend_info *b = &info[i];
        bool ok = b->loaded && b->n_devices > 0;
        n_usable += ok;
        printf("%-8s priority %-4d %s\n", b->name, b->priority, ok ? "available" : "unavailable");
        printf("         library: %s\n", b->lib_path);
        if (!ok) {
            printf("         why: %s\n", b->why[0] ? b->why : "unknown");
            if (strstr(b->why, "not found (searched"))
                printf("         hint: not built (cmake -DQR_%s=ON) or not installed; set lib= in the config "
                       "or add its directory to QR_BACKEND_PATH\n",
                       !strcmp(b->name, "cuda") ? "CUDA" : !strcmp(b->name, "vulkan") ? "VULKAN" : "<NAME>");
            continue;
        }
        for (int d = 0; d < b->n_devices; d++) {
            struct qr_device_props p;
            memset(&p, 0, sizeof p);
            if (!b->reg->device_describe || b->reg->device_describe(d, &p) != QR_OK) {
                printf("         device %d: (cannot describe: %s)\n", d, qr_last_error());
                continue;
            }
            p.name[sizeof p.name - 1] = 0;
            p.description[sizeof p.description - 1] = 0;
            char caps[128];
            caps_str(p.caps, caps, sizeof caps);
            printf("         device %d: %s\n", d, p.name);
            if (p.description[0])
                printf("                   %s\n", p.description);
            printf("                   memory %.2f GiB total, %.2f GiB free, max alloc %.2f GiB; caps %s\n",
                   (double)p.mem_total / (1 << 30), (double)p.mem_free / (1 << 30), (double)p.max_alloc / (1 << 30),
                   caps);
        }
    }
    qr_ini_free(ini);
    return n_usable > 0 ? 0 : 1;
}

/* cli_serve.c - `qrun serve`: flags, model loading behind a live /health,
 * SIGTERM drain.  The HTTP side is in server_*.c (see server.h). */
#include "cli.h"
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef QR_HAVE_MHD
#include <microhttpd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qrun serve [--model DIR] [--backend B] [--host 127.0.0.1] [--port 8000] [options]\n"
            "OpenAI-compatible server: /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics,\n"
            "/tokenize, /detokenize, and a chat page at /.\n"
            "server options:\n"
            "  --host H                   address to bind (default 127.0.0.1)\n"
            "  --port P                   port (default 8000; 0 picks a free one, printed on stderr)\n"
            "  --served-model-name NAME   the model id clients use (default: the model directory's name)\n"
            "  --api-key KEY              require 'Authorization: Bearer KEY' on /v1/* and /tokenize\n"
            "                             (also $QRUN_API_KEY); /health, /metrics and / stay open\n"
            "  --cors-origin O[,O...]     allow these origins (or '*') cross-origin; default none\n"
            "  --max-body-bytes N         largest request body (default 8 MiB)\n"
            "  --max-header-bytes N       largest request line + headers (default 64 KiB)\n"
            "  --max-header-count N       most header fields per request (default 256)\n"
            "  --max-connections N        simultaneous connections (default 512)\n"
            "  --timeout S                idle connection timeout in seconds (default 120)\n"
            "  --shutdown-timeout S       on SIGTERM, drain in-flight requests up to S seconds (default 30)\n"
            "  --health-stall-timeout S   /health is 503 when requests wait and no step ran for S s (default 120)\n"
            "  --verbose                  log every error response\n");
    qr_cli_engine_usage(f);
}

static bool g_verbose;

static void log_cb(enum qr_log_level lvl, const char *msg, void *user)
{
    (void)user;
    if (lvl == QR_LOG_DEBUG && !g_verbose)
        return;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    fprintf(stderr, "qrun [%s] %s\n", names[lvl < 4 ? lvl : 3], msg);
}

struct loader {
    struct srv *s;
    struct qr_engine_opts opts;
    struct qr_engine *engine;
    int ok;
};

static void *load_thread(void *arg)
{
    struct loader *l = arg;
    double t0 = qr_time_s();
    struct qr_engine *e = NULL;
    if (qr_engine_create(&l->opts, &e) != QR_OK) {
        fprintf(stderr, "qrun serve: cannot load the model: %s\n", qr_last_error());
        atomic_store(&l->s->state, SRV_FAILED);
        kill(getpid(), SIGUSR1);
        return NULL;
    }
    if (qr_engine_start(e) != QR_OK) {
        fprintf(stderr, "qrun serve: cannot start the engine: %s\n", qr_last_error());
        qr_engine_destroy(e);
        atomic_store(&l->s->state, SRV_FAILED);
        kill(getpid(), SIGUSR1);
        return NULL;
    }
    l->engine = e;
    srv_engine_ready(l->s, e);
    l->ok = 1;
    fprintf(stderr, "qrun serve: model '%s' ready in %.1f s (max_model_len %d, chat template %s)\n",
            l->s->model_name, qr_time_s() - t0, l->s->lim.max_model_len, qr_chat_variant_name(l->s->chat_variant));
    return NULL;
}

static void label_safe_name(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++) {
        char c = src[i];
        dst[i] = (c == '"' || c == '\\' || c == '\n' || (unsigned char)c < 0x20) ? '_' : c;
    }
    dst[i] = 0;
}

int qr_cli_serve(int argc, char **argv)
{
    struct qr_engine_opts eo;
    qr_engine_opts_default(&eo);
    struct srv_config cfg = {
        .host = "127.0.0.1", .port = 8000, .max_body = 8u << 20, .max_header = 64u << 10,
        .max_connections = 512, .timeout_s = 120, .stall_s = 120.0, .shutdown_timeout_s = 30.0,
    };
    cfg.api_key = getenv("QRUN_API_KEY");
    if (cfg.api_key && !*cfg.api_key)
        cfg.api_key = NULL;
    long long n;
    double d;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int k = qr_cli_engine_flag(&eo, argc, argv, i);
        if (k < 0)
            return 2;
        if (k > 0) {
            i += k - 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            cfg.verbose = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "qrun serve: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--host")) cfg.host = v;
        else if (!strcmp(a, "--port")) {
            if (qr_cli_parse_int(a, v, 0, 65535, &n)) return 2;
            cfg.port = (int)n;
        } else if (!strcmp(a, "--served-model-name")) cfg.served_model_name = v;
        else if (!strcmp(a, "--api-key")) cfg.api_key = *v ? v : NULL;
        else if (!strcmp(a, "--cors-origin") || !strcmp(a, "--allowed-origins")) cfg.cors_origins = v;
        else if (!strcmp(a, "--max-body-bytes")) {
            if (qr_cli_parse_int(a, v, 1024, 1LL << 32, &n)) return 2;
            cfg.max_body = (size_t)n;
        } else if (!strcmp(a, "--max-header-bytes")) {
            if (qr_cli_parse_int(a, v, 1024, 1 << 24, &n)) return 2;
            cfg.max_header = (size_t)n;
        } else if (!strcmp(a, "--max-header-count")) {
            if (qr_cli_parse_int(a, v, 8, 65536, &n)) return 2;
            cfg.max_header_count = (int)n;
        } else if (!strcmp(a, "--max-connections")) {
            if (qr_cli_parse_int(a, v, 1, 65536, &n)) return 2;
            cfg.max_connections = (int)n;
        } else if (!strcmp(a, "--timeout")) {
            if (qr_cli_parse_int(a, v, 1, 86400, &n)) return 2;
            cfg.timeout_s = (int)n;
        } else if (!strcmp(a, "--shutdown-timeout")) {
            if (qr_cli_parse_float(a, v, 0, 86400, &d)) return 2;
            cfg.shutdown_timeout_s = d;
        } else if (!strcmp(a, "--health-stall-timeout")) {
            if (qr_cli_parse_float(a, v, 0.1, 86400, &d)) return 2;
            cfg.stall_s = d;
        } else {
            fprintf(stderr, "qrun serve: unknown option: %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (qr_cli_engine_finish(&eo))
        return 2;
    g_verbose = cfg.verbose;
    qr_log_set_callback(log_cb, NULL);
    if (cfg.cors_origins && !strcmp(cfg.cors_origins, "*") && !cfg.api_key)
        fprintf(stderr, "qrun serve: warning: --cors-origin '*' without --api-key lets any web page use this "
                        "server from a visitor's browser\n");

    static struct srv s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    srv_metrics_init(&s.metrics);
    pthread_mutex_init(&s.jobs_mu, NULL);
    s.created = (long long)time(NULL);
    const char *name = cfg.served_model_name;
    if (!name) {
        const char *dir = eo.model_dir;
        size_t l = strlen(dir);
        while (l > 1 && dir[l - 1] == '/')
            l--;
        const char *b = dir + l;
        while (b > dir && b[-1] != '/')
            b--;
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(dir + l - b), b);
        label_safe_name(s.model_name, sizeof s.model_name, tmp);
    } else {
        label_safe_name(s.model_name, sizeof s.model_name, name);
    }
    s.names[0] = s.model_name;
    s.names[1] = eo.model_dir;
    s.lim.model_names = s.names;
    s.lim.n_model_names = 2;
    s.lim.vocab_size = 1;
    s.lim.max_model_len = 1;
    eo.progress = qr_cli_progress;
    eo.progress_user = "loading";

    /* signals are taken by sigwait in this thread only */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (srv_start_http(&s))
        return 1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s.mhd, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : cfg.port;
    fprintf(stderr, "qrun serve: listening on http://%s:%d (model %s loading from %s)\n", cfg.host, port,
            s.model_name, eo.model_dir);
    fflush(stderr);

    struct loader ld = {.s = &s, .opts = eo};
    pthread_t lt;
    if (pthread_create(&lt, NULL, load_thread, &ld)) {
        fprintf(stderr, "qrun serve: cannot start the loader thread\n");
        srv_stop_http(&s);
        return 1;
    }
    int sig = 0;
    for (;;) {
        if (sigwait(&set, &sig))
            continue;
        if (sig == SIGUSR1) {
            if (atomic_load(&s.state) == SRV_FAILED) {
                pthread_join(lt, NULL);
                srv_stop_http(&s);
                return 1;
            }
            continue;
        }
        break;
    }
    fprintf(stderr, "qrun serve: %s: no new connections; draining (up to %.0f s)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", cfg.shutdown_timeout_s);
    if (atomic_load(&s.state) == SRV_LOADING) {
        /* loading cannot be interrupted: stop listening and leave at once */
        atomic_store(&s.state, SRV_STOPPING);
        srv_quiesce(&s);
        fprintf(stderr, "qrun serve: stopped during model load\n");
        fflush(stderr);
        _exit(0);
    }
    pthread_join(lt, NULL);
    if (atomic_load(&s.state) == SRV_READY)
        atomic_store(&s.state, SRV_DRAINING);
    srv_quiesce(&s);
    double deadline = qr_time_s() + cfg.shutdown_timeout_s;
    struct timespec tick = {0, 50 * 1000000L};
    bool hurry = false;
    while (atomic_load(&s.active_jobs) > 0 && qr_time_s() < deadline) {
        int r = sigtimedwait(&set, NULL, &tick);
        if (r == SIGTERM || r == SIGINT) {
            hurry = true;       /* a second signal: stop now */
            break;
        }
    }
    if (atomic_load(&s.active_jobs) > 0) {
        fprintf(stderr, "qrun serve: %d request(s) still running: cancelling\n", atomic_load(&s.active_jobs));
        if (ld.engine)
            srv_cancel_all(&s);
        double grace = qr_time_s() + (hurry ? 0.5 : 3.0);
        while (atomic_load(&s.active_jobs) > 0 && qr_time_s() < grace)
            nanosleep(&tick, NULL);
    }
    atomic_store(&s.state, SRV_STOPPING);
    srv_stop_http(&s);
    if (ld.engine) {
        qr_engine_stop(ld.engine);
        qr_engine_destroy(ld.engine);
    }
    srv_metrics_destroy(&s.metrics);
    fprintf(stderr, "qrun serve: stopped\n");
    return 0;
}

#else

int qr_cli_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "qrun serve: this build has no libmicrohttpd (install libmicrohttpd-dev and rebuild)\n");
    return 2;
}

#endif

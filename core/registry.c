/* registry.c - backends.ini, plugin loading (dlopen), device opening, and the
 * checked qr_dev_* / qr_buf_* / qr_stream_* / qr_graph_run wrappers.
 *
 * Plugins: each backend is libqrun-<name>.so exporting qr_backend_init() and,
 * optionally, qr_backend_score().  A plugin is looked for at the ini's `lib`
 * (relative to the ini's directory), then next to the executable
 * (/proc/self/exe), then in ../lib/qrun from it, then in each directory of
 * $QR_BACKEND_PATH.  Every way a plugin can be missing or broken (no file,
 * dlopen error, no qr_backend_init, score 0, init returning NULL, wrong
 * api_version, incomplete vtables) becomes a message, never a crash.
 * Loaded libraries stay loaded for the life of the process (unloading a GPU
 * runtime safely is not worth the risk).
 *
 * The wrappers are the only callers of the vtables: they check arguments,
 * buffer bounds (every view of every op against the extent the op touches),
 * refuse work on a dead device, mark a device dead on QR_E_DEVICE_LOST, and
 * supply defaults for optional entries (graph_exec, argmax, buf_from_host).
 */
#include "qrun/qr_registry.h"

#include <dlfcn.h>
#include <errno.h>
#include <iniparser.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef QR_INSTALL_PREFIX
#define QR_INSTALL_PREFIX "/usr/local"
#endif

#define QR_PATH_MAX 1024

/* snprintf that may truncate on purpose (messages, paths bounded by buffers) */
static void sfmt(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sfmt(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* backends.ini                                                              */
/* ------------------------------------------------------------------------ */

struct qr_config_ini {
    dictionary *d;                 /* NULL: no file found, defaults apply */
    char path[QR_PATH_MAX];        /* "" when none */
    char dir[QR_PATH_MAX];         /* directory of path ("" when none) */
    char model_dir[QR_PATH_MAX];   /* [qrun] model_dir resolved against dir */
};

static __thread char t_ini_err[512];

static int ini_error_cb(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t len = strlen(t_ini_err);
    if (len < sizeof t_ini_err - 1)
        vsnprintf(t_ini_err + len, sizeof t_ini_err - len, fmt, ap);
    va_end(ap);
    return 0;
}

static bool file_readable(const char *p)
{
    struct stat st;
    return p && *p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, R_OK) == 0;
}

static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        sfmt(out, cap, ".");
    else if (slash == path)
        sfmt(out, cap, "/");
    else
        sfmt(out, cap, "%.*s", (int)(slash - path), path);
}

static void path_join(char *out, size_t cap, const char *dir, const char *rel)
{
    if (rel[0] == '/' || !dir || !*dir)
        sfmt(out, cap, "%s", rel);
    else
        sfmt(out, cap, "%s/%s", dir, rel);
}

qr_status qr_ini_load(const char *explicit_path, struct qr_config_ini **out)
{
    if (!out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_ini_load: out is NULL");
    const char *path = NULL;
    const char *from = NULL;
    const char *env = getenv("QRUN_CONFIG");
    static const char k_install[] = QR_INSTALL_PREFIX "/etc/qrun/backends.ini";
    if (explicit_path && *explicit_path) {
        path = explicit_path;
        from = "--config";
    } else if (env && *env) {
        path = env;
        from = "$QRUN_CONFIG";
    } else if (file_readable("backends.ini")) {
        path = "backends.ini";
    } else if (file_readable(k_install)) {
        path = k_install;
    }
    errno = 0;
    if (path && from && !file_readable(path))
        return qr_set_error(QR_E_NOT_FOUND, "config file '%s' (from %s) cannot be read: %s", path, from,
                            errno ? strerror(errno) : "not a regular file");

    struct qr_config_ini *ini = calloc(1, sizeof *ini);
    if (!ini)
        return qr_set_error(QR_E_OOM_HOST, "qr_ini_load: out of memory");
    if (path) {
        t_ini_err[0] = 0;
        iniparser_set_error_callback(ini_error_cb);
        ini->d = iniparser_load(path);
        iniparser_set_error_callback(NULL);
        if (!ini->d) {
            size_t n = strlen(t_ini_err);
            while (n && (t_ini_err[n - 1] == '\n' || t_ini_err[n - 1] == ' '))
                t_ini_err[--n] = 0;
            for (char *c = t_ini_err; *c; c++)
                if (*c == '\n')
                    *c = ' ';
            free(ini);
            return qr_set_error(QR_E_FORMAT, "config file '%s' is malformed: %s", path,
                                t_ini_err[0] ? t_ini_err : "iniparser could not parse it");
        }
        /* make the path absolute so later relative lookups don't depend on cwd */
        char abs[PATH_MAX];
        if (realpath(path, abs))
            sfmt(ini->path, sizeof ini->path, "%s", abs);
        else
            sfmt(ini->path, sizeof ini->path, "%s", path);
        dir_of(ini->path, ini->dir, sizeof ini->dir);
        const char *md = iniparser_getstring(ini->d, "qrun:model_dir", NULL);
        if (md && *md)
            path_join(ini->model_dir, sizeof ini->model_dir, ini->dir, md);
        qr_log(QR_LOG_DEBUG, "config: %s", ini->path);
    }
    *out = ini;
    return QR_OK;
}

void qr_ini_free(struct qr_config_ini *ini)
{
    if (!ini)
        return;
    if (ini->d)
        iniparser_freedict(ini->d);
    free(ini);
}

const char *qr_ini_path(const struct qr_config_ini *ini) { return ini && ini->path[0] ? ini->path : NULL; }

const char *qr_ini_get(const struct qr_config_ini *ini, const char *section, const char *key)
{
    if (!ini || !ini->d || !section || !key)
        return NULL;
    char k[256];
    sfmt(k, sizeof k, "%s:%s", section, key);
    return iniparser_getstring(ini->d, k, NULL);
}

const char *qr_ini_default_model_dir(const struct qr_config_ini *ini)
{
    return ini && ini->model_dir[0] ? ini->model_dir : NULL;
}

/* ------------------------------------------------------------------------ */
/* the configured backends                                                   */
/* ------------------------------------------------------------------------ */

struct be_conf {
    char name[32];
    char section[64];
    char lib[512];
    int priority;
    bool enabled;
};

#define MAX_BACKENDS 16

static bool parse_bool(const char *s, bool def)
{
    if (!s || !*s)
        return def;
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1"))
        return true;
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !strcmp(s, "0"))
        return false;
    return def;
}

static int default_priority(const char *name)
{
    if (!strcmp(name, "cuda"))
        return 100;
    if (!strcmp(name, "vulkan"))
        return 50;
    if (!strcmp(name, "cpu"))
        return 10;
    return 0;
}

static void conf_fill(const struct qr_config_ini *ini, const char *name, struct be_conf *c)
{
    memset(c, 0, sizeof *c);
    sfmt(c->name, sizeof c->name, "%s", name);
    sfmt(c->section, sizeof c->section, "backend.%s", name);
    const char *lib = qr_ini_get(ini, c->section, "lib");
    if (lib && *lib)
        sfmt(c->lib, sizeof c->lib, "%s", lib);
    else
        sfmt(c->lib, sizeof c->lib, "libqrun-%s.so", name);
    const char *pr = qr_ini_get(ini, c->section, "priority");
    c->priority = pr && *pr ? atoi(pr) : default_priority(name);
    c->enabled = parse_bool(qr_ini_get(ini, c->section, "enabled"), true);
}

/* backends named in the ini ([backend.NAME] sections); the built-in three when
 * the ini names none.  Sorted by priority, highest first. */
static int conf_list(const struct qr_config_ini *ini, struct be_conf *out, int max)
{
    int n = 0;
    if (ini && ini->d) {
        int ns = iniparser_getnsec(ini->d);
        for (int i = 0; i < ns && n < max; i++) {
            const char *sec = iniparser_getsecname(ini->d, i);
            if (!sec || strncmp(sec, "backend.", 8) != 0 || !sec[8])
                continue;
            conf_fill(ini, sec + 8, &out[n++]);
        }
    }
    if (n == 0) {
        static const char *const k_defaults[] = {"cuda", "vulkan", "cpu"};
        for (int i = 0; i < 3 && n < max; i++)
            conf_fill(ini, k_defaults[i], &out[n++]);
    }
    for (int i = 1; i < n; i++) {   /* insertion sort, stable */
        struct be_conf t = out[i];
        int j = i - 1;
        while (j >= 0 && out[j].priority < t.priority) {
            out[j + 1] = out[j];
            j--;
        }
        out[j + 1] = t;
    }
    return n;
}

static bool conf_find(const struct qr_config_ini *ini, const char *name, struct be_conf *out)
{
    struct be_conf all[MAX_BACKENDS];
    int n = conf_list(ini, all, MAX_BACKENDS);
    for (int i = 0; i < n; i++)
        if (!strcmp(all[i].name, name)) {
            *out = all[i];
            return true;
        }
    /* not configured: fall back to the default library name, so that
     * `--backend foo` still finds libqrun-foo.so on the search path */
    if (strlen(name) >= sizeof out->name - 1 || strchr(name, '/'))
        return false;
    conf_fill(ini, name, out);
    return true;
}

/* ------------------------------------------------------------------------ */
/* plugin loading                                                            */
/* ------------------------------------------------------------------------ */

struct lib_entry {
    char path[QR_PATH_MAX];          /* resolved file */
    void *handle;
    struct qr_backend_reg *reg;      /* NULL when unusable */
    char why[256];
};

static pthread_mutex_t g_lib_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lib_entry g_libs[MAX_BACKENDS * 2];
static int g_n_libs;

static void exe_dir(char *out, size_t cap)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        out[0] = 0;
        return;
    }
    buf[n] = 0;
    dir_of(buf, out, cap);
}

/* Finds the plugin file for conf `c`.  Returns true with the path in out;
 * false with the searched locations in why. */
static bool find_lib(const struct qr_config_ini *ini, const struct be_conf *c, char *out, size_t cap,
                     char *why, size_t why_cap)
{
    char cands[8][QR_PATH_MAX];
    int nc = 0;
    const char *idir = ini && ini->dir[0] ? ini->dir : NULL;
    if (strchr(c->lib, '/')) {
        path_join(cands[nc++], QR_PATH_MAX, idir, c->lib);
    } else {
        char ed[QR_PATH_MAX];
        exe_dir(ed, sizeof ed);
        if (idir)
            path_join(cands[nc++], QR_PATH_MAX, idir, c->lib);
        if (ed[0]) {
            sfmt(cands[nc++], QR_PATH_MAX, "%s/%s", ed, c->lib);
            sfmt(cands[nc++], QR_PATH_MAX, "%s/../lib/qrun/%s", ed, c->lib);
        }
        const char *bp = getenv("QR_BACKEND_PATH");
        while (bp && *bp && nc < 8) {
            const char *colon = strchr(bp, ':');
            size_t len = colon ? (size_t)(colon - bp) : strlen(bp);
            if (len > 0 && len < QR_PATH_MAX - 2)
                sfmt(cands[nc++], QR_PATH_MAX, "%.*s/%s", (int)len, bp, c->lib);
            bp = colon ? colon + 1 : NULL;
        }
    }
    for (int i = 0; i < nc; i++)
        if (file_readable(cands[i])) {
            sfmt(out, cap, "%s", cands[i]);
            return true;
        }
    int w = snprintf(why, why_cap, "library %s not found (searched:", c->lib);
    for (int i = 0; i < nc && w > 0 && (size_t)w < why_cap; i++)
        w += snprintf(why + w, why_cap - (size_t)w, " %s", cands[i]);
    if (w > 0 && (size_t)w < why_cap)
        sfmt(why + w, why_cap - (size_t)w, ")");
    return false;
}

static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

/* dlopen + checks.  Called with g_lib_mu held.  Never crashes on a bad file. */
static struct lib_entry *load_lib_locked(const char *path)
{
    for (int i = 0; i < g_n_libs; i++)
        if (!strcmp(g_libs[i].path, path))
            return &g_libs[i];
    if (g_n_libs >= (int)(sizeof g_libs / sizeof g_libs[0]))
        return NULL;
    struct lib_entry *e = &g_libs[g_n_libs++];
    memset(e, 0, sizeof *e);
    sfmt(e->path, sizeof e->path, "%s", path);

    dlerror();
    e->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!e->handle) {
        const char *de = dlerror();
        sfmt(e->why, sizeof e->why, "cannot load %s: %s", path, de ? de : "dlopen failed");
        one_line(e->why);
        return e;
    }
    dlerror();
    qr_backend_init_fn init = (qr_backend_init_fn)dlsym(e->handle, "qr_backend_init");
    if (!init) {
        sfmt(e->why, sizeof e->why, "%s is not a qrun backend: it does not export qr_backend_init", path);
        return e;
    }
    qr_backend_score_fn score = (qr_backend_score_fn)dlsym(e->handle, "qr_backend_score");
    if (score) {
        int sc = score();
        if (sc <= 0) {
            sfmt(e->why, sizeof e->why, "not usable on this machine (qr_backend_score() = %d)", sc);
            return e;
        }
    }
    struct qr_backend_reg *reg = init();
    if (!reg) {
        sfmt(e->why, sizeof e->why, "qr_backend_init() in %s returned NULL (backend failed to initialise)",
                 path);
        return e;
    }
    if (reg->api_version != QR_BACKEND_API_VERSION) {
        sfmt(e->why, sizeof e->why,
                 "%s has backend API version %d, this qrun needs %d (rebuild the plugin)", path,
                 reg->api_version, QR_BACKEND_API_VERSION);
        return e;
    }
    if (!reg->name || !reg->device_count || !reg->device_open) {
        sfmt(e->why, sizeof e->why, "%s is broken: its registry lacks %s", path,
                 !reg->name ? "a name" : !reg->device_count ? "device_count" : "device_open");
        return e;
    }
    e->reg = reg;
    return e;
}

/* Resolves and loads backend `c`; fills info. */
static void backend_probe(const struct qr_config_ini *ini, const struct be_conf *c, struct qr_backend_info *info)
{
    memset(info, 0, sizeof *info);
    sfmt(info->name, sizeof info->name, "%s", c->name);
    sfmt(info->lib_path, sizeof info->lib_path, "%s", c->lib);
    info->priority = c->priority;
    if (!c->enabled) {
        sfmt(info->why, sizeof info->why, "disabled in %s", qr_ini_path(ini) ? qr_ini_path(ini) : "config");
        return;
    }
    char path[QR_PATH_MAX];
    if (!find_lib(ini, c, path, sizeof path, info->why, sizeof info->why))
        return;
    sfmt(info->lib_path, sizeof info->lib_path, "%s", path);
    pthread_mutex_lock(&g_lib_mu);
    struct lib_entry *e = load_lib_locked(path);
    if (!e) {
        sfmt(info->why, sizeof info->why, "too many backend libraries loaded");
    } else if (!e->reg) {
        sfmt(info->why, sizeof info->why, "%s", e->why);
    } else {
        info->loaded = true;
        info->reg = e->reg;
        if (strcmp(e->reg->name, c->name) != 0)
            qr_log(QR_LOG_WARN, "backend [%s]: %s calls itself '%s'", c->name, path, e->reg->name);
    }
    pthread_mutex_unlock(&g_lib_mu);
    if (!info->loaded)
        return;
    int nd = info->reg->device_count();
    info->n_devices = nd > 0 ? nd : 0;
    if (info->n_devices == 0) {
        const char *r = info->reg->unavailable_reason ? info->reg->unavailable_reason() : NULL;
        sfmt(info->why, sizeof info->why, "%s", r && *r ? r : "no device found");
    }
}

qr_status qr_backends_list(const struct qr_config_ini *ini, struct qr_backend_info *out, int max, int *n)
{
    if (!out || !n || max < 0)
        return qr_set_error(QR_E_INVALID_ARG, "qr_backends_list: bad arguments");
    struct be_conf confs[MAX_BACKENDS];
    int nc = conf_list(ini, confs, MAX_BACKENDS);
    int k = 0;
    for (int i = 0; i < nc && k < max; i++)
        backend_probe(ini, &confs[i], &out[k++]);
    *n = k;
    return QR_OK;
}

/* ------------------------------------------------------------------------ */
/* opening a device                                                          */
/* ------------------------------------------------------------------------ */

static const char *opts_get(const struct qr_backend_opts *o, const char *key)
{
    if (!o || !o->ini || !o->section)
        return NULL;
    return qr_ini_get((const struct qr_config_ini *)o->ini, o->section, key);
}

static bool parse_int_str(const char *s, long *v)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*end || errno)
        return false;
    *v = x;
    return true;
}

static bool icontains(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, nl) == 0)
            return true;
    return nl == 0;
}

static qr_status check_device(struct qr_device *d, const char *lib)
{
    const char *miss = NULL;
    if (!d->vt)
        miss = "a device vtable";
    else if (!d->svt)
        miss = "a stream vtable";
    else if (!d->ops)
        miss = "an ops table";
    else if (!d->vt->close || !d->vt->get_props || !d->vt->buf_alloc || !d->vt->buf_free ||
             !d->vt->stream_create || !d->vt->stream_destroy)
        miss = "a required device entry (close/get_props/buf_alloc/buf_free/stream_create/stream_destroy)";
    else if (!d->svt->write || !d->svt->read || !d->svt->copy || !d->svt->memset0 || !d->svt->synchronize)
        miss = "a required stream entry (write/read/copy/memset0/synchronize)";
    if (miss)
        return qr_set_error(QR_E_FORMAT, "backend plugin %s is broken: its device lacks %s", lib, miss);
    return QR_OK;
}

/* opens a device of a probed backend */
static qr_status open_from_info(const struct qr_config_ini *ini, const struct qr_backend_info *info,
                                const struct qr_backend_opts *ov, struct qr_device **out)
{
    if (!info->loaded)
        return qr_set_error(QR_E_NOT_FOUND, "backend '%s' is unavailable: %s", info->name, info->why);
    if (info->n_devices <= 0)
        return qr_set_error(QR_E_UNSUPPORTED, "backend '%s' has no device: %s", info->name, info->why);
    const struct qr_backend_reg *reg = info->reg;
    char section[64];
    sfmt(section, sizeof section, "backend.%s", info->name);

    struct qr_backend_opts o;
    memset(&o, 0, sizeof o);
    o.device_index = -1;
    o.mem_fraction = 0.90;
    o.get = opts_get;
    o.ini = ini;
    o.section = section;
    char devname[128] = "";
    long v;
    const char *dv = qr_ini_get(ini, section, "device");
    if (dv && *dv) {
        if (parse_int_str(dv, &v) && v >= 0 && v < INT_MAX)
            o.device_index = (int)v;
        else {
            sfmt(devname, sizeof devname, "%s", dv);
            o.device_name = devname;
        }
    }
    const char *mf = qr_ini_get(ini, section, "memory_fraction");
    if (mf && *mf) {
        char *end;
        double f = strtod(mf, &end);
        if (*end || !(f > 0.0 && f <= 1.0))
            return qr_set_error(QR_E_INVALID_ARG, "%s: [%s] memory_fraction must be in (0, 1], got '%s'",
                                qr_ini_path(ini) ? qr_ini_path(ini) : "config", section, mf);
        o.mem_fraction = f;
    }
    const char *th = qr_ini_get(ini, section, "threads");
    if (th && *th) {
        if (!parse_int_str(th, &v) || v < 0 || v > 4096)
            return qr_set_error(QR_E_INVALID_ARG, "%s: [%s] threads must be an integer >= 0, got '%s'",
                                qr_ini_path(ini) ? qr_ini_path(ini) : "config", section, th);
        o.n_threads = (int)v;
    }
    if (ov) {
        if (ov->device_index >= 0) {
            o.device_index = ov->device_index;
            o.device_name = NULL;
        }
        if (ov->device_name && *ov->device_name) {
            sfmt(devname, sizeof devname, "%s", ov->device_name);
            o.device_name = devname;
            o.device_index = -1;
        }
        if (ov->mem_fraction > 0.0) {
            if (ov->mem_fraction > 1.0)
                return qr_set_error(QR_E_INVALID_ARG, "memory fraction must be in (0, 1], got %g", ov->mem_fraction);
            o.mem_fraction = ov->mem_fraction;
        }
        if (ov->n_threads > 0)
            o.n_threads = ov->n_threads;
    }

    int idx = o.device_index;
    if (o.device_name) {
        idx = -1;
        for (int i = 0; i < info->n_devices && reg->device_describe; i++) {
            struct qr_device_props p;
            memset(&p, 0, sizeof p);
            if (reg->device_describe(i, &p) == QR_OK && icontains(p.name, o.device_name)) {
                idx = i;
                break;
            }
        }
        if (idx < 0)
            return qr_set_error(QR_E_NOT_FOUND, "backend '%s': no device whose name contains '%s'", info->name,
                                o.device_name);
    }
    if (idx < 0)
        idx = 0;
    if (idx >= info->n_devices)
        return qr_set_error(QR_E_NOT_FOUND, "backend '%s': device %d does not exist (%d device%s)", info->name, idx,
                            info->n_devices, info->n_devices == 1 ? "" : "s");
    o.device_index = idx;

    struct qr_device *d = NULL;
    qr_set_error(QR_OK, "%s", "");
    qr_status st = reg->device_open(idx, &o, &d);
    if (st != QR_OK || !d) {
        char msg[512];
        sfmt(msg, sizeof msg, "%s", qr_last_error());
        if (st == QR_OK)
            st = QR_E_INTERNAL;
        return qr_set_error(st, "backend '%s': opening device %d failed: %s", info->name, idx,
                            msg[0] ? msg : qr_status_str(st));
    }
    st = check_device(d, info->lib_path);
    if (st != QR_OK) {
        if (d->vt && d->vt->close)
            d->vt->close(d);
        return st;
    }
    if (!d->reg)
        d->reg = reg;
    d->dead = false;
    *out = d;
    return QR_OK;
}

/* whether d (opened from infos[i]) is emulated on the host CPU while a later backend has a device */
static bool emulated_with_later(struct qr_device *d, const struct qr_backend_info *infos, int i, int n)
{
    struct qr_device_props p = {0};
    if (!d || !d->vt || !d->vt->get_props || d->vt->get_props(d, &p) != QR_OK || !(p.caps & QR_CAP_SOFTWARE))
        return false;
    for (int j = i + 1; j < n; j++)
        if (infos[j].loaded && infos[j].n_devices > 0)
            return true;
    return false;
}

qr_status qr_backend_open(const struct qr_config_ini *ini, const char *name, const struct qr_backend_opts *ov,
                          struct qr_device **out)
{
    if (!out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_backend_open: out is NULL");
    if (!name || !*name)
        name = "auto";
    if (!strcmp(name, "auto")) {
        const char *def = qr_ini_get(ini, "qrun", "default_backend");
        if (def && *def && strcmp(def, "auto") != 0)
            name = def;
    }
    if (strcmp(name, "auto") != 0) {
        struct be_conf c;
        if (!conf_find(ini, name, &c))
            return qr_set_error(QR_E_NOT_FOUND, "backend '%s' is not configured", name);
        struct qr_backend_info info;
        backend_probe(ini, &c, &info);
        return open_from_info(ini, &info, ov, out);
    }
    struct qr_backend_info infos[MAX_BACKENDS];
    int n = 0;
    qr_status st = qr_backends_list(ini, infos, MAX_BACKENDS, &n);
    if (st != QR_OK)
        return st;
    char reasons[1024];
    int w = 0, soft = -1;
    reasons[0] = 0;
    for (int i = 0; i < n; i++) {
        if (infos[i].loaded && infos[i].n_devices > 0) {
            st = open_from_info(ini, &infos[i], ov, out);
            if (st == QR_OK && soft < 0 && emulated_with_later(*out, infos, i, n)) {
                /* a device emulated on the CPU (lavapipe) is slower there than the CPU reference: a later backend
                 * first, this one only if none opens */
                qr_log(QR_LOG_INFO, "backend %s: its device is emulated on the CPU; trying the next backend first",
                       infos[i].name);
                qr_device_close(*out);
                *out = NULL;
                soft = i;
                continue;
            }
            if (st == QR_OK) {
                qr_log(QR_LOG_INFO, "backend: %s", infos[i].name);
                return QR_OK;
            }
            qr_log(QR_LOG_WARN, "backend %s: %s; trying the next one", infos[i].name, qr_last_error());
            if (w >= 0 && (size_t)w < sizeof reasons)
                w += snprintf(reasons + w, sizeof reasons - (size_t)w, "%s%s: open failed", w ? "; " : "",
                              infos[i].name);
        } else if (w >= 0 && (size_t)w < sizeof reasons) {
            w += snprintf(reasons + w, sizeof reasons - (size_t)w, "%s%s: %s", w ? "; " : "", infos[i].name,
                          infos[i].why);
        }
    }
    if (soft >= 0 && open_from_info(ini, &infos[soft], ov, out) == QR_OK) {
        qr_log(QR_LOG_INFO, "backend: %s (emulated on the CPU)", infos[soft].name);
        return QR_OK;
    }
    return qr_set_error(QR_E_NOT_FOUND, "no usable backend (%s)", reasons[0] ? reasons : "none configured");
}

void qr_backends_shutdown(void)
{
    pthread_mutex_lock(&g_lib_mu);
    for (int i = 0; i < g_n_libs; i++)
        if (g_libs[i].reg && g_libs[i].reg->shutdown)
            g_libs[i].reg->shutdown();
    /* the libraries stay mapped (unloading GPU runtimes is not safe); a
     * later probe calls qr_backend_init() again */
    g_n_libs = 0;
    pthread_mutex_unlock(&g_lib_mu);
}

void qr_device_close(struct qr_device *d)
{
    if (d && d->vt && d->vt->close)
        d->vt->close(d);
}

/* ------------------------------------------------------------------------ */
/* checked wrappers                                                          */
/* ------------------------------------------------------------------------ */

static const char *dev_name(const struct qr_device *d)
{
    return d && d->reg && d->reg->name ? d->reg->name : "device";
}

static qr_status dead_err(const struct qr_device *d)
{
    return qr_set_error(QR_E_DEVICE_LOST, "%s device is lost after an earlier fatal error; restart qrun",
                        dev_name(d));
}

static qr_status after(struct qr_device *d, qr_status st)
{
    if (st == QR_E_DEVICE_LOST && d && !d->dead) {
        d->dead = true;
        qr_log(QR_LOG_ERROR, "%s device marked dead: %s", dev_name(d), qr_last_error());
    }
    return st;
}

qr_status qr_dev_props(struct qr_device *d, struct qr_device_props *p)
{
    if (!d || !p)
        return qr_set_error(QR_E_INVALID_ARG, "qr_dev_props: NULL argument");
    memset(p, 0, sizeof *p);
    qr_status st = d->vt->get_props(d, p);
    p->name[sizeof p->name - 1] = 0;
    p->description[sizeof p->description - 1] = 0;
    if (st == QR_OK && p->alignment == 0)
        p->alignment = 1;
    return after(d, st);
}

bool qr_dev_supports(struct qr_device *d, enum qr_op op, enum qr_dtype wtype)
{
    if (!d || d->dead || (unsigned)op >= QR_OP_COUNT || (unsigned)wtype > QR_DTYPE_COUNT)
        return false;
    if (op == QR_OP_ARGMAX && !d->ops->argmax)
        return true;   /* the wrapper supplies it */
    const void *fn = NULL;
    switch (op) {
    case QR_OP_EMBED: fn = (const void *)d->ops->embed; break;
    case QR_OP_MATMUL: fn = (const void *)d->ops->matmul; break;
    case QR_OP_RMSNORM: fn = (const void *)d->ops->rmsnorm; break;
    case QR_OP_QK_NORM: fn = (const void *)d->ops->qk_norm; break;
    case QR_OP_ROPE: fn = (const void *)d->ops->rope; break;
    case QR_OP_KV_STORE: fn = (const void *)d->ops->kv_store; break;
    case QR_OP_ATTN: fn = (const void *)d->ops->attn; break;
    case QR_OP_SILU_MUL: fn = (const void *)d->ops->silu_mul; break;
    case QR_OP_ADD: fn = (const void *)d->ops->add; break;
    case QR_OP_LOGITS: fn = (const void *)d->ops->logits; break;
    case QR_OP_ARGMAX: fn = (const void *)d->ops->argmax; break;
    case QR_OP_TOPK: fn = (const void *)d->ops->topk; break;
    case QR_OP_COUNT: break;
    }
    if (!fn)
        return false;
    return d->vt->supports ? d->vt->supports(d, op, wtype) : true;
}

qr_status qr_buf_alloc(struct qr_device *d, size_t size, unsigned usage, struct qr_buf **out)
{
    if (!d || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_buf_alloc: NULL argument");
    if (d->dead)
        return dead_err(d);
    if (size == 0)
        return qr_set_error(QR_E_INVALID_ARG, "qr_buf_alloc: size 0");
    struct qr_buf *b = NULL;
    qr_status st = d->vt->buf_alloc(d, size, usage, &b);
    if (st == QR_OK && (!b || b->size < size)) {
        if (b)
            d->vt->buf_free(b);
        return qr_set_error(QR_E_INTERNAL, "%s buf_alloc returned a bad buffer", dev_name(d));
    }
    if (st != QR_OK)
        return after(d, st);
    b->dev = d;
    *out = b;
    return QR_OK;
}

void qr_buf_free(struct qr_buf *b)
{
    if (b && b->dev && b->dev->vt && b->dev->vt->buf_free)
        b->dev->vt->buf_free(b);
}

static qr_status check_range(const struct qr_buf *b, size_t off, size_t n, const char *what)
{
    if (!b)
        return qr_set_error(QR_E_INVALID_ARG, "%s: NULL buffer", what);
    if (off > b->size || n > b->size - off)
        return qr_set_error(QR_E_INVALID_ARG, "%s out of bounds: offset %zu + %zu bytes > buffer size %zu", what, off,
                            n, b->size);
    return QR_OK;
}

qr_status qr_stream_create(struct qr_device *d, struct qr_stream **out)
{
    if (!d || !out)
        return qr_set_error(QR_E_INVALID_ARG, "qr_stream_create: NULL argument");
    if (d->dead)
        return dead_err(d);
    struct qr_stream *s = NULL;
    qr_status st = d->vt->stream_create(d, &s);
    if (st != QR_OK)
        return after(d, st);
    if (!s)
        return qr_set_error(QR_E_INTERNAL, "%s stream_create returned NULL", dev_name(d));
    s->dev = d;
    *out = s;
    return QR_OK;
}

void qr_stream_destroy(struct qr_stream *s)
{
    if (s && s->dev && s->dev->vt && s->dev->vt->stream_destroy)
        s->dev->vt->stream_destroy(s);
}

static qr_status stream_check(struct qr_stream *s, const struct qr_buf *b, const char *what)
{
    if (!s || !s->dev)
        return qr_set_error(QR_E_INVALID_ARG, "%s: NULL stream", what);
    if (s->dev->dead)
        return dead_err(s->dev);
    if (b && b->dev != s->dev)
        return qr_set_error(QR_E_INVALID_ARG, "%s: buffer belongs to another device", what);
    return QR_OK;
}

qr_status qr_buf_from_host(struct qr_device *d, void *ptr, size_t size, struct qr_buf **out)
{
    if (!d || !out || (!ptr && size))
        return qr_set_error(QR_E_INVALID_ARG, "qr_buf_from_host: NULL argument");
    if (d->dead)
        return dead_err(d);
    if (d->vt->buf_from_host) {
        struct qr_buf *b = NULL;
        qr_status st = d->vt->buf_from_host(d, ptr, size, &b);
        if (st == QR_OK && b) {
            b->dev = d;
            *out = b;
            return QR_OK;
        }
        if (st != QR_E_UNSUPPORTED)
            return after(d, st != QR_OK ? st : QR_E_INTERNAL);
    }
    struct qr_buf *b = NULL;
    struct qr_stream *s = NULL;
    qr_status st = qr_buf_alloc(d, size, QR_BUF_WEIGHTS, &b);
    if (st == QR_OK)
        st = qr_stream_create(d, &s);
    if (st == QR_OK)
        st = qr_stream_write(s, b, 0, ptr, size);
    if (st == QR_OK)
        st = qr_stream_sync(s);
    qr_stream_destroy(s);
    if (st != QR_OK) {
        qr_buf_free(b);
        return st;
    }
    *out = b;
    return QR_OK;
}

qr_status qr_stream_write(struct qr_stream *s, struct qr_buf *dst, size_t off, const void *src, size_t n)
{
    qr_status st = stream_check(s, dst, "qr_stream_write");
    if (st == QR_OK)
        st = check_range(dst, off, n, "qr_stream_write");
    if (st != QR_OK)
        return st;
    if (n == 0)
        return QR_OK;
    if (!src)
        return qr_set_error(QR_E_INVALID_ARG, "qr_stream_write: NULL source");
    return after(s->dev, s->dev->svt->write(s, dst, off, src, n));
}

qr_status qr_stream_read(struct qr_stream *s, struct qr_buf *src, size_t off, void *dst, size_t n)
{
    qr_status st = stream_check(s, src, "qr_stream_read");
    if (st == QR_OK)
        st = check_range(src, off, n, "qr_stream_read");
    if (st != QR_OK)
        return st;
    if (n == 0)
        return after(s->dev, s->dev->svt->synchronize(s));
    if (!dst)
        return qr_set_error(QR_E_INVALID_ARG, "qr_stream_read: NULL destination");
    return after(s->dev, s->dev->svt->read(s, src, off, dst, n));
}

qr_status qr_stream_copy(struct qr_stream *s, struct qr_buf *dst, size_t doff, struct qr_buf *src, size_t soff,
                         size_t n)
{
    qr_status st = stream_check(s, dst, "qr_stream_copy");
    if (st == QR_OK)
        st = stream_check(s, src, "qr_stream_copy");
    if (st == QR_OK)
        st = check_range(dst, doff, n, "qr_stream_copy destination");
    if (st == QR_OK)
        st = check_range(src, soff, n, "qr_stream_copy source");
    if (st != QR_OK || n == 0)
        return st;
    return after(s->dev, s->dev->svt->copy(s, dst, doff, src, soff, n));
}

qr_status qr_stream_memset0(struct qr_stream *s, struct qr_buf *dst, size_t off, size_t n)
{
    qr_status st = stream_check(s, dst, "qr_stream_memset0");
    if (st == QR_OK)
        st = check_range(dst, off, n, "qr_stream_memset0");
    if (st != QR_OK || n == 0)
        return st;
    return after(s->dev, s->dev->svt->memset0(s, dst, off, n));
}

qr_status qr_stream_sync(struct qr_stream *s)
{
    qr_status st = stream_check(s, NULL, "qr_stream_sync");
    if (st != QR_OK)
        return st;
    return after(s->dev, s->dev->svt->synchronize(s));
}

/* ---- per-op validation: every view against the bytes the op may touch ---- */

struct vchk {
    struct qr_device *dev;
    enum qr_op op;
    qr_status st;
};

static void vfail(struct vchk *c, const char *fmt, ...)
{
    if (c->st != QR_OK)
        return;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = qr_set_error(QR_E_INVALID_ARG, "%s: %s", qr_op_name(c->op), msg);
}

/* view v must hold `bytes` bytes from its offset; optional views may be absent */
static void vneed(struct vchk *c, const struct qr_view *v, int64_t bytes, const char *name, bool optional)
{
    if (c->st != QR_OK)
        return;
    if (!v->buf) {
        if (!optional)
            vfail(c, "%s is missing", name);
        return;
    }
    if (v->buf->dev != c->dev) {
        vfail(c, "%s belongs to another device", name);
        return;
    }
    if (bytes < 0 || v->off > v->buf->size || (uint64_t)bytes > v->buf->size - v->off)
        vfail(c, "%s out of bounds: offset %zu + %lld bytes > buffer size %zu", name, v->off, (long long)bytes,
              v->buf->size);
}

static void vpos(struct vchk *c, int64_t x, const char *name)
{
    if (x < 0)
        vfail(c, "%s = %lld is negative", name, (long long)x);
}

static bool wt_ok(enum qr_dtype t) { return t == QR_DTYPE_F32 || t == QR_DTYPE_F16 || t == QR_DTYPE_BF16; }

static void vdtype(struct vchk *c, enum qr_dtype t, const char *name)
{
    if (!wt_ok(t))
        vfail(c, "%s dtype %s is not F32, F16 or BF16", name, qr_dtype_name(t));
}

/* a KV cache may also hold FP8 E4M3 */
static void vkvdtype(struct vchk *c, enum qr_dtype t)
{
    if (!wt_ok(t) && t != QR_DTYPE_F8E4M3)
        vfail(c, "kv cache dtype %s is not F32, F16, BF16 or F8_E4M3", qr_dtype_name(t));
}

/* bytes spanned by `rows` rows of `width` f32 elements at row stride ld */
static int64_t rows_bytes(struct vchk *c, int64_t rows, int64_t width, int64_t ld, const char *name)
{
    if (rows <= 0 || width <= 0)
        return 0;
    if (ld < width) {
        vfail(c, "%s row stride %lld < row width %lld", name, (long long)ld, (long long)width);
        return 0;
    }
    return ((rows - 1) * ld + width) * 4;
}

/* returns QR_OK, or QR_E_INVALID_ARG; *empty = nothing to do */
static qr_status node_validate(struct qr_device *d, const struct qr_node *n, bool *empty)
{
    struct vchk c = {d, n->op, QR_OK};
    *empty = false;
    switch (n->op) {
    case QR_OP_EMBED: {
        const struct qr_embed_args *a = &n->a.embed;
        vpos(&c, a->n_tokens, "n_tokens"), vpos(&c, a->dim, "dim"), vpos(&c, a->vocab, "vocab");
        vdtype(&c, a->wtype, "table");
        *empty = a->n_tokens == 0 || a->dim == 0;
        if (!*empty && a->vocab == 0)
            vfail(&c, "vocab is 0");
        if (c.st || *empty)
            break;
        vneed(&c, &a->out, (int64_t)a->n_tokens * a->dim * 4, "out", false);
        vneed(&c, &a->table, (int64_t)a->vocab * a->dim * (int64_t)qr_dtype_size(a->wtype), "table", false);
        vneed(&c, &a->ids, (int64_t)a->n_tokens * 4, "ids", false);
        break;
    }
    case QR_OP_MATMUL: {
        const struct qr_matmul_args *a = &n->a.matmul;
        vpos(&c, a->M, "M"), vpos(&c, a->N, "N"), vpos(&c, a->K, "K");
        vdtype(&c, a->wtype, "w");
        if (a->bias.buf)
            vdtype(&c, a->btype, "bias");
        *empty = a->M == 0 || a->N == 0;
        if (c.st || *empty)
            break;
        if (a->K == 0)
            vfail(&c, "K is 0");
        vneed(&c, &a->y, rows_bytes(&c, a->M, a->N, a->ldy, "y"), "y", false);
        vneed(&c, &a->x, rows_bytes(&c, a->M, a->K, a->ldx, "x"), "x", false);
        vneed(&c, &a->w, (int64_t)a->N * a->K * (int64_t)qr_dtype_size(a->wtype), "w", false);
        vneed(&c, &a->bias, (int64_t)a->N * (int64_t)qr_dtype_size(a->btype), "bias", true);
        break;
    }
    case QR_OP_RMSNORM:
    case QR_OP_QK_NORM: {
        const struct qr_rmsnorm_args *a = &n->a.rmsnorm;
        vpos(&c, a->n_tokens, "n_tokens"), vpos(&c, a->n_heads, "n_heads"), vpos(&c, a->n, "n");
        vdtype(&c, a->wtype, "w");
        *empty = a->n_tokens == 0 || a->n_heads == 0;
        if (c.st || *empty)
            break;
        if (a->n == 0)
            vfail(&c, "n is 0");
        if (!(a->eps >= 0.0f))
            vfail(&c, "eps must be >= 0");
        int64_t w = (int64_t)a->n_heads * a->n;
        vneed(&c, &a->out, rows_bytes(&c, a->n_tokens, w, a->ldout, "out"), "out", false);
        vneed(&c, &a->x, rows_bytes(&c, a->n_tokens, w, a->ldx, "x"), "x", false);
        vneed(&c, &a->w, (int64_t)a->n * (int64_t)qr_dtype_size(a->wtype), "w", false);
        break;
    }
    case QR_OP_ROPE: {
        const struct qr_rope_args *a = &n->a.rope;
        vpos(&c, a->n_tokens, "n_tokens"), vpos(&c, a->n_heads, "n_heads"), vpos(&c, a->head_dim, "head_dim");
        *empty = a->n_tokens == 0 || a->n_heads == 0;
        if (c.st || *empty)
            break;
        if (a->head_dim == 0 || a->head_dim % 2)
            vfail(&c, "head_dim %d must be even and > 0", a->head_dim);
        vneed(&c, &a->x, rows_bytes(&c, a->n_tokens, (int64_t)a->n_heads * a->head_dim, a->ld, "x"), "x", false);
        vneed(&c, &a->pos, (int64_t)a->n_tokens * 4, "pos", false);
        vneed(&c, &a->inv_freq, (int64_t)(a->head_dim / 2) * 4, "inv_freq", false);
        break;
    }
    case QR_OP_KV_STORE: {
        const struct qr_kv_store_args *a = &n->a.kv_store;
        vpos(&c, a->n_tokens, "n_tokens"), vpos(&c, a->n_kv_heads, "n_kv_heads");
        vpos(&c, a->head_dim, "head_dim"), vpos(&c, a->block_size, "block_size"), vpos(&c, a->num_blocks, "num_blocks");
        vkvdtype(&c, a->kv_dtype);
        *empty = a->n_tokens == 0 || a->n_kv_heads == 0 || a->head_dim == 0;
        if (c.st || *empty)
            break;
        if (a->block_size == 0 || a->num_blocks == 0)
            vfail(&c, "block_size and num_blocks must be > 0");
        int64_t cb = (int64_t)a->num_blocks * a->n_kv_heads * a->block_size * a->head_dim *
                     (int64_t)qr_dtype_size(a->kv_dtype);
        vneed(&c, &a->k_cache, cb, "k_cache", false);
        vneed(&c, &a->v_cache, cb, "v_cache", false);
        int64_t rb = rows_bytes(&c, a->n_tokens, (int64_t)a->n_kv_heads * a->head_dim, a->ld, "k/v");
        vneed(&c, &a->k, rb, "k", false);
        vneed(&c, &a->v, rb, "v", false);
        vneed(&c, &a->slots, (int64_t)a->n_tokens * 4, "slots", false);
        break;
    }
    case QR_OP_ATTN: {
        const struct qr_attn_args *a = &n->a.attn;
        vpos(&c, a->n_tokens, "n_tokens"), vpos(&c, a->n_seqs, "n_seqs"), vpos(&c, a->n_heads, "n_heads");
        vpos(&c, a->n_kv_heads, "n_kv_heads"), vpos(&c, a->head_dim, "head_dim");
        vpos(&c, a->block_size, "block_size"), vpos(&c, a->max_blocks_per_seq, "max_blocks_per_seq");
        vpos(&c, a->num_blocks, "num_blocks"), vpos(&c, a->max_seq_len, "max_seq_len");
        vpos(&c, a->max_q_len, "max_q_len");
        vkvdtype(&c, a->kv_dtype);
        *empty = a->n_tokens == 0 || a->n_seqs == 0 || a->n_heads == 0;
        if (c.st || *empty)
            break;
        if (a->n_kv_heads == 0 || a->n_heads % a->n_kv_heads)
            vfail(&c, "n_heads %d is not a multiple of n_kv_heads %d", a->n_heads, a->n_kv_heads);
        if (a->head_dim == 0 || a->block_size == 0 || a->num_blocks == 0 || a->max_blocks_per_seq == 0)
            vfail(&c, "head_dim, block_size, num_blocks and max_blocks_per_seq must be > 0");
        int64_t cb = (int64_t)a->num_blocks * a->n_kv_heads * a->block_size * a->head_dim *
                     (int64_t)qr_dtype_size(a->kv_dtype);
        vneed(&c, &a->k_cache, cb, "k_cache", false);
        vneed(&c, &a->v_cache, cb, "v_cache", false);
        int64_t w = (int64_t)a->n_heads * a->head_dim;
        vneed(&c, &a->out, rows_bytes(&c, a->n_tokens, w, a->ldo, "out"), "out", false);
        vneed(&c, &a->q, rows_bytes(&c, a->n_tokens, w, a->ldq, "q"), "q", false);
        vneed(&c, &a->block_tables, (int64_t)a->n_seqs * a->max_blocks_per_seq * 4, "block_tables", false);
        vneed(&c, &a->seq_lens, (int64_t)a->n_seqs * 4, "seq_lens", false);
        vneed(&c, &a->q_start, ((int64_t)a->n_seqs + 1) * 4, "q_start", false);
        break;
    }
    case QR_OP_SILU_MUL: {
        const struct qr_silu_mul_args *a = &n->a.silu_mul;
        vpos(&c, a->n_tokens, "n_tokens"), vpos(&c, a->n_ff, "n_ff");
        *empty = a->n_tokens == 0 || a->n_ff == 0;
        if (c.st || *empty)
            break;
        vneed(&c, &a->out, rows_bytes(&c, a->n_tokens, a->n_ff, a->ldout, "out"), "out", false);
        vneed(&c, &a->gu, rows_bytes(&c, a->n_tokens, 2 * (int64_t)a->n_ff, a->ldgu, "gu"), "gu", false);
        break;
    }
    case QR_OP_ADD: {
        const struct qr_add_args *a = &n->a.add;
        vpos(&c, a->n, "n");
        *empty = a->n == 0;
        if (c.st || *empty)
            break;
        vneed(&c, &a->y, a->n * 4, "y", false);
        vneed(&c, &a->x, a->n * 4, "x", false);
        break;
    }
    case QR_OP_LOGITS: {
        const struct qr_logits_args *a = &n->a.logits;
        vpos(&c, a->n_out, "n_out"), vpos(&c, a->dim, "dim"), vpos(&c, a->vocab, "vocab");
        vdtype(&c, a->wtype, "w");
        *empty = a->n_out == 0 || a->vocab == 0;
        if (c.st || *empty)
            break;
        if (a->dim == 0)
            vfail(&c, "dim is 0");
        vneed(&c, &a->out, (int64_t)a->n_out * a->vocab * 4, "out", false);
        /* at least one row of x; backends clamp idx to the rows the buffer holds */
        vneed(&c, &a->x, rows_bytes(&c, 1, a->dim, a->ldx, "x"), "x", false);
        vneed(&c, &a->idx, (int64_t)a->n_out * 4, "idx", false);
        vneed(&c, &a->w, (int64_t)a->vocab * a->dim * (int64_t)qr_dtype_size(a->wtype), "w", false);
        break;
    }
    case QR_OP_ARGMAX: {
        const struct qr_argmax_args *a = &n->a.argmax;
        vpos(&c, a->n_rows, "n_rows"), vpos(&c, a->n, "n");
        *empty = a->n_rows == 0;
        if (c.st || *empty)
            break;
        if (a->n == 0)
            vfail(&c, "n is 0");
        vneed(&c, &a->out, (int64_t)a->n_rows * 4, "out", false);
        vneed(&c, &a->x, (int64_t)a->n_rows * a->n * 4, "x", false);
        break;
    }
    case QR_OP_TOPK: {
        const struct qr_topk_args *a = &n->a.topk;
        vpos(&c, a->n_rows, "n_rows"), vpos(&c, a->n, "n"), vpos(&c, a->k, "k");
        *empty = a->n_rows == 0;
        if (c.st || *empty)
            break;
        if (a->k < 1 || a->k > QR_TOPK_MAX || a->k > a->n)
            vfail(&c, "k %d is outside [1, min(n %d, %d)]", a->k, a->n, QR_TOPK_MAX);
        vneed(&c, &a->ids, (int64_t)a->n_rows * a->k * 4, "ids", false);
        vneed(&c, &a->vals, (int64_t)a->n_rows * a->k * 4, "vals", false);
        vneed(&c, &a->x, (int64_t)a->n_rows * a->n * 4, "x", false);
        vneed(&c, &a->inv_t, (int64_t)a->n_rows * 4, "inv_t", false);
        break;
    }
    default:
        return qr_set_error(QR_E_INVALID_ARG, "unknown op %d", (int)n->op);
    }
    return c.st;
}

/* the dtype an op's support depends on: weights, or the KV cache */
static enum qr_dtype node_dtype(const struct qr_node *n)
{
    switch (n->op) {
    case QR_OP_EMBED: return n->a.embed.wtype;
    case QR_OP_MATMUL: return n->a.matmul.wtype;
    case QR_OP_RMSNORM:
    case QR_OP_QK_NORM: return n->a.rmsnorm.wtype;
    case QR_OP_KV_STORE: return n->a.kv_store.kv_dtype;
    case QR_OP_ATTN: return n->a.attn.kv_dtype;
    case QR_OP_LOGITS: return n->a.logits.wtype;
    default: return QR_DTYPE_F32;
    }
}

static qr_status node_check_supported(struct qr_device *d, const struct qr_node *n)
{
    if (qr_dev_supports(d, n->op, node_dtype(n)))
        return QR_OK;
    return qr_set_error(QR_E_UNSUPPORTED, "%s backend does not support %s with %s %s", dev_name(d),
                        qr_op_name(n->op), qr_dtype_name(node_dtype(n)),
                        n->op == QR_OP_KV_STORE || n->op == QR_OP_ATTN ? "KV cache" : "weights");
}

/* argmax for backends without one: read the rows back, write the ids */
static qr_status argmax_fallback(struct qr_stream *s, const struct qr_argmax_args *a)
{
    size_t nx = (size_t)a->n_rows * (size_t)a->n;
    float *x = malloc(nx * sizeof *x);
    int32_t *ids = malloc((size_t)a->n_rows * sizeof *ids);
    qr_status st = (!x || !ids) ? qr_set_error(QR_E_OOM_HOST, "argmax: out of host memory") : QR_OK;
    if (st == QR_OK)
        st = qr_stream_read(s, a->x.buf, a->x.off, x, nx * sizeof *x);
    if (st == QR_OK) {
        for (int r = 0; r < a->n_rows; r++) {
            const float *row = x + (size_t)r * a->n;
            int best = 0;
            for (int j = 1; j < a->n; j++)
                if (row[j] > row[best] || (row[best] != row[best] && row[j] == row[j]))
                    best = j;
            ids[r] = best;
        }
        st = qr_stream_write(s, a->out.buf, a->out.off, ids, (size_t)a->n_rows * sizeof *ids);
    }
    free(x);
    free(ids);
    return st;
}

static qr_status node_exec(struct qr_stream *s, const struct qr_node *n)
{
    const struct qr_ops *o = s->dev->ops;
    qr_status st = QR_E_UNSUPPORTED;
    bool have = true;
    switch (n->op) {
    case QR_OP_EMBED: have = o->embed; if (have) st = o->embed(s, &n->a.embed); break;
    case QR_OP_MATMUL: have = o->matmul; if (have) st = o->matmul(s, &n->a.matmul); break;
    case QR_OP_RMSNORM: have = o->rmsnorm; if (have) st = o->rmsnorm(s, &n->a.rmsnorm); break;
    case QR_OP_QK_NORM: have = o->qk_norm; if (have) st = o->qk_norm(s, &n->a.rmsnorm); break;
    case QR_OP_ROPE: have = o->rope; if (have) st = o->rope(s, &n->a.rope); break;
    case QR_OP_KV_STORE: have = o->kv_store; if (have) st = o->kv_store(s, &n->a.kv_store); break;
    case QR_OP_ATTN: have = o->attn; if (have) st = o->attn(s, &n->a.attn); break;
    case QR_OP_SILU_MUL: have = o->silu_mul; if (have) st = o->silu_mul(s, &n->a.silu_mul); break;
    case QR_OP_ADD: have = o->add; if (have) st = o->add(s, &n->a.add); break;
    case QR_OP_LOGITS: have = o->logits; if (have) st = o->logits(s, &n->a.logits); break;
    case QR_OP_ARGMAX:
        st = o->argmax ? o->argmax(s, &n->a.argmax) : argmax_fallback(s, &n->a.argmax);
        break;
    case QR_OP_TOPK: have = o->topk; if (have) st = o->topk(s, &n->a.topk); break;
    default: have = false; break;
    }
    if (!have)
        return qr_set_error(QR_E_UNSUPPORTED, "%s backend has no %s op", dev_name(s->dev), qr_op_name(n->op));
    return after(s->dev, st);
}

qr_status qr_node_run(struct qr_stream *s, const struct qr_node *n)
{
    if (!n)
        return qr_set_error(QR_E_INVALID_ARG, "qr_node_run: NULL node");
    qr_status st = stream_check(s, NULL, "qr_node_run");
    if (st != QR_OK)
        return st;
    bool empty;
    st = node_validate(s->dev, n, &empty);
    if (st != QR_OK || empty)
        return st;
    st = node_check_supported(s->dev, n);
    if (st != QR_OK)
        return st;
    return node_exec(s, n);
}

qr_status qr_graph_run(struct qr_stream *s, const struct qr_graph *g)
{
    if (!g || (g->n_nodes > 0 && !g->nodes) || g->n_nodes < 0)
        return qr_set_error(QR_E_INVALID_ARG, "qr_graph_run: bad graph");
    qr_status st = stream_check(s, NULL, "qr_graph_run");
    if (st != QR_OK)
        return st;
    for (int i = 0; i < g->n_nodes; i++) {
        bool empty;
        st = node_validate(s->dev, &g->nodes[i], &empty);
        if (st == QR_OK && !empty)
            st = node_check_supported(s->dev, &g->nodes[i]);
        if (st != QR_OK) {
            char msg[512];
            sfmt(msg, sizeof msg, "%s", qr_last_error());
            return qr_set_error(st, "graph node %d: %s", i, msg);
        }
    }
    if (s->dev->svt->graph_exec)
        return after(s->dev, s->dev->svt->graph_exec(s, g));
    for (int i = 0; i < g->n_nodes; i++) {
        bool empty;
        (void)node_validate(s->dev, &g->nodes[i], &empty);
        if (empty)
            continue;
        st = node_exec(s, &g->nodes[i]);
        if (st != QR_OK)
            return st;
    }
    return QR_OK;
}

/* status.c - status strings, logging, thread-local last error, abort hook, clock. */
#include "qrun/qr_types.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *qr_status_str(qr_status s)
{
    switch (s) {
    case QR_OK: return "ok";
    case QR_E_INVALID_ARG: return "invalid argument";
    case QR_E_OOM_HOST: return "out of host memory";
    case QR_E_OOM_DEVICE: return "out of device memory";
    case QR_E_IO: return "I/O error";
    case QR_E_FORMAT: return "format error";
    case QR_E_UNSUPPORTED: return "unsupported";
    case QR_E_DEVICE_LOST: return "device lost";
    case QR_E_ABORTED: return "aborted";
    case QR_E_INTERNAL: return "internal error";
    case QR_E_NOT_FOUND: return "not found";
    }
    return "unknown status";
}

/* ---- logging ---- */
static void default_log(enum qr_log_level lvl, const char *msg, void *user)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    (void)user;
    fprintf(stderr, "qrun %s: %s\n", names[lvl < 4 ? lvl : 3], msg);
}

static qr_log_fn g_log_fn = default_log;
static void *g_log_user;
static enum qr_log_level g_log_level = QR_LOG_INFO;

void qr_log_set_callback(qr_log_fn fn, void *user)
{
    g_log_fn = fn ? fn : default_log;
    g_log_user = user;
}

void qr_log_set_level(enum qr_log_level lvl) { g_log_level = lvl; }

static void vlog(enum qr_log_level lvl, const char *fmt, va_list ap)
{
    char buf[2048];
    if (lvl < g_log_level)
        return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    g_log_fn(lvl, buf, g_log_user);
}

void qr_log(enum qr_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, fmt, ap);
    va_end(ap);
}

/* ---- last error ---- */
static _Thread_local char t_last_error[2048];

const char *qr_last_error(void) { return t_last_error; }

qr_status qr_set_error(qr_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_last_error, sizeof t_last_error, fmt, ap);
    va_end(ap);
    qr_log(QR_LOG_DEBUG, "%s (%s)", t_last_error, qr_status_str(st));
    return st;
}

/* ---- abort hook ---- */
static qr_abort_fn g_abort_fn;

void qr_set_abort_callback(qr_abort_fn fn) { g_abort_fn = fn; }

void qr_abort_impl(const char *file, int line, const char *stmt)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s:%d: assertion failed: %s", file, line, stmt);
    qr_log(QR_LOG_ERROR, "%s", msg);
    if (g_abort_fn)
        g_abort_fn(msg);
    abort();
}

double qr_time_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

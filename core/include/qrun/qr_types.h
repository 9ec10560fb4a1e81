/* qr_types.h - basic types shared by the core, the backends and the tools.
 * Status codes, dtypes, logging.  No backend or CUDA/Vulkan headers here. */
#ifndef QRUN_QR_TYPES_H
#define QRUN_QR_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* tokens per KV block unless the user says otherwise: 64 lets the Hopper prompt attention read K/V by TMA in
 * 64-row boxes (measured 1196 vs 1392 us at 8192 tokens on the H100 against 16-row blocks); TensorRT-LLM's default
 * is 64 too, vLLM's 16.  Prefix caching matches whole blocks. */
#define QR_DEFAULT_BLOCK_SIZE 64
/* prefill first: running decodes wait at most this long (ms) while a burst of prompts is prefilled (engine default;
 * a burst of 13 8192-token prompts on the H100 pauses the first request's decode ~1.7 s) */
#define QR_DEFAULT_DECODE_PAUSE_MS 2000

/* Every fallible function returns a qr_status.  Outputs go through out-params
 * and are left untouched on failure. */
enum qr_status {
    QR_OK = 0,
    QR_E_INVALID_ARG = -1,
    QR_E_OOM_HOST = -2,
    QR_E_OOM_DEVICE = -3,
    QR_E_IO = -4,
    QR_E_FORMAT = -5,
    QR_E_UNSUPPORTED = -6,
    QR_E_DEVICE_LOST = -7,
    QR_E_ABORTED = -8,
    QR_E_INTERNAL = -9,
    QR_E_NOT_FOUND = -10,
};
typedef enum qr_status qr_status;

const char *qr_status_str(qr_status s);

enum qr_dtype {
    QR_DTYPE_F32 = 0,
    QR_DTYPE_F16,
    QR_DTYPE_BF16,
    QR_DTYPE_I32,
    QR_DTYPE_F8E4M3,   /* OCP FP8 E4M3 ("FN": no infinities, max 448); KV cache storage only */
    QR_DTYPE_COUNT
};

const char *qr_dtype_name(enum qr_dtype t);
size_t qr_dtype_size(enum qr_dtype t);
/* parse "F32", "F16", "BF16", "I32", "F8_E4M3" (safetensors spelling); -1 if unknown */
int qr_dtype_from_name(const char *s);

/* scalar conversions (round-to-nearest-even for float -> bf16/f16) */
float qr_bf16_to_f32(uint16_t h);
uint16_t qr_f32_to_bf16(float f);
float qr_f16_to_f32(uint16_t h);
uint16_t qr_f32_to_f16(float f);
/* FP8 E4M3: float -> fp8 rounds to nearest even and saturates to +-448 (Inf too; NaN stays NaN, 0x7f with the
 * sign), as CUDA's __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3) does */
float qr_f8e4m3_to_f32(uint8_t b);
uint8_t qr_f32_to_f8e4m3(float f);

/* ---- logging: the core never printf's; it calls qr_log ---- */
enum qr_log_level { QR_LOG_DEBUG = 0, QR_LOG_INFO, QR_LOG_WARN, QR_LOG_ERROR };
typedef void (*qr_log_fn)(enum qr_log_level lvl, const char *msg, void *user);
void qr_log_set_callback(qr_log_fn fn, void *user);
void qr_log_set_level(enum qr_log_level lvl);
void qr_log(enum qr_log_level lvl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The last error message set by a failing call on this thread (never NULL). */
const char *qr_last_error(void);
/* Set the thread's last error message and log it at ERROR; returns st. */
qr_status qr_set_error(qr_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Always-on assertion for programmer errors (never for data validation). */
typedef void (*qr_abort_fn)(const char *msg);
void qr_set_abort_callback(qr_abort_fn fn);
void qr_abort_impl(const char *file, int line, const char *stmt);
#define QR_ASSERT(c) do { if (!(c)) qr_abort_impl(__FILE__, __LINE__, #c); } while (0)

/* monotonic clock in seconds */
double qr_time_s(void);

#ifdef __cplusplus
}
#endif
#endif

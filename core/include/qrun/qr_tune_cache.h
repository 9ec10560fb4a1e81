/* qr_tune_cache.h - a small persistent file of tuning results a backend measured on one device, so that a later
 * process skips the measurement and makes the same choice (the same bits from run to run).
 *
 * A file holds one device's records: a header line "qrun-tune-cache 1 <device>" (the device string names the GPU,
 * the library versions and the tuner's version; any change starts another file), then one record per line:
 *   k <integers of the key> v <hex 64-bit words of the value>
 * The first record of a key wins; a line that does not parse is skipped and counted.  Appends of whole lines keep
 * the file usable when two processes tune at once (each line is one write).  No backend or CUDA headers here. */
#ifndef QRUN_QR_TUNE_CACHE_H
#define QRUN_QR_TUNE_CACHE_H

#include "qr_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QR_TC_KEY_MAX 12
#define QR_TC_VAL_MAX 16
#define QR_TC_FILE_MAX (4u << 20)   /* a longer file is not read (a cache, not a database) */
#define QR_TC_DEVICE_MAX 256        /* longest device string */

struct qr_tc_rec {
    int n_key, n_val;
    int64_t key[QR_TC_KEY_MAX];
    uint64_t val[QR_TC_VAL_MAX];
};

/* the cache file of a device for one kind of tuning: DIR/KIND-<device, sanitized>-<hash>.txt, where DIR is dir if
 * not NULL, else $QRUN_CACHE_DIR, else $XDG_CACHE_HOME/qrun, else $HOME/.cache/qrun.  QR_E_NOT_FOUND where none
 * of them is set; QR_E_INVALID_ARG for an empty kind or device, a device longer than QR_TC_DEVICE_MAX or a path
 * longer than n. */
qr_status qr_tc_path(const char *dir, const char *kind, const char *device, char *out, size_t n);

/* the records of a cache file's text (len bytes, no NUL needed) whose header names device: up to max records into
 * out (*n), the first of each key (later ones with the same key are passed over); *n_bad counts the malformed lines
 * skipped.  A text whose first line is not this device's header gives QR_E_FORMAT and no records. */
qr_status qr_tc_parse(const char *text, size_t len, const char *device, struct qr_tc_rec *out, int max, int *n,
                      int *n_bad);

/* qr_tc_parse of the file at path; a missing file is QR_OK with no records, one longer than QR_TC_FILE_MAX or
 * unreadable QR_E_IO */
qr_status qr_tc_load(const char *path, const char *device, struct qr_tc_rec *out, int max, int *n, int *n_bad);

/* one record's line (with its newline) into buf; false where it does not fit or the record is out of bounds */
bool qr_tc_format(const struct qr_tc_rec *r, char *buf, size_t n);

/* appends r to the file at path, creating its directories and the file with device's header where missing;
 * QR_E_FORMAT where the file exists with another header (it is left alone) */
qr_status qr_tc_append(const char *path, const char *device, const struct qr_tc_rec *r);

/* the index in recs[0..n) of the record with this key, or -1 */
int qr_tc_find(const struct qr_tc_rec *recs, int n, const int64_t *key, int n_key);

#ifdef __cplusplus
}
#endif

#endif

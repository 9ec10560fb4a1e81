/* rope.c - rotary embedding inverse frequencies (default and YaRN).
 * Reference: transformers modeling_rope_utils._compute_default_rope_parameters
 * and _compute_yarn_parameters (float32 pow, as torch computes them). */
#include "qrun/qr_runtime.h"

#include <math.h>

static double yarn_correction_dim(double n_rot, int dim, double base, double max_pos)
{
    return (dim * log(max_pos / (n_rot * 2.0 * M_PI))) / (2.0 * log(base));
}

void qr_rope_inv_freq(const struct qr_model_config *cfg, float *inv_freq, float *attn_factor)
{
    int d = cfg->head_dim;
    int half = d / 2;
    float base = (float)cfg->rope_theta;
    for (int i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)d;
        inv_freq[i] = 1.0f / powf(base, e);
    }
    *attn_factor = 1.0f;
    double factor = cfg->rope_yarn_factor;
    if (!(factor > 1.0) || cfg->rope_yarn_orig_max_pos <= 0)
        return;
    double beta_fast = cfg->rope_yarn_beta_fast > 0 ? cfg->rope_yarn_beta_fast : 32.0;
    double beta_slow = cfg->rope_yarn_beta_slow > 0 ? cfg->rope_yarn_beta_slow : 1.0;
    double orig = cfg->rope_yarn_orig_max_pos;
    double low = floor(yarn_correction_dim(beta_fast, d, cfg->rope_theta, orig));
    double high = ceil(yarn_correction_dim(beta_slow, d, cfg->rope_theta, orig));
    if (low < 0)
        low = 0;
    if (high > d - 1)
        high = d - 1;
    if (low == high)
        high += 0.001;
    for (int i = 0; i < half; i++) {
        float extrap = inv_freq[i];
        float interp = (float)(extrap / factor);
        float ramp = (float)((i - low) / (high - low));
        if (ramp < 0)
            ramp = 0;
        if (ramp > 1)
            ramp = 1;
        float ext_factor = 1.0f - ramp;
        inv_freq[i] = interp * (1.0f - ext_factor) + extrap * ext_factor;
    }
    *attn_factor = (float)(0.1 * log(factor) + 1.0);
}

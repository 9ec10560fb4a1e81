// web.mjs - the chat page at / in headless Chromium (playwright-core): type a
// message, watch the answer stream in, check the TTFT / tok/s line, save a
// screenshot.  env: QR_URL QR_KEY QR_CHROME QR_SHOT
import { chromium } from "playwright-core";

const URL = process.env.QR_URL, KEY = process.env.QR_KEY || "";
let passed = 0, failed = 0;
const check = (c, what, extra) => {
  if (c) passed++;
  else { failed++; console.error("FAIL:", what, extra !== undefined ? JSON.stringify(extra) : ""); }
};

const browser = await chromium.launch({ executablePath: process.env.QR_CHROME, headless: true,
                                        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(URL)) external.push(r.url()); });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(URL + "/");
  await page.fill("#apikey", KEY);
  await page.dispatchEvent("#apikey", "change");
  await page.fill("#system", "You are a terse assistant.");
  await page.fill("#max_tokens", "48");
  await page.fill("#seed", "3");
  await page.waitForSelector("#health:has-text('ready')", { timeout: 10000 });
  await page.fill("#input", "Hello! What can you do?");
  // count how many distinct texts the answer shows while it streams
  await page.evaluate(() => {
    window.__seen = new Set();
    new MutationObserver(() => {
      const a = document.querySelector(".msg.assistant .content");
      if (a) window.__seen.add(a.textContent);
    }).observe(document.getElementById("log"), { subtree: true, childList: true, characterData: true });
  });
  await page.click("#send");
  await page.waitForSelector(".msg.user", { timeout: 5000 });
  await page.waitForSelector(".msg.assistant[data-done='1']", { timeout: 60000 });
  const answer = await page.textContent(".msg.assistant .content");
  const stats = await page.textContent(".msg.assistant .stats");
  const seen = await page.evaluate(() => window.__seen.size);
  console.log("answer:", JSON.stringify(answer.slice(0, 120)));
  console.log("stats:", stats, "| distinct partial texts seen:", seen);
  check(answer.length > 0 && !(await page.$(".msg.error")), "an answer appeared", answer);
  check(seen >= 3, "the answer streamed in pieces", seen);
  check(/TTFT \d+ ms/.test(stats) && /tok\/s/.test(stats), "per-message TTFT and tok/s shown", stats);
  check(await page.textContent("#model") !== "connecting…", "model name shown");
  check(external.length === 0, "no external assets", external);
  check(errors.length === 0, "no page errors", errors);
  // a second turn uses the history
  await page.fill("#input", "And again?");
  await page.click("#send");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant[data-done='1']").length === 2,
                             null, { timeout: 60000 });
  check((await page.$$(".msg.user")).length === 2, "second turn");
  await page.screenshot({ path: process.env.QR_SHOT, fullPage: false });
  console.log("screenshot:", process.env.QR_SHOT);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

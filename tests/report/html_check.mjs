// html_check.mjs - opens report.html in headless Chromium (playwright-core),
// checks that it is self-contained and shows its SVG charts, and takes a
// screenshot.  Usage: node html_check.mjs REPORT.html SHOT.png N_SERIES_MIN
// Exit 0 ok, 1 failed, 3 no browser (the caller skips).
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
let chromium;
try {
  ({ chromium } = require(path.join(root, "node_modules/playwright-core")));
} catch (e) {
  console.error("SKIP: playwright-core not installed: " + e.message);
  process.exit(3);
}
const exe = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => fs.existsSync(p));
if (!exe) {
  console.error("SKIP: no chromium executable");
  process.exit(3);
}
const [html, shot, minSeriesArg] = process.argv.slice(2);
const minSeries = Number(minSeriesArg || 2);
let browser;
try {
  browser = await chromium.launch({ executablePath: exe, args: ["--no-sandbox", "--disable-gpu"] });
} catch (e) {
  console.error("SKIP: chromium does not start: " + e.message.split("\n")[0]);
  process.exit(3);
}
const fails = [];
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) external.push(r.url()); });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto("file://" + path.resolve(html));
  const info = await page.evaluate(() => {
    const charts = [...document.querySelectorAll("svg.qr-chart")].map((s) => {
      const r = s.getBoundingClientRect();
      return {
        id: s.id, w: r.width, h: r.height,
        series: s.querySelectorAll("g.qr-series").length,
        points: s.querySelectorAll("circle").length,
        bars: s.querySelectorAll("rect.qr-bar").length,
        polyPts: [...s.querySelectorAll("polyline")].map((p) => p.getAttribute("points").trim().split(/\s+/).filter(Boolean).length),
      };
    });
    return { title: document.title, charts, tables: document.querySelectorAll("table").length,
             scripts: document.querySelectorAll("script[src], link[rel=stylesheet], img[src]").length };
  });
  const want = ["chart-ttft", "chart-throughput", "chart-memory"];
  for (const id of want) {
    const c = info.charts.find((x) => x.id === id);
    if (!c) { fails.push(`no SVG chart #${id}`); continue; }
    if (c.w < 200 || c.h < 100) fails.push(`#${id} is not visible (${c.w}x${c.h})`);
    if (id === "chart-memory") {
      if (c.bars < 2) fails.push(`#${id} has ${c.bars} bars`);
    } else {
      if (c.series < minSeries) fails.push(`#${id} has ${c.series} series, want >= ${minSeries}`);
      if (c.points < 2) fails.push(`#${id} has ${c.points} points`);
      if (!c.polyPts.some((n) => n >= 2)) fails.push(`#${id} has no line`);
    }
  }
  if (info.tables < 4) fails.push(`only ${info.tables} tables`);
  if (info.scripts) fails.push(`${info.scripts} external resources referenced`);
  if (external.length) fails.push(`fetched ${external.join(", ")}`);
  if (errors.length) fails.push(`page errors: ${errors.join("; ")}`);
  await page.screenshot({ path: shot, fullPage: true });
  const st = fs.statSync(shot);
  if (st.size < 10000) fails.push(`screenshot is only ${st.size} bytes`);
  console.log(`${html}: "${info.title}", ${info.charts.length} charts (${info.charts.map((c) => `${c.id}:${c.series}s/${c.points}p/${c.bars}b`).join(" ")}), ${info.tables} tables; screenshot ${shot} (${st.size} bytes)`);
} finally {
  await browser.close();
}
if (fails.length) {
  console.error("FAIL: " + fails.join("\n      "));
  process.exit(1);
}

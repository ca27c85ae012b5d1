// Both pages in English and 中文, and the dark theme (docs/architecture.md, "The pages"): the generate page in
// Chinese (every translated element, a generation), the choice remembered and shared with the teaching page, a
// browser in Chinese gets Chinese at once; the dark theme follows prefers-color-scheme.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openPage, shotOf, waitState } from "./browser.mjs";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, serverAndBrowser } from "./setup.mjs";
import { STRINGS } from "../../www/js/i18n.js";
import { GENERATE_STAGES, GRID } from "../../www/js/protocol.js";

const env = serverAndBrowser();
const TINY = "model=tiny&prior_steps=2&decoder_steps=2&sr_steps=2";

/// [key, text] of every element translated on the page whose string is plain text.
const translated = (page) => page.$$eval("[data-i18n]", (els) => els.map((e) => [e.dataset.i18n, e.textContent]));

test("the Chinese generate page: every label, a generation, remembered, and shared with the teaching page", async () => {
  const started = Date.now();
  const context = await env.browser.newContext({ viewport: { width: 900, height: 900 } });
  const page = await openPage(context, `${env.server.url}?${TINY}&prompt=horse`);
  assert.equal(await waitState(page, ["ready", "error"]), "ready");
  assert.equal(await page.textContent("#generate"), "Generate", "English where the browser is");
  await page.click("#lang");
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN");
  const labels = await translated(page);
  assert.ok(labels.length > 50, `the page's translated elements: ${labels.length}`);
  for (const [key, text] of labels) {
    assert.equal(typeof STRINGS.zh[key], "string", `${key}: an element whose key has no 中文 string keeps its English`);
    assert.equal(text, STRINGS.zh[key], key);
  }
  assert.equal(await page.getAttribute("#negative_prompt", "placeholder"), STRINGS.zh["gen.none"]);
  assert.match(await page.evaluate(() => getComputedStyle(document.body).fontFamily), /PingFang SC.*Noto Sans CJK SC/);
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  assert.match(await page.textContent("#load-text"), /已就绪/);
  assert.match(await page.textContent('.stage[data-stage="decoder"] small'), /^用时 [\d.]+ 秒$/);
  await shotOf(page, "generate-zh");

  await page.reload();
  assert.equal(await waitState(page, ["ready", "error"]), "ready");
  assert.equal(await page.textContent("#generate"), "生成", "remembered");
  const learn = await context.newPage();
  await learn.goto(`${env.server.url}learn.html?model=tiny`);
  await waitState(learn, "ready");
  assert.equal(await learn.textContent("#forward-title"), STRINGS.zh["forward.title"], "the teaching page follows");
  await learn.click("#lang"); // back to English there: the open generate page follows
  await page.waitForFunction(() => document.getElementById("generate").textContent === "Generate");
  await context.close();

  const chinese = await env.browser.newContext({ locale: "zh-CN" });
  const fresh = await openPage(chinese, `${env.server.url}?model=tiny`);
  assert.equal(await fresh.textContent("#generate"), "生成", "a browser in Chinese gets Chinese");
  await chinese.close();
  console.log(`language browser test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test("the tables: both languages have the same keys, and every key the pages' HTML and scripts name is a string of them", () => {
  const keys = (lang) => Object.keys(STRINGS[lang]).sort();
  assert.deepEqual(keys("zh"), keys("en"), "the same keys in English and 中文");
  for (const k of keys("en")) assert.equal(typeof STRINGS.zh[k], typeof STRINGS.en[k], `${k}: text in one language, a function in the other`);
  for (const file of ["www/index.html", "www/learn.html"]) {
    const html = readFileSync(join(ROOT, file), "utf8");
    // data-i18n-title / -placeholder: a missing key would set the attribute to "undefined"
    const named = [...html.matchAll(/data-i18n(?:-title|-placeholder)?="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(named.length > 20, `${file} names its labels' keys`);
    for (const k of named) assert.equal(typeof STRINGS.en[k], "string", `${file}: data-i18n key ${k}`);
  }
  const js = ["www/js", "www/js/learn"].flatMap((d) => readdirSync(join(ROOT, d)).filter((f) => f.endsWith(".js")).map((f) => readFileSync(join(ROOT, d, f), "utf8")));
  const used = new Set(js.flatMap((src) => [...src.matchAll(/\bt\(\s*"([^"]+)"/g)].map((m) => m[1])));
  assert.ok(used.size > 10, "the scripts' t(\"…\") keys are found");
  for (const k of used) assert.ok(k in STRINGS.en, `t("${k}") has no string`);
  // the keys scripts build: gen.<each grid setting> (grid.js), stage.<stage>, steps.<stage with x_t frames>
  for (const s of GRID.settings) assert.ok(`gen.${s}` in STRINGS.en, `gen.${s}: the grid's menu`);
  for (const s of [...GENERATE_STAGES, "inversion"]) assert.ok(`stage.${s}` in STRINGS.en, `stage.${s}`);
  for (const s of ["decoder", "super_res"]) assert.ok(`steps.${s}` in STRINGS.en, `steps.${s}`);
});

test("the dark theme follows prefers-color-scheme", async () => {
  const context = await env.browser.newContext({ viewport: { width: 900, height: 900 } });
  const page = await openPage(context, `${env.server.url}?${TINY}&prompt=horse`);
  const colours = () => page.evaluate(() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]);
  await page.emulateMedia({ colorScheme: "light" });
  assert.deepEqual(await colours(), ["rgb(255, 255, 255)", "rgb(27, 28, 34)"]);
  await page.emulateMedia({ colorScheme: "dark" });
  assert.deepEqual(await colours(), ["rgb(21, 22, 28)", "rgb(228, 229, 234)"]);
  assert.equal(await waitState(page, ["ready", "error"]), "ready");
  await page.click("#generate");
  assert.equal(await waitState(page, ["done", "error"]), "done", await page.textContent("#error"));
  await shotOf(page, "generate-dark");
  await context.close();
});

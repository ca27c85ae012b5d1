// Both pages in English and 中文, and the dark theme (docs/architecture.md, "The pages"): the generate page in
// Chinese (every translated element, a generation), the choice remembered and shared with the teaching page, a
// browser in Chinese gets Chinese at once; the dark theme follows prefers-color-scheme.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openPage, shotOf, waitState } from "./browser.mjs";
import { serverAndBrowser } from "./setup.mjs";
import { STRINGS } from "../../www/js/i18n.js";

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
  for (const [key, text] of await translated(page)) if (typeof STRINGS.zh[key] === "string") assert.equal(text, STRINGS.zh[key], key);
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

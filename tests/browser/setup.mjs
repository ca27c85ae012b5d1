// One real HTTP server over dist/ and one headless Chromium per test file.
import { before, after } from "node:test";
import { join } from "node:path";
import { startServer } from "./server.mjs";
import { launch } from "./browser.mjs";

export const ROOT = new URL("../../", import.meta.url).pathname;

/// Returns a handle whose `server` and `browser` are set before the file's tests run.
export function serverAndBrowser() {
  const env = {};
  before(async () => {
    env.server = await startServer(join(ROOT, "dist"));
    env.browser = await launch();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
  });
  return env;
}

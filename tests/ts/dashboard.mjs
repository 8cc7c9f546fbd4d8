// The dashboard in a real browser: headless Chromium (Debian's), driven by
// playwright-core. Usage: node dashboard.mjs DASHBOARD_URL SCREENSHOT SESSIONS
// Sees the tree and the sessions, kills a session from the page and sees
// it gone and its shard's crash count rise, kills a shard and sees its
// supervisor's restart count rise; writes a screenshot. Prints one JSON
// line of what it saw; exits 1 with the reason on any failure.
import { chromium } from "playwright-core";

const [url, screenshot, sessionsArg] = process.argv.slice(2);
const sessions = Number(sessionsArg);
const seen = {};
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const fail = async (why) => {
  console.error(why);
  await browser.close();
  process.exit(1);
};
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(15000);
  await page.goto(url);
  const node = (path) => page.locator(`li[data-path="${path}"]`).first();
  const row = (path) => node(path).locator(":scope > .node");
  const expand = async (path) => {
    await row(path).locator(".toggle").click();
    await node(path).locator(":scope > ul > li").first().waitFor();
  };
  const badge = (path) => row(path).locator('[data-role="restarts"]');

  // The tree, and the sessions the server holds.
  await node("connections").waitFor();
  const held = page.locator('tr[data-transport="tcp-connections"] td').nth(2);
  await page.waitForFunction(
    (n) => Number(document.querySelector('tr[data-transport="tcp-connections"] td:nth-child(3)')?.textContent) >= n,
    sessions,
  );
  seen.tcpConnectionsShown = Number(await held.textContent());
  await expand("connections");
  await expand("connections/tcp-connections");
  for (let shard = 0; shard < 4; shard++) {
    const path = `connections/tcp-connections/shard-${shard}`;
    await row(path).locator(".toggle").click();
  }
  const sessionRows = page.locator('li[data-path*="/session-"]');
  await page.waitForFunction(
    (n) => document.querySelectorAll('li[data-path*="/session-"]').length >= n,
    sessions,
  );
  seen.sessionsInTree = await sessionRows.count();

  // Kill one session from the page: it is gone, its shard counts a crash.
  const victim = await sessionRows.first().getAttribute("data-path");
  const shard = victim.slice(0, victim.lastIndexOf("/"));
  const victimPid = await row(victim).locator(".pid").textContent();
  // Its detail: linked to its shard.
  seen.shardPid = await row(shard).locator(":scope > .pid").textContent();
  await row(victim).locator(".id").click();
  await page.waitForFunction(
    (path) => document.getElementById("detail").textContent.includes(path),
    victim,
  );
  seen.detail = await page.locator("#detail").textContent();
  await row(victim).locator("button.kill").click();
  await page.waitForFunction(
    ([path, pid]) => {
      const li = document.querySelector(`li[data-path="${path}"] .pid`);
      return !li || li.textContent !== pid;
    },
    [victim, victimPid],
  );
  await page.waitForFunction(
    (path) => /crashes 1\b/.test(document.querySelector(`li[data-path="${path}"] [data-role="restarts"]`)?.textContent || ""),
    shard,
  );
  seen.killedSession = victim;
  seen.shardAfter = await badge(shard).textContent();

  // Kill the shard itself: its supervisor restarts it and says so.
  const parent = "connections/tcp-connections";
  const before = await badge(parent).textContent();
  await row(shard).locator("button.kill").click();
  await page.waitForFunction(
    (path) => /restarts 1 \(1\//.test(document.querySelector(`li[data-path="${path}"] [data-role="restarts"]`)?.textContent || ""),
    parent,
  );
  seen.parentBefore = before;
  seen.parentAfter = await badge(parent).textContent();
  seen.log = await page.locator("#log").textContent();
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(seen));
  await browser.close();
} catch (e) {
  await fail(`${e.message}\nseen so far: ${JSON.stringify(seen)}`);
}

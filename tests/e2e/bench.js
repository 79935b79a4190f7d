// Benchmark (not a test) of the web UI as a browser meets it: a project of N text tasks, the data
// manager's first and last pages, the labeling screen cold (empty cache) and warm, and the label
// -> submit -> next task loop. Prints medians of several runs, the bytes a cold labeling screen
// transfers, and the server's peak memory. Run by scripts/bench-ui.sh.
//   LABELPORT_BINARY, LABELPORT_FRONTEND_DIR (required); BENCH_TASKS (default 100000);
//   BENCH_RUNS (default 5); CHROMIUM (default /usr/bin/chromium)
"use strict";

const fs = require("node:fs");
const { startServer, launchChromium } = require("./labelport.js");

const TASKS = Number(process.env.BENCH_TASKS || 100000);
const RUNS = Number(process.env.BENCH_RUNS || 5);
const TOKEN = require("node:crypto").randomBytes(20).toString("hex");
const CONFIG = `<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices></View>`;

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main() {
  const server = await startServer({
    email: "bench@example.com",
    password: "bench-password",
    token: TOKEN,
    extraEnv: { LABELPORT_LOG: "warn" },
  });
  const base = server.base;
  const api = async (method, urlPath, body) => {
    const response = await fetch(base + urlPath, {
      method,
      headers: { Authorization: `Token ${TOKEN}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${urlPath}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const browser = await launchChromium();
  try {
    const project = await api("POST", "/api/projects", { title: "bench", label_config: CONFIG });
    const tasks = Array.from({ length: TASKS }, (_, i) => ({ text: `Review number ${i}: the product arrived on time and works as described.` }));
    const imported = await api("POST", `/api/projects/${project.id}/import`, tasks);
    const peak = () => Math.round(Number(fs.readFileSync(`/proc/${server.process.pid}/status`, "utf8").match(/VmHWM:\s+(\d+)/)[1]) / 1024);
    const afterImport = peak();
    console.log(`project with ${imported.task_count} tasks (server peak memory so far ${afterImport} MB)`);
    const first = (await api("GET", `/api/tasks?project=${project.id}&page=1&page_size=1`)).tasks[0].id;

    const signedIn = async () => {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const login = await context.request.post(`${base}/user/login`, { data: { email: "bench@example.com", password: "bench-password" } });
      if (!login.ok()) throw new Error(`sign-in: ${login.status()}`);
      return context;
    };
    const time = async (page, url, selector) => {
      const started = Date.now();
      await page.goto(url);
      await page.waitForSelector(selector, { timeout: 120000 });
      return Date.now() - started;
    };

    const results = {};
    const context = await signedIn();
    const page = await context.newPage();
    const lastPage = Math.ceil(TASKS / 30);
    for (const [name, url] of [
      ["data manager, page 1", `${base}/projects/${project.id}/data`],
      [`data manager, page ${lastPage}`, `${base}/projects/${project.id}/data?page=${lastPage}`],
    ]) {
      const runs = [];
      for (let i = 0; i < RUNS; i++) runs.push(await time(page, url, "#tasks-table tbody tr"));
      results[name] = runs;
    }

    // Cold: a new browser context each run (empty cache); bytes as sent over the wire.
    const cold = [];
    let coldBytes = 0;
    for (let i = 0; i < RUNS; i++) {
      const fresh = await signedIn();
      const freshPage = await fresh.newPage();
      cold.push(await time(freshPage, `${base}/projects/${project.id}/label?task=${first}`, "#label-status:text('Ready')"));
      coldBytes = await freshPage.evaluate(() =>
        [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")].reduce((sum, e) => sum + (e.transferSize || 0), 0),
      );
      await fresh.close();
    }
    results["labeling screen, cold cache"] = cold;
    const warm = [];
    for (let i = 0; i < RUNS; i++) warm.push(await time(page, `${base}/projects/${project.id}/label?task=${first}`, "#label-status:text('Ready')"));
    results["labeling screen, warm cache"] = warm;

    // The annotator's loop: choose, submit, and the next task is ready.
    const loop = [];
    await page.goto(`${base}/projects/${project.id}/label`);
    await page.waitForSelector("#label-status:text('Ready')", { timeout: 120000 });
    for (let i = 0; i < RUNS; i++) {
      const before = page.url();
      const started = Date.now();
      await page.click("#label-studio >> text=Positive");
      await page.click("#label-studio button:has-text('Submit')");
      await page.waitForURL((url) => url.href !== before, { timeout: 120000 });
      await page.waitForSelector("#label-status:text('Ready')", { timeout: 120000 });
      loop.push(Date.now() - started);
    }
    results["choose + submit -> next task ready"] = loop;

    console.log(`\n${TASKS} tasks, ${RUNS} runs each, SQLite, headless Chromium on this machine`);
    for (const [name, runs] of Object.entries(results)) {
      console.log(`  ${name.padEnd(40)} median ${String(median(runs)).padStart(5)} ms   (runs: ${runs.join(", ")})`);
    }
    console.log(`  cold labeling screen transfers ${(coldBytes / 1024 / 1024).toFixed(2)} MB`);
    console.log(`  server peak memory (VmHWM): ${afterImport} MB after the import, ${peak()} MB at the end`);
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

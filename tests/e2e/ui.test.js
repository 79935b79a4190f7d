// End-to-end test of the web UI, in headless Chromium, as a person would use it: sign in, create
// a project, add an S3 source and target storage through the dialogs against the local S3 server
// (s3s-fs), sync, label a task in Label Studio's editor, submit, and find the annotation object
// in the target bucket. Also import by drag-and-drop, export, the account token and sign-out.
//
// Run by scripts/test.sh, which provides (environment):
//   LABELPORT_BINARY        the labelport binary
//   LABELPORT_FRONTEND_DIR  the unpacked labeling front end (scripts/frontend.sh)
//   LABELPORT_TEST_S3_ENDPOINT, _ROOT, _ACCESS_KEY, _SECRET_KEY  the s3s-fs server and its folder
//   LP_E2E_ARTIFACTS        where screenshots go (default test-artifacts/e2e)
//   CHROMIUM                the browser (default /usr/bin/chromium)
"use strict";

const nodeTest = require("node:test");
const { before, after } = nodeTest;
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const { startServer, launchChromium } = require("./labelport.js");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (scripts/test.sh sets it)`);
  return value;
};

const S3 = {
  endpoint: env("LABELPORT_TEST_S3_ENDPOINT"),
  root: env("LABELPORT_TEST_S3_ROOT"),
  accessKey: env("LABELPORT_TEST_S3_ACCESS_KEY"),
  secretKey: env("LABELPORT_TEST_S3_SECRET_KEY"),
};
const ARTIFACTS = process.env.LP_E2E_ARTIFACTS || path.join(__dirname, "..", "..", "test-artifacts", "e2e");
const EMAIL = "e2e@example.com";
const PASSWORD = "e2e-password-1";
const TOKEN = require("node:crypto").randomBytes(20).toString("hex");
const RUN = `${process.pid}-${Date.now()}`;
const SOURCE_BUCKET = `e2e-src-${RUN}`;
const TARGET_BUCKET = `e2e-dst-${RUN}`;
const IMAGE_NAMES = ["cat-1.png", "dog-2.png", "cat-3.png"];

let server;
let base;
let browser;
let page;
let shot = 0;

/** A small solid-colour PNG, made here so the test needs no fixture files. */
function png(width, height, [r, g, b]) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const byte of buf) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([length, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3).map((_, i) => [r, g, b][i % 3])]);
  const pixels = zlib.deflateSync(Buffer.concat(Array.from({ length: height }, () => row)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", pixels), chunk("IEND", Buffer.alloc(0))]);
}

/** Calls the API with the test user's token (for checks the UI does not show). */
async function apiGet(urlPath) {
  const response = await fetch(base + urlPath, { headers: { Authorization: `Token ${TOKEN}` } });
  assert.equal(response.status, 200, `GET ${urlPath}: ${response.status}`);
  return response.json();
}

async function screenshot(name) {
  shot += 1;
  const file = path.join(ARTIFACTS, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

async function waitFor(what, check, timeoutMs = 30000) {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const file of fs.readdirSync(ARTIFACTS)) if (file.endsWith(".png")) fs.rmSync(path.join(ARTIFACTS, file));
  // The source bucket: three images and a file the regex must leave out. s3s-fs keeps buckets as
  // folders, so the test writes them directly; the server reads them over S3 (signed requests).
  const colours = [[220, 80, 60], [60, 120, 220], [240, 180, 40]];
  fs.mkdirSync(path.join(S3.root, SOURCE_BUCKET, "images"), { recursive: true });
  IMAGE_NAMES.forEach((name, i) => fs.writeFileSync(path.join(S3.root, SOURCE_BUCKET, "images", name), png(96, 64, colours[i])));
  fs.writeFileSync(path.join(S3.root, SOURCE_BUCKET, "images", "notes.txt"), "not an image");
  fs.mkdirSync(path.join(S3.root, TARGET_BUCKET), { recursive: true });

  server = await startServer({ email: EMAIL, password: PASSWORD, token: TOKEN, extraEnv: { LABELPORT_FRONTEND_DIR: env("LABELPORT_FRONTEND_DIR") } });
  base = server.base;
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.on("pageerror", (error) => console.log(`[page error] ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") console.log(`[console error] ${message.text()} ${message.location()?.url || ""}`);
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    if (process.exitCode) console.log(`server log:\n${server.log().slice(-4000)}`);
    await server.stop();
  }
  fs.rmSync(path.join(S3.root, SOURCE_BUCKET), { recursive: true, force: true });
  fs.rmSync(path.join(S3.root, TARGET_BUCKET), { recursive: true, force: true });
});

let projectId;

/** A test step; when it fails, the page it failed on is saved as a screenshot too. */
function test(name, body) {
  nodeTest.test(name, async () => {
    try {
      await body();
    } catch (error) {
      if (page) await screenshot(`FAILED-${name.slice(0, 40).replace(/[^a-z0-9]+/gi, "-")}`).catch(() => {});
      throw error;
    }
  });
}

test("a signed-out browser is sent to sign in, a wrong password is refused, then it signs in", async () => {
  await page.goto(`${base}/projects`);
  await page.waitForURL(/\/user\/login\?next=/);
  await page.fill("#email", EMAIL);
  await page.fill("#password", "not-the-password");
  await page.click("#sign-in");
  await page.waitForSelector(".notice.error");
  assert.match(await page.textContent(".notice.error"), /Wrong email or password/);
  await screenshot("login-refused");
  await page.fill("#password", PASSWORD);
  await page.click("#sign-in");
  await page.waitForURL(`${base}/projects`);
  await page.waitForSelector("#create-project");
  assert.equal(await page.textContent("#current-user"), EMAIL);
  await screenshot("projects-empty");
});

test("a project is created from a template; a broken config gets the server's message", async () => {
  await page.click("#create-project");
  await page.fill("#project-title-input", "Pets");
  await page.selectOption("#project-template", "Image classification");
  assert.match(await page.inputValue("#project-config"), /<Image name="image" value="\$image"\/>/);
  const good = await page.inputValue("#project-config");
  await page.fill("#project-config", "<View><Image name=");
  await page.click("#project-save");
  await page.waitForSelector("#create-project-dialog .notice.error");
  assert.match(await page.textContent("#create-project-dialog .notice.error"), /label_config/);
  await screenshot("project-config-invalid");
  await page.fill("#project-config", good);
  await page.click("#project-save");
  await page.waitForURL(/\/projects\/\d+\/data$/);
  projectId = Number(page.url().match(/projects\/(\d+)/)[1]);
  await page.waitForSelector(".empty");
  await screenshot("data-manager-empty");
});

test("the source storage dialog refuses a bad regex and shows the server's message for a wrong secret", async () => {
  await page.click("text=Settings › Cloud Storage");
  await page.waitForURL(/settings\/storage$/);
  await page.click("#add-source");
  await page.waitForSelector("#storage-dialog");
  assert.equal(await page.inputValue("#storage-type"), "s3");
  for (const help of [/\.\* to collect every object/, /us-east-1/, /every object becomes one task/, /pre-signed URL/, /in minutes/]) {
    assert.match(await page.textContent("#storage-dialog"), help);
  }
  await page.fill("#storage-title", "Pet images");
  await page.fill("#storage-bucket", SOURCE_BUCKET);
  await page.fill("#storage-prefix", "images");
  await page.fill("#storage-regex_filter", "(unclosed");
  await page.fill("#storage-region_name", "us-east-1");
  await page.fill("#storage-s3_endpoint", S3.endpoint);
  await page.fill("#storage-aws_access_key_id", S3.accessKey);
  await page.fill("#storage-aws_secret_access_key", "wrong-secret");
  await page.check("#storage-use_blob_urls");
  await screenshot("source-dialog");

  await page.click("#save-storage");
  await page.waitForSelector("#storage-message .notice.error");
  assert.match(await page.textContent("#storage-message"), /regex/i);
  await screenshot("source-bad-regex");

  await page.fill("#storage-regex_filter", ".*\\.png");
  await page.click("#check-connection");
  await page.waitForSelector("#storage-message .notice.error");
  const wrongSecret = await page.textContent("#storage-message");
  assert.match(wrongSecret, /signature|credentials|access/i);
  assert.ok(!wrongSecret.includes("wrong-secret"), "the secret itself is not echoed");
  await screenshot("source-wrong-secret");

  await page.fill("#storage-aws_secret_access_key", S3.secretKey);
  await page.click("#check-connection");
  await page.waitForSelector("#storage-message .notice.ok");
  await page.click("#save-storage");
  await page.waitForSelector("#storage-dialog", { state: "detached" });
  await page.waitForSelector('#source-storages .storage-card[data-type="s3"]');
  const [storage] = await apiGet(`/api/storages/s3?project=${projectId}`);
  assert.equal(storage.bucket, SOURCE_BUCKET);
  assert.equal(storage.use_blob_urls, true);
  assert.equal(storage.aws_secret_access_key, undefined, "secrets are write-only");
});

test("Sync shows progress and reaches completed with one task per image", async () => {
  await page.click("#source-storages .sync");
  await page.waitForFunction(() => document.querySelector("#source-storages .status")?.textContent === "completed", null, { timeout: 60000 });
  const card = await page.textContent("#source-storages .storage-card");
  assert.match(card, /3 tasks/);
  assert.match(card, /3 tasks created/);
  assert.match(card, /objects listed/);
  await screenshot("source-synced");
  const tasks = await apiGet(`/api/tasks?project=${projectId}`);
  assert.equal(tasks.total, 3);
});

test("a target storage is added through its dialog", async () => {
  await page.click("#add-target");
  await page.waitForSelector("#storage-dialog");
  assert.equal(await page.$("#storage-use_blob_urls"), null, "import-only fields are not offered for targets");
  await page.fill("#storage-title", "Annotations");
  await page.fill("#storage-bucket", TARGET_BUCKET);
  await page.fill("#storage-prefix", "annotations");
  await page.fill("#storage-s3_endpoint", S3.endpoint);
  await page.fill("#storage-aws_access_key_id", S3.accessKey);
  await page.fill("#storage-aws_secret_access_key", S3.secretKey);
  await page.check("#storage-can_delete_objects");
  await screenshot("target-dialog");
  await page.click("#save-storage");
  await page.waitForSelector('#target-storages .storage-card[data-type="s3"]');
  await page.waitForFunction(() => document.querySelector("#target-storages .status")?.textContent === "completed", null, { timeout: 60000 });
  await screenshot("storages");
});

test("a task opens in the labeling editor with its image resolved, is labeled and submitted, and its annotation lands in the target bucket", async () => {
  await page.click("text=Data Manager");
  await page.waitForSelector("#tasks-table tbody tr");
  assert.equal(await page.locator("#tasks-table tbody tr").count(), 3);
  await screenshot("data-manager");
  const firstId = Number(await page.getAttribute("#tasks-table tbody tr:first-child", "data-task"));
  // The image link (s3://...) is resolved by the server to a pre-signed URL on the S3 server,
  // which the browser fetches itself.
  const imageResponse = page.waitForResponse((r) => r.url().startsWith(S3.endpoint) && /X-Amz-Signature=/.test(r.url()), { timeout: 60000 });
  const editorScript = page.waitForResponse((r) => r.url().endsWith("/static/editor/main.js"));
  await page.click("#tasks-table tbody tr:first-child");
  // The editor's 3.7 MB script travels compressed (the gzip copy frontend.sh made).
  assert.equal((await editorScript).headers()["content-encoding"], "gzip");
  await page.waitForURL(new RegExp(`/label\\?task=${firstId}$`));
  await page.waitForSelector("#label-status:text('Ready')", { timeout: 60000 });
  const image = await imageResponse;
  assert.equal(image.status(), 200);
  const body = await image.body();
  assert.ok(IMAGE_NAMES.some((name) => fs.readFileSync(path.join(S3.root, SOURCE_BUCKET, "images", name)).equals(body)), "the browser got one of the bucket's images");
  await page.waitForFunction(() => [...document.querySelectorAll("#label-studio img")].some((img) => img.complete && img.naturalWidth === 96), null, { timeout: 30000 });
  await page.click("#label-studio >> text=Cat");
  await screenshot("labeling");
  await page.click("#label-studio button:has-text('Submit')");
  // After submitting, the next task still to be labeled opens.
  await page.waitForURL((url) => url.searchParams.get("task") && Number(url.searchParams.get("task")) !== firstId);
  const task = await apiGet(`/api/tasks/${firstId}`);
  assert.equal(task.annotations.length, 1);
  const annotation = task.annotations[0];
  assert.deepEqual(annotation.result[0].value.choices, ["Cat"]);
  const objectPath = path.join(S3.root, TARGET_BUCKET, "annotations", String(annotation.id));
  await waitFor(`the annotation object ${objectPath}`, () => fs.existsSync(objectPath));
  const written = JSON.parse(fs.readFileSync(objectPath, "utf8"));
  assert.equal(written.id, annotation.id);
  assert.deepEqual(written.result[0].value.choices, ["Cat"]);
  await page.waitForSelector("#label-status:text('Ready')", { timeout: 60000 });
  await screenshot("labeling-next-task");

  // Previous goes back to the labeled task, which shows the saved annotation; changing it and
  // pressing Update saves it through the API, and the target object follows.
  await page.click("#prev-task");
  await page.waitForURL(new RegExp(`task=${firstId}$`));
  await page.waitForSelector("#label-status:text('Ready')", { timeout: 60000 });
  assert.ok(await page.isDisabled("#prev-task"), "the first task has no previous one");
  assert.ok(await page.isChecked("#label-studio label:has-text('Cat') input"), "the saved choice is shown");
  await page.click("#label-studio >> text=Cat");
  await page.click("#label-studio >> text=Dog");
  await page.click("#label-studio button:has-text('Update')");
  await page.waitForSelector("#label-status:text('Updated')");
  await screenshot("labeling-updated");
  const updated = await apiGet(`/api/annotations/${annotation.id}`);
  assert.deepEqual(updated.result[0].value.choices, ["Dog"]);
  await waitFor("the updated annotation object", () => JSON.parse(fs.readFileSync(objectPath, "utf8")).result[0].value.choices[0] === "Dog");
});

test("a source storage is edited without re-entering its secret, and a sync with a bad object lists it by key and reason", async () => {
  fs.mkdirSync(path.join(S3.root, SOURCE_BUCKET, "tasks"), { recursive: true });
  fs.writeFileSync(path.join(S3.root, SOURCE_BUCKET, "tasks", "good.json"), JSON.stringify({ image: "https://example.invalid/c.png" }));
  fs.writeFileSync(path.join(S3.root, SOURCE_BUCKET, "tasks", "bad.json"), '{"image": ');
  await page.goto(`${base}/projects/${projectId}/settings/storage`);
  await page.click("#source-storages .edit");
  await page.waitForSelector("#storage-dialog");
  assert.equal(await page.inputValue("#storage-bucket"), SOURCE_BUCKET);
  assert.equal(await page.inputValue("#storage-aws_secret_access_key"), "", "secrets are not sent back to the browser");
  await page.fill("#storage-title", "Pet tasks");
  await page.fill("#storage-prefix", "tasks");
  await page.fill("#storage-regex_filter", ".*\\.json");
  await page.uncheck("#storage-use_blob_urls");
  await page.click("#save-storage");
  await page.waitForSelector("#storage-dialog", { state: "detached" });
  await page.waitForSelector("#source-storages .storage-card:has-text('Pet tasks')");
  await page.click("#source-storages .sync");
  await page.waitForFunction(() => document.querySelector("#source-storages .status")?.textContent === "completed_with_errors", null, { timeout: 60000 });
  const errors = await page.textContent("#source-storages .sync-errors");
  assert.match(errors, /1 object could not be used/);
  assert.match(errors, /tasks\/bad\.json/);
  assert.match(await page.textContent("#source-storages .progress-line"), /1 tasks created/);
  await screenshot("source-sync-errors");
});

test("every kind's dialog shows its own fields and the server's connection message", async () => {
  await page.click("#add-source");
  await page.waitForSelector("#storage-dialog");
  const expectations = {
    gcs: ["#storage-google_application_credentials", "#storage-google_project_id"],
    azure: ["#storage-container", "#storage-account_name", "#storage-account_key"],
    redis: ["#storage-host", "#storage-port", "#storage-db", "#storage-password", "#storage-use_tls"],
    localfiles: ["#storage-path", "#storage-recursive_scan"],
  };
  for (const [kind, selectors] of Object.entries(expectations)) {
    await page.selectOption("#storage-type", kind);
    for (const selector of selectors) assert.ok(await page.$(selector), `${kind}: ${selector}`);
    if (kind !== "gcs") assert.equal(await page.$("#storage-bucket"), null, `${kind} has no bucket field`);
  }
  await page.selectOption("#storage-type", "redis");
  await page.fill("#storage-host", "127.0.0.1");
  await page.fill("#storage-port", "1");
  await page.click("#check-connection");
  await page.waitForSelector("#storage-message .notice.error");
  assert.match(await page.textContent("#storage-message"), /redis/i);
  await screenshot("redis-unreachable");
  await page.selectOption("#storage-type", "localfiles");
  await page.fill("#storage-path", "/definitely/not/here");
  await page.click("#check-connection");
  await page.waitForSelector("#storage-message .notice.error");
  await screenshot("localfiles-refused");
  await page.click("#storage-dialog button:has-text('Cancel')");

  // Deleting the target storage removes it from the list.
  page.once("dialog", (d) => d.accept());
  await page.click("#target-storages .delete");
  await page.waitForSelector("#target-storages .storage-card", { state: "detached" });
  assert.match(await page.textContent("#target-storages"), /No target storages yet/);
});

test("files dropped on the import dialog become tasks, with a result per file", async () => {
  await page.goto(`${base}/projects/${projectId}/data`);
  await page.click("#import-button");
  await page.waitForSelector("#drop-zone");
  await page.evaluate(() => {
    const transfer = new DataTransfer();
    const tasks = [{ image: "https://example.invalid/a.png" }, { image: "https://example.invalid/b.png" }];
    transfer.items.add(new File([JSON.stringify(tasks)], "tasks.json", { type: "application/json" }));
    transfer.items.add(new File(["not json ["], "broken.json", { type: "application/json" }));
    const rows = Array.from({ length: 30 }, (_, i) => `https://example.invalid/csv-${i}.png`);
    transfer.items.add(new File([["image", ...rows].join("\n")], "more.csv", { type: "text/csv" }));
    document.querySelector("#drop-zone").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
  });
  await page.waitForSelector(".upload-row.ok");
  await page.waitForSelector(".upload-row.failed");
  await page.waitForSelector(".upload-row.ok:has-text('more.csv')");
  assert.match(await page.textContent(".upload-row.ok:has-text('tasks.json')"), /2 tasks imported/);
  assert.match(await page.textContent(".upload-row.ok:has-text('more.csv')"), /30 tasks imported/);
  assert.match(await page.textContent(".upload-row.failed"), /\S/);
  await screenshot("import");
  await page.click("#import-close");
  await page.waitForFunction(() => /^36 tasks/.test(document.querySelector("#task-summary")?.textContent || ""));
  // 36 tasks are two pages of 30.
  assert.equal(await page.textContent("#page-info"), "Page 1 of 2");
  await page.click("#page-next");
  await page.waitForSelector("#page-info:text('Page 2 of 2')");
  assert.equal(await page.locator("#tasks-table tbody tr").count(), 6);
  await screenshot("data-manager-page-2");
});

test("Export downloads the project's tasks with their annotations", async () => {
  await page.selectOption("#export-format", "JSON");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-download")]);
  const exported = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
  assert.equal(exported.length, 36);
  assert.equal(exported.filter((t) => t.annotations.length).length, 1);
  await page.selectOption("#export-format", "CSV");
  const [csv] = await Promise.all([page.waitForEvent("download"), page.click("#export-download")]);
  assert.equal(fs.readFileSync(await csv.path(), "utf8").trim().split("\n").length, 37);
});

test("the account page creates an access token that works for the API", async () => {
  await page.click("text=Account");
  await page.waitForSelector("#reset-token");
  await screenshot("account");
  page.once("dialog", (d) => d.accept());
  await page.click("#reset-token");
  await page.waitForSelector("#access-token");
  const token = await page.inputValue("#access-token");
  assert.match(token, /^[0-9a-f]{40}$/);
  const whoami = await fetch(`${base}/api/current-user/whoami`, { headers: { Authorization: `Token ${token}` } });
  assert.equal(whoami.status, 200);
  const old = await fetch(`${base}/api/current-user/whoami`, { headers: { Authorization: `Token ${TOKEN}` } });
  assert.equal(old.status, 401, "the old token stops working");
  await screenshot("account-token");
});

test("signing out ends the session, and signing in never leaves the site", async () => {
  await page.click("#sign-out");
  await page.waitForURL(/\/user\/login/);
  await page.goto(`${base}/projects/${projectId}/data`);
  await page.waitForURL(/\/user\/login\?next=/);
  await screenshot("signed-out");
  // Signing in returns to a page of this site only: a `next` naming another site is ignored.
  await page.goto(`${base}/user/login?next=${encodeURIComponent("/\\example.invalid/x")}`);
  await page.fill("#email", EMAIL);
  await page.fill("#password", PASSWORD);
  await page.click("#sign-in");
  await page.waitForURL(`${base}/projects`);
});

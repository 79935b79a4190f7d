// What the end-to-end test and the UI benchmark share: a labelport server on a free port with a
// fresh SQLite database and a first user, and Debian's Chromium launched headless.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

/**
 * Starts `labelport start` (LABELPORT_BINARY) with the user `email`/`password`/`token` and
 * `extraEnv`; resolves once it answers. Returns {base, process, log(), stop()}.
 */
async function startServer({ email, password, token, extraEnv = {} }) {
  const binary = process.env.LABELPORT_BINARY;
  if (!binary) throw new Error("LABELPORT_BINARY must be set (scripts/test.sh and scripts/bench-ui.sh set it)");
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "labelport-e2e-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let log = "";
  const child = spawn(binary, ["start"], {
    env: {
      ...process.env,
      LABELPORT_DATA_DIR: dataDir,
      LABELPORT_DATABASE_URL: "",
      LABELPORT_HOST: "127.0.0.1",
      LABELPORT_PORT: String(port),
      LABELPORT_USERNAME: email,
      LABELPORT_PASSWORD: password,
      LABELPORT_USER_TOKEN: token,
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`${base}/api/health`)).ok) break;
    } catch {}
    if (child.exitCode !== null || attempt > 300) {
      await stop();
      throw new Error(`the server did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, process: child, log: () => log, stop };
}

/** Debian's Chromium, headless, with the flags this machine's closed network needs. */
function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

module.exports = { startServer, launchChromium };

// Harness for the widget's browser tests: starts the built `afterword` binary on 127.0.0.1 with
// a temporary data directory and config, a host page server on http://localhost (a different
// site), and Debian's headless Chromium through playwright-core. Third-party cookies are blocked
// with Chromium's --test-third-party-cookie-phaseout flag; the widget must work without them.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const START_TIMEOUT_MS = 30_000;

export function binaryPath() {
  const target = process.env.CARGO_TARGET_DIR || path.join(repo, 'target');
  const bin = process.env.AFTERWORD_BIN || path.join(target, 'debug', 'afterword');
  if (!fs.existsSync(bin)) {
    throw new Error(`no afterword binary at ${bin}: run \`cargo build -p afterword\` or set AFTERWORD_BIN`);
  }
  return bin;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts `afterword serve`; `imports` are Disqus files imported into site `default` first. */
export async function startAfterword({ hostOrigin, imports = [] }) {
  const bin = binaryPath();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afterword-widget-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = path.join(dir, 'afterword.toml');
  fs.writeFileSync(config, [
    '# Written by widget/tests/harness.mjs for one test file.',
    '[rate_limit]',
    'writes_per_minute_per_address = 10000',
    'writes_per_minute_per_session = 10000',
    'write_burst = 10000',
    '',
    '[[sites]]',
    'name = "default"',
    `origins = ["${hostOrigin}", "${url}", "http://localhost:${port}"]`,
    '',
    '[[sites]]',
    'name = "premod"',
    `origins = ["${hostOrigin}"]`,
    'moderation = "pre"',
    '',
  ].join('\n'));
  const common = ['--config', config, '--data-dir', path.join(dir, 'data')];
  // The binary reads AFTERWORD_* variables as config keys and rejects unknown ones
  // (AFTERWORD_BIN among them): the test's config file alone decides.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AFTERWORD_')));
  env.RUST_LOG = process.env.RUST_LOG || 'warn';
  for (const file of imports) {
    const run = spawnSync(bin, [...common, 'import', '--format', 'disqus', file], { encoding: 'utf8', env });
    if (run.status !== 0) throw new Error(`import of ${file} failed: ${run.stderr}`);
  }
  const child = spawn(bin, [...common, 'serve', '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`afterword did not start: ${stderr}`)), START_TIMEOUT_MS);
    let stdout = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.includes('listening on http://')) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`afterword exited with ${code}: ${stderr}`)); });
  });
  return {
    url,
    /** What the server has logged so far (warnings and errors: RUST_LOG=warn). */
    log: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A host page server: GET /anything?thread=&site=&page_size= embeds the widget. */
export async function startHost(afterwordUrlPromise) {
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  const state = { afterword: null };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, origin);
    // Browsers ask for a favicon; a 404 would be logged as a console error.
    if (u.pathname === '/favicon.ico') { res.writeHead(204); res.end(); return; }
    const thread = u.searchParams.get('thread') ?? '';
    const site = u.searchParams.get('site') || 'default';
    const pageSize = u.searchParams.get('page_size');
    const extra = pageSize ? ` data-afterword-page-size="${escapeHtml(pageSize)}"` : '';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Host page ${escapeHtml(u.pathname)}</title></head>
<body>
<h1>A blog post on another site</h1>
<div id="comments" data-afterword-thread="${escapeHtml(thread)}"></div>
<script src="${state.afterword}/static/embed.js" data-afterword-site="${escapeHtml(site)}"${extra} async></script>
</body></html>`);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    origin,
    setAfterword(url) { state.afterword = url; },
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Behave as browsers do once third-party cookies are gone.
      '--test-third-party-cookie-phaseout',
    ],
  });
}

/** Everything a test must find empty at the end: console errors, page errors, failed requests, dialogs. */
export function watch(page) {
  const problems = { console: [], page: [], requests: [], dialogs: [], all: [] };
  page.on('console', (m) => {
    problems.all.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error' || m.type() === 'warning') problems.console.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.page.push(String(e)));
  page.on('requestfailed', (r) => problems.requests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('dialog', (d) => { problems.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  return problems;
}

/** Polls `probe` until it returns a truthy value. */
export async function eventually(probe, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One Afterword server, one host server and one browser for a test file. */
export async function setup({ imports = [] } = {}) {
  const host = await startHost();
  const afterword = await startAfterword({ hostOrigin: host.origin, imports });
  host.setAfterword(afterword.url);
  const browser = await launchBrowser();
  return {
    host,
    afterword,
    browser,
    async teardown() {
      await browser.close();
      await host.stop();
      await afterword.stop();
    },
  };
}

/** Reads a thread through the API as an anonymous client (what a stranger sees). */
export async function apiList(afterwordUrl, thread, site = 'default') {
  const res = await fetch(`${afterwordUrl}/api/v1/comments?format=flat&limit=1000&site=${site}&thread=${encodeURIComponent(thread)}`);
  if (!res.ok) throw new Error(`list ${thread}: ${res.status}`);
  return res.json();
}

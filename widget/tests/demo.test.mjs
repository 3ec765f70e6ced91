// The demo page at / (same origin as the API): lists threads, opens one with the widget, and
// uses content-hashed, immutable static assets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, watch } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

test('the demo page lists threads and shows one with the widget', async () => {
  const res = await fetch(`${env.afterword.url}/api/v1/comments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ thread: '/demo/first', text: 'Seeded *comment*', title: 'First demo thread' }),
  });
  assert.equal(res.status, 201);
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const problems = watch(page);
  const assets = [];
  page.on('response', (r) => { if (r.url().includes('/static/')) assets.push(r); });
  await page.goto(env.afterword.url + '/');
  const link = page.getByRole('link', { name: 'First demo thread' });
  await link.waitFor();
  await link.click();
  await page.locator('.aw-count', { hasText: '1 comment' }).waitFor();
  await page.locator('.aw-body em', { hasText: 'comment' }).waitFor();

  await page.getByLabel('Your comment (Markdown)').fill('Said on the demo page');
  await page.getByRole('button', { name: 'Post comment' }).click();
  await page.locator('.aw-body', { hasText: 'Said on the demo page' }).waitFor();
  await page.reload();
  await page.locator('.aw-count', { hasText: '2 comments' }).waitFor();

  const embed = assets.find((r) => /\/static\/embed\.[0-9a-f]{12}\.js$/.test(r.url()));
  assert.ok(embed, `the demo page loads the hashed widget: ${assets.map((r) => r.url())}`);
  const headers = await embed.allHeaders();
  assert.equal(headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.match(headers.etag, /^"[0-9a-f]{12}(-gz)?"$/);
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.page, []);
  assert.deepEqual(problems.requests, []);
  await context.close();
});

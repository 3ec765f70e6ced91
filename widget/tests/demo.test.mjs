// The demo page at / (same origin as the API): lists threads a page at a time, opens one with
// the widget, and uses content-hashed, immutable static assets.
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
  assert.equal(await page.getByRole('status').textContent(), 'Most recently commented first. Showing 1 thread.');
  assert.equal(await page.getByRole('button', { name: 'Load more threads' }).isVisible(), false);
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

test('the demo page loads more threads a page at a time and claims no total', async () => {
  // Three more threads: with the first test's, three or four in all, so pages of two make two.
  for (const n of [2, 3, 4]) {
    const res = await fetch(`${env.afterword.url}/api/v1/comments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ thread: `/demo/more-${n}`, text: 'x', title: `Demo thread ${n}` }),
    });
    assert.equal(res.status, 201);
  }
  const all = await (await fetch(`${env.afterword.url}/api/v1/threads?limit=1000`)).json();
  const titles = all.threads.map((t) => t.title || t.key);
  assert.ok(titles.length === 3 || titles.length === 4, `${titles}`);
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(env.afterword.url + '/?limit=2');
  const status = page.getByRole('status');
  await status.filter({ hasText: 'Showing' }).waitFor();
  assert.equal(await status.textContent(), 'Most recently commented first. Showing 2 threads; there are more.');
  const links = page.locator('ul.threads li a');
  assert.deepEqual(await links.allTextContents(), titles.slice(0, 2));

  const more = page.getByRole('button', { name: 'Load more threads' });
  await more.click();
  await status.filter({ hasText: `Showing ${titles.length} threads.` }).waitFor();
  assert.deepEqual(await links.allTextContents(), titles, 'the next page is appended, in order');
  assert.equal(await more.isVisible(), false, 'no more pages, no button');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), titles[2], 'focus on the first new thread');
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.page, []);
  assert.deepEqual(problems.requests, []);
  await context.close();
});

// Pre-moderation (site "premod"): the author sees their pending comment, marked "awaiting
// moderation", also after a reload; a second browser context (another visitor) does not.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, watch, apiList } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

test('a pending comment is shown to its author only', async () => {
  const url = `${env.host.origin}/held?site=premod&thread=/held`;
  const author = await env.browser.newContext();
  const page = await author.newPage();
  const problems = watch(page);
  await page.goto(url);
  await page.locator('.aw-count', { hasText: '0 comments' }).waitFor();
  await page.getByLabel('Your comment (Markdown)').fill('Please approve me');
  await page.getByRole('button', { name: 'Post comment' }).click();
  const mine = page.locator('article.aw-pending', { hasText: 'Please approve me' });
  await mine.locator('.aw-badge', { hasText: 'Awaiting moderation' }).waitFor();
  await page.locator('[role=status]', { hasText: 'awaiting moderation' }).waitFor();

  await page.reload();
  await page.locator('.aw-count', { hasText: '0 comments' }).waitFor();
  await page.locator('article.aw-pending', { hasText: 'Please approve me' }).locator('.aw-badge').waitFor();

  const other = await env.browser.newContext();
  const stranger = await other.newPage();
  const strangerProblems = watch(stranger);
  await stranger.goto(url);
  await stranger.locator('.aw-count', { hasText: '0 comments' }).waitFor();
  assert.equal(await stranger.locator('[data-afterword-comment]').count(), 0);
  assert.equal(await stranger.getByText('Please approve me').count(), 0);
  assert.equal((await apiList(env.afterword.url, '/held', 'premod')).comments.length, 0);

  for (const p of [problems, strangerProblems]) {
    assert.deepEqual(p.console, []);
    assert.deepEqual(p.page, []);
  }
  await author.close();
  await other.close();
});

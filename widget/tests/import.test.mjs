// The imported Disqus thread /blog/baoyan-experiences-share.html (163 comments, 86 of them
// top-level) renders every comment in the DOM, through "load more" at 50 top-level per page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setup, watch, repo } from './harness.mjs';

const EXPORT = path.join(repo, '..', 'shared', 'data', 'disqus_export_tl3shi_blog.anon.xml');
const THREAD = '/blog/baoyan-experiences-share.html';

let env;
before(async () => { env = await setup({ imports: [EXPORT] }); });
after(async () => { await env?.teardown(); });

test('the imported 163-comment thread renders 163 comments', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(`${env.host.origin}/blog?thread=${encodeURIComponent(THREAD)}&page_size=50`);
  await page.locator('.aw-count', { hasText: '163 comments' }).waitFor();
  const more = page.getByRole('button', { name: 'Load more comments' });
  let pages = 1;
  while (await more.isVisible()) {
    await more.click();
    pages += 1;
    await page.locator('[role=status]', { hasText: 'More comments loaded.' }).waitFor();
    await page.evaluate(() => { document.querySelector('.aw-status').textContent = ''; });
    assert.ok(pages < 10, 'load more ends');
  }
  assert.equal(pages, 2, '86 top-level comments at 50 a page');
  assert.equal(await page.locator('[data-afterword-comment]').count(), 163);
  assert.equal(await page.locator('[data-afterword-comment].aw-deleted').count(), 0);
  const ids = await page.locator('[data-afterword-comment]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-afterword-comment')));
  assert.equal(new Set(ids).size, 163, 'no comment rendered twice');
  assert.ok(await page.locator('.aw-replies [data-afterword-comment]').count() > 0, 'replies nest under their parents');
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.page, []);
  await context.close();
});

// Cross-site embedding: a host page on http://localhost:P1 embeds the widget served by Afterword
// on http://127.0.0.1:P2 with third-party cookies blocked. Post, reply, reload, edit, delete a
// reply, post with the keyboard only, double-click "post", and see clear messages for 4xx/429.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, watch, eventually, apiList } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

const comments = (page) => page.locator('[data-afterword-comment]');
const byText = (page, text) => page.locator('li.aw-item', { has: page.locator('.aw-body', { hasText: text }) }).first();
// Pinned by id: an item found by its text is lost once an edit form replaces the text.
async function pinned(page, item) {
  const id = await item.locator('article').first().getAttribute('data-afterword-comment');
  return page.locator(`li.aw-item:has(> article#aw-c-${id})`);
}

async function openThread(context, thread) {
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(`${env.host.origin}/post?thread=${encodeURIComponent(thread)}`);
  await page.locator('.aw-count').filter({ hasText: /\d+ comments?/ }).waitFor();
  return { page, problems };
}

function assertClean(problems) {
  assert.deepEqual(problems.console, [], 'no console errors or warnings (CORS errors land there)');
  assert.deepEqual(problems.page, [], 'no uncaught exceptions');
  assert.deepEqual(problems.requests, [], 'no failed requests');
  assert.deepEqual(problems.dialogs, [], 'no dialogs');
}

test('post, reply, reload, edit and delete across sites without cookies', async () => {
  const context = await env.browser.newContext();
  const { page, problems } = await openThread(context, '/cross');
  const apiHeaders = [];
  page.on('request', (r) => { if (r.url().includes('/api/v1/')) apiHeaders.push(r.headers()); });
  assert.equal(await page.locator('.aw-count').textContent(), '0 comments');

  await page.getByLabel('Name (optional)').first().fill('Ann');
  await page.getByLabel('Your comment (Markdown)').fill('Hello from **another site**');
  await page.getByRole('button', { name: 'Post comment' }).click();
  const first = byText(page, 'Hello from another site');
  await first.waitFor();
  assert.equal(await first.locator('strong').first().textContent(), 'another site', 'Markdown rendered');
  assert.equal(await first.locator('.aw-author').first().textContent(), 'Ann');

  await first.getByRole('button', { name: 'Reply' }).first().click();
  await first.getByLabel('Your reply (Markdown)').fill('A reply to myself');
  await first.getByRole('button', { name: 'Post reply' }).click();
  await first.locator('.aw-replies .aw-body', { hasText: 'A reply to myself' }).waitFor();

  await page.reload();
  await page.locator('.aw-count', { hasText: '2 comments' }).waitFor();
  const reloaded = await pinned(page, byText(page, 'Hello from another site'));
  await reloaded.locator('.aw-replies .aw-body', { hasText: 'A reply to myself' }).waitFor();
  assert.equal(await comments(page).count(), 2);

  // Edit rights come from the session token in this page's storage, not from a cookie.
  await reloaded.getByRole('button', { name: 'Edit' }).first().click();
  await reloaded.getByLabel('Edit your comment (Markdown)').fill('Hello, edited');
  await reloaded.getByRole('button', { name: 'Save' }).click();
  await page.locator('.aw-body', { hasText: 'Hello, edited' }).waitFor();
  await page.locator('.aw-edited').first().waitFor();

  const reply = page.locator('.aw-replies li.aw-item').first();
  await reply.getByRole('button', { name: 'Delete' }).click();
  await reply.getByRole('button', { name: 'Yes, delete' }).click();
  await eventually(async () => (await page.locator('.aw-body', { hasText: 'A reply to myself' }).count()) === 0, 'the reply to go');

  await page.reload();
  await page.locator('.aw-count', { hasText: '1 comment' }).waitFor();
  await page.locator('.aw-body', { hasText: 'Hello, edited' }).waitFor();
  assert.equal(await page.locator('.aw-body', { hasText: 'A reply to myself' }).count(), 0);

  const stranger = await apiList(env.afterword.url, '/cross');
  assert.deepEqual(stranger.comments.map((c) => c.html.trim()), ['<p>Hello, edited</p>']);

  assertClean(problems);
  assert.deepEqual(await context.cookies(env.afterword.url), [], 'no cookie was stored for the Afterword origin');
  const stored = await page.evaluate((key) => JSON.parse(localStorage.getItem(key)), `afterword:${env.afterword.url}`);
  assert.match(stored.session, /\S/, 'session token kept in the host page storage');
  assert.match(stored.position, /^v1\./, 'position token kept in the host page storage');
  const sent = apiHeaders.filter((h) => h['afterword-session']);
  assert.ok(sent.length > 0, 'the session token travels as a header');
  assert.ok(apiHeaders.every((h) => !h.cookie), 'no cookie header on API calls');
  await context.close();
});

test('a double click on "post" makes one comment', async () => {
  const context = await env.browser.newContext();
  const { page, problems } = await openThread(context, '/double');
  await page.getByLabel('Your comment (Markdown)').fill('Posted once');
  await page.getByRole('button', { name: 'Post comment' }).dblclick();
  await byText(page, 'Posted once').waitFor();
  // A burst of clicks through the DOM, too fast for any re-render.
  await page.getByLabel('Your comment (Markdown)').fill('Posted once again');
  await page.evaluate(() => {
    const button = document.querySelector('.aw > .aw-form .aw-submit');
    for (let i = 0; i < 5; i++) button.click();
  });
  await byText(page, 'Posted once again').waitFor();
  await page.waitForTimeout(300);
  const listed = await apiList(env.afterword.url, '/double');
  assert.deepEqual(listed.comments.map((c) => c.html.trim()), ['<p>Posted once</p>', '<p>Posted once again</p>']);
  assert.equal(await comments(page).count(), 2);
  assertClean(problems);
  await context.close();
});

test('keyboard only: tab to the form, type, submit with Enter', async () => {
  const context = await env.browser.newContext();
  const { page, problems } = await openThread(context, '/keyboard');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.labels[0].textContent), 'Your comment (Markdown)');
  await page.keyboard.type('Typed without a mouse');
  await page.keyboard.press('Tab');
  await page.keyboard.type('Kim');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Post comment');
  await page.keyboard.press('Enter');
  await byText(page, 'Typed without a mouse').waitFor();
  assert.equal(await page.locator('[role=status]').textContent(), 'Your comment was posted.');
  assertClean(problems);
  await context.close();
});

test('4xx and 429 answers become clear messages', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${env.host.origin}/post?thread=/errors`);
  await page.locator('.aw-count', { hasText: '0 comments' }).waitFor();
  const form = page.locator('.aw > .aw-form');
  const alert = form.locator('[role=alert]');

  await page.route('**/api/v1/comments', (route) => route.request().method() === 'POST'
    ? route.fulfill({ status: 429, headers: { 'retry-after': '7', 'access-control-allow-origin': '*', 'access-control-expose-headers': 'retry-after' }, contentType: 'application/json', body: JSON.stringify({ error: { code: 'rate_limited', message: 'too many writes; retry in 7 s' } }) })
    : route.continue());
  await page.getByLabel('Your comment (Markdown)').fill('too fast');
  await page.getByRole('button', { name: 'Post comment' }).click();
  await alert.filter({ hasText: 'You are posting too fast. Please wait 7 seconds and try again.' }).waitFor();
  await page.unroute('**/api/v1/comments');

  // A real 422 from the server: the website must be an http(s) URL.
  await page.getByLabel('Website (optional)').first().fill('javascript:alert(1)');
  await page.getByRole('button', { name: 'Post comment' }).click();
  await alert.filter({ hasText: 'Website: must be an absolute http(s) URL.' }).waitFor();
  assert.equal(await page.getByLabel('Website (optional)').first().getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'website', 'focus moves to the field at fault');

  // The form still works once the input is fixed, and the message goes away.
  await page.getByLabel('Website (optional)').first().fill('example.org');
  await page.getByRole('button', { name: 'Post comment' }).click();
  await byText(page, 'too fast').waitFor();
  assert.equal(await alert.textContent(), '');
  const link = byText(page, 'too fast').locator('a.aw-author');
  assert.equal(await link.getAttribute('href'), 'https://example.org/');
  assert.equal(await link.getAttribute('rel'), 'nofollow ugc noopener');
  await context.close();
});

test('a page whose origin no site allows gets a clear message, and both sides name the origin', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const warnings = [];
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  // The host server also answers on 127.0.0.1, an origin no [[sites]] entry lists.
  const refused = env.host.origin.replace('localhost', '127.0.0.1');
  await page.goto(`${refused}/post?thread=${encodeURIComponent('/refused')}`);
  await page.getByText('Could not reach the comment server').first().waitFor();
  await eventually(() => warnings.some((w) => w.includes(`add ${refused} to its site's origins`)),
    'the console names the origin to allow');
  await eventually(() => env.afterword.log().includes(`origin=${refused}`),
    'the server log names the refused origin');
  await context.close();
});

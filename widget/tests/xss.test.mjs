// Hostile comments: text, author and website carrying script tags, event handlers and
// javascript: URLs render inert. A hook on alert/confirm/prompt, a marker variable and the
// console listener must observe nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, watch } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

const MARK = 'window.__pwned=(window.__pwned||0)+1';
const PAYLOADS = [
  `<script>${MARK};alert('xss')</script>`,
  `<img src=x onerror="${MARK};alert('xss')">`,
  `<svg/onload=${MARK}>`,
  `[click me](javascript:${MARK})`,
  `<a href="javascript:${MARK}">plain link</a>`,
  `<iframe src="javascript:${MARK}"></iframe>`,
  `<details open ontoggle="${MARK}">x</details>`,
  `"><img src=x onerror=${MARK}>`,
  `<math><mtext><table><mglyph><style><img src=x onerror=${MARK}>`,
];

async function hookedPage(context) {
  await context.addInitScript(() => {
    window.__dialogs = [];
    for (const name of ['alert', 'confirm', 'prompt']) {
      window[name] = (...args) => { window.__dialogs.push(`${name}:${args.join(' ')}`); };
    }
  });
  const page = await context.newPage();
  return { page, problems: watch(page) };
}

async function assertInert(page, problems) {
  // Give handlers (onerror, ontoggle, onload) their chance to run.
  await page.waitForTimeout(500);
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no payload ran');
  assert.deepEqual(await page.evaluate(() => window.__dialogs), []);
  assert.deepEqual(problems.dialogs, []);
  assert.deepEqual(problems.page, []);
  assert.deepEqual(problems.all.filter((m) => /xss|pwned/i.test(m)), []);
  const hrefs = await page.locator('.aw a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
  // The sanitiser drops a script URL and keeps the link text: an <a> without href is inert.
  for (const href of hrefs) assert.ok(href === null || /^https?:\/\//.test(href), `only http(s) links: ${href}`);
  assert.equal(await page.locator('.aw script, .aw iframe, .aw svg, .aw [onerror], .aw [onload], .aw [ontoggle]').count(), 0);
}

test('payloads posted through the widget and the API render inert', async () => {
  const context = await env.browser.newContext();
  const { page, problems } = await hookedPage(context);
  await page.goto(`${env.host.origin}/xss?thread=/xss`);
  await page.locator('.aw-count', { hasText: '0 comments' }).waitFor();
  // Visible words before each payload: the server refuses text that sanitises to nothing.
  for (const [i, payload] of PAYLOADS.entries()) {
    await page.getByLabel('Name (optional)').first().fill(payload.slice(0, 100));
    await page.getByLabel('Website (optional)').first().fill(`https://ok.example/"><script>${MARK}</script>`);
    await page.getByLabel('Your comment (Markdown)').fill(`Widget payload ${i}: ${payload}`);
    await page.getByRole('button', { name: 'Post comment' }).click();
    const posted = page.locator('[role=status]', { hasText: 'Your comment was posted.' });
    const refused = page.locator('.aw > .aw-form [role=alert]', { hasText: /\S/ });
    await posted.or(refused).waitFor();
    assert.equal(await refused.count(), 0, `payload ${i} refused: ${await refused.allTextContents()}`);
    await page.evaluate(() => { document.querySelector('.aw-status').textContent = ''; });
  }
  // Straight through the API too, as another client would.
  for (const [i, payload] of PAYLOADS.entries()) {
    const res = await fetch(`${env.afterword.url}/api/v1/comments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ thread: '/xss', text: `API payload ${i}: ${payload}`, author: payload.slice(0, 100), website: 'https://ok.example/?q="><svg onload=x>' }),
    });
    assert.equal(res.status, 201);
  }
  await page.reload();
  await page.locator('.aw-count', { hasText: `${PAYLOADS.length * 2} comments` }).waitFor();
  const authors = await page.locator('.aw-author').allTextContents();
  assert.ok(authors.includes(PAYLOADS[0].slice(0, 100)), 'author names are shown as text, tags and all');
  await assertInert(page, problems);
  await context.close();
});

test('a hostile author or website from the server is not trusted either', async () => {
  const context = await env.browser.newContext();
  const { page, problems } = await hookedPage(context);
  const comment = (id, author, website) => ({
    id, thread: '/forged', parent_id: null, author, website, html: '<p>forged</p>',
    created_at: new Date().toISOString(), edited_at: null, state: 'published', own: false, replies: [],
  });
  await page.route('**/api/v1/comments?*', (route) => route.fulfill({
    status: 200,
    headers: { 'access-control-allow-origin': '*' },
    contentType: 'application/json',
    body: JSON.stringify({
      thread: { key: '/forged', title: null, count: 4 },
      comments: [
        comment('1', `<img src=x onerror="${MARK}">`, `javascript:${MARK}`),
        comment('2', 'data link', `data:text/html,<script>${MARK}</script>`),
        comment('3', 'vb', ` JaVaScRiPt:${MARK}`),
        comment('4', 'fine', 'https://ok.example/'),
      ],
      position: 'v1.00000000000000000000000000000000.1',
    }),
  }));
  await page.goto(`${env.host.origin}/forged?thread=/forged`);
  await page.locator('.aw-count', { hasText: '4 comments' }).waitFor();
  assert.equal(await page.locator('.aw-author').first().textContent(), `<img src=x onerror="${MARK}">`);
  assert.equal(await page.locator('a.aw-author').count(), 1, 'only the http(s) website becomes a link');
  assert.equal(await page.locator('a.aw-author').getAttribute('rel'), 'nofollow ugc noopener');
  await assertInert(page, problems);
  await context.close();
});

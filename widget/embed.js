/* Afterword embed widget: renders a comment thread into every
 * <div data-afterword-thread="KEY"> on the host page (an empty KEY means this page's URL).
 * Plain JavaScript, no framework, no build step: the server embeds this file as it is.
 *
 * Include it with
 *   <script src="https://AFTERWORD/static/embed.js" data-afterword-site="default" async></script>
 * Optional script attributes: data-afterword-url (the server, default: where this file came
 * from), data-afterword-page-size (top-level comments per page, default 50),
 * data-afterword-edit-window-s (when to stop offering edit/delete, default 900).
 *
 * Cross-site rules (DESIGN.md "Embedding across origins"): third-party cookies may be blocked,
 * so the session token and the position token live in the host page's localStorage, keyed by
 * the Afterword origin, and travel as Afterword-Session / Afterword-Position headers. The
 * position kept is the highest seen in any response, so reads are monotonic and a reload always
 * shows the visitor's own writes. Untrusted strings are set with textContent; only the `html`
 * field, which the server has already sanitised, is set as HTML. */
(function () {
  'use strict';
  if (window.Afterword) return;
  var script = document.currentScript || document.querySelector('script[src*="/static/embed."]');
  if (!script) return;
  var base = (script.getAttribute('data-afterword-url') || new URL(script.src, location.href).origin).replace(/\/+$/, '');
  var site = script.getAttribute('data-afterword-site') || '';
  var pageSize = parseInt(script.getAttribute('data-afterword-page-size'), 10) || 50;
  var editWindowMs = (parseInt(script.getAttribute('data-afterword-edit-window-s'), 10) || 900) * 1000;
  var storageKey = 'afterword:' + base;
  var FIELD_LABELS = { text: 'Comment', author: 'Name', website: 'Website', email: 'Email' };
  var uid = 0;

  // ---- tokens in the host page's storage (memory only when storage is refused) ----
  var memory = {};
  function load() {
    try { return JSON.parse(localStorage.getItem(storageKey)) || {}; } catch (e) { return memory; }
  }
  function save(state) {
    memory = state;
    try { localStorage.setItem(storageKey, JSON.stringify(state)); } catch (e) { /* memory copy kept */ }
  }
  // Tokens look like v1.<store>.<n>: compare n only within the same store; from another
  // store (a restored or replaced database) the server's newer word wins.
  function newer(a, b) {
    if (!a) return false;
    if (!b) return true;
    var i = a.lastIndexOf('.'), j = b.lastIndexOf('.');
    if (a.slice(0, i) !== b.slice(0, j)) return true;
    var x = a.slice(i + 1), y = b.slice(j + 1);
    return x.length !== y.length ? x.length > y.length : x > y;
  }
  function remember(position, session, extra) {
    var state = load(), changed = false;
    if (position && newer(position, state.position)) { state.position = position; changed = true; }
    if (session && session !== state.session) { state.session = session; changed = true; }
    for (var k in extra || {}) { state[k] = extra[k]; changed = true; }
    if (changed) save(state);
  }
  function newKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  // ---- HTTP ----
  function api(method, path, body, idempotencyKey) {
    var state = load(), headers = {};
    if (state.session) headers['Afterword-Session'] = state.session;
    if (state.position) headers['Afterword-Position'] = state.position;
    if (body) headers['Content-Type'] = 'application/json';
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    var init = { method: method, headers: headers, credentials: 'omit', cache: 'no-store' };
    if (body) init.body = JSON.stringify(body);
    return fetch(base + path, init).then(function (res) {
      remember(res.headers.get('Afterword-Position'), res.headers.get('Afterword-Session'));
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!res.ok) throw failure(res, data);
        if (data) remember(data.position, data.session);
        return data;
      });
    }, function () {
      // A browser reports an answer it may not read (this page's origin not allowed) exactly
      // like no answer at all: the hint is for the site's owner, the message for the reader.
      console.warn('Afterword: no usable answer from ' + base + '. If the server is up, add ' +
        location.origin + ' to its site\'s origins ([[sites]] in its configuration).');
      throw { message: 'Could not reach the comment server. Check your connection and try again.' };
    });
  }
  function failure(res, data) {
    var error = (data && data.error) || {}, message;
    if (res.status === 429) {
      var wait = parseInt(res.headers.get('Retry-After'), 10);
      message = 'You are posting too fast. Please wait ' + (wait > 0 ? wait + (wait === 1 ? ' second' : ' seconds') : 'a moment') + ' and try again.';
    } else if (res.status >= 500) {
      message = 'The comment server had a problem (' + res.status + '). Please try again shortly.';
    } else {
      var label = FIELD_LABELS[error.field];
      message = (label ? label + ': ' : '') + (error.message || 'the request was refused (' + res.status + ')');
      message = message.charAt(0).toUpperCase() + message.slice(1);
      if (!/[.!?]$/.test(message)) message += '.';
    }
    return { status: res.status, field: error.field, message: message };
  }

  // ---- DOM helpers ----
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }
  function button(text, onClick, className) {
    var b = el('button', className || 'aw-link', text);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }
  function field(form, kind, name, labelText, value) {
    var id = 'aw-f' + (++uid);
    var wrap = el('p', 'aw-field');
    var label = el('label', null, labelText);
    label.htmlFor = id;
    var input = el(kind);
    input.id = id;
    input.name = name;
    if (kind === 'input') input.type = 'text';
    if (value) input.value = value;
    wrap.appendChild(label);
    wrap.appendChild(input);
    form.appendChild(wrap);
    return input;
  }
  function safeUrl(url) {
    try {
      var parsed = new URL(url);
      return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
    } catch (e) { return null; }
  }
  function editable(c) {
    return c.own && c.state !== 'deleted' && typeof c.text === 'string' && Date.now() - Date.parse(c.created_at) < editWindowMs;
  }

  // ---- one widget ----
  function Widget(root) {
    this.root = root;
    this.thread = root.getAttribute('data-afterword-thread') || location.href.split('#')[0];
    this.nodes = {};
    this.next = null;
    this.count = 0;
    root.textContent = '';
    var section = el('section', 'aw');
    section.setAttribute('aria-label', 'Comments');
    this.heading = el('h2', 'aw-count', 'Comments');
    this.status = el('p', 'aw-status');
    this.status.setAttribute('role', 'status');
    this.status.setAttribute('aria-live', 'polite');
    this.list = el('ol', 'aw-list');
    var self = this;
    this.more = button('Load more comments', function () { self.load(); }, 'aw-more');
    this.more.hidden = true;
    section.appendChild(this.heading);
    section.appendChild(this.form(null));
    section.appendChild(this.status);
    section.appendChild(this.list);
    section.appendChild(this.more);
    root.appendChild(section);
    this.load();
  }

  Widget.prototype.say = function (text) { this.status.textContent = text; };

  Widget.prototype.load = function () {
    var self = this, first = !this.loaded;
    var query = '?format=tree&limit=' + pageSize + '&thread=' + encodeURIComponent(this.thread) +
      (site ? '&site=' + encodeURIComponent(site) : '') + (this.next ? '&after=' + encodeURIComponent(this.next) : '');
    this.more.disabled = true;
    this.say(first ? 'Loading comments…' : 'Loading more comments…');
    api('GET', '/api/v1/comments' + query).then(function (data) {
      self.loaded = true;
      self.count = data.thread.count;
      self.showCount();
      self.renderAll(data.comments, self.list, true);
      self.next = data.next || null;
      self.more.hidden = !self.next;
      self.more.disabled = false;
      self.say(first ? '' : 'More comments loaded.');
    }, function (error) {
      self.more.disabled = false;
      self.say(error.message);
    });
  };

  Widget.prototype.showCount = function () {
    this.heading.textContent = this.count === 1 ? '1 comment' : this.count + ' comments';
  };

  // Adds the comments not on the page yet, keeping the visitor's just-posted top-level
  // comments (appended before later pages arrived) at the end.
  Widget.prototype.renderAll = function (comments, container, fromPage) {
    for (var i = 0; i < comments.length; i++) {
      var c = comments[i], node = this.nodes[c.id];
      if (!node) {
        node = this.item(c);
        var before = fromPage && container === this.list ? container.querySelector(':scope > .aw-local') : null;
        container.insertBefore(node, before);
      }
      if (c.replies) this.renderAll(c.replies, node.replies, false);
    }
  };

  Widget.prototype.item = function (c) {
    var li = el('li', 'aw-item');
    li.replies = el('ol', 'aw-replies');
    this.nodes[c.id] = li;
    li.appendChild(this.article(c, li));
    li.appendChild(li.replies);
    return li;
  };

  Widget.prototype.article = function (c, li) {
    var self = this;
    var article = el('article', 'aw-comment' + (c.state === 'deleted' ? ' aw-deleted' : '') + (c.state === 'pending' ? ' aw-pending' : ''));
    article.setAttribute('data-afterword-comment', c.id);
    article.id = 'aw-c-' + c.id;
    li.comment = c;
    var header = el('header', 'aw-meta');
    var name = c.state === 'deleted' ? 'Deleted comment' : (c.author || 'Anonymous');
    var url = c.state === 'deleted' ? null : (c.website && safeUrl(c.website));
    var author;
    if (url) {
      author = el('a', 'aw-author', name);
      author.href = url;
      author.rel = 'nofollow ugc noopener';
    } else {
      author = el('span', 'aw-author', name);
    }
    header.appendChild(author);
    var time = el('time', 'aw-time', new Date(c.created_at).toLocaleString());
    time.dateTime = c.created_at;
    header.appendChild(time);
    if (c.edited_at && c.state !== 'deleted') header.appendChild(el('span', 'aw-edited', '(edited)'));
    if (c.state === 'pending') header.appendChild(el('span', 'aw-badge', 'Awaiting moderation'));
    article.appendChild(header);
    var body = el('div', 'aw-body');
    if (c.state === 'deleted') body.textContent = 'This comment was deleted.';
    else body.innerHTML = c.html; // sanitised by the server
    article.appendChild(body);
    var actions = el('div', 'aw-actions');
    if (c.state !== 'deleted') {
      actions.appendChild(button('Reply', function () { self.reply(li, this); }));
      if (editable(c)) {
        actions.appendChild(button('Edit', function () { self.edit(li, article, body, actions); }));
        actions.appendChild(button('Delete', function () { self.confirmDelete(li, actions, this); }));
      }
    }
    article.appendChild(actions);
    return article;
  };

  Widget.prototype.replace = function (li, c) {
    li.replaceChild(this.article(c, li), li.firstChild);
  };

  // A comment form: the top one (parentId null) or a reply form. One Idempotency-Key per
  // submitted comment: a double click or a retry after a lost response posts once.
  Widget.prototype.form = function (parent, onCancel) {
    var self = this, state = load();
    var form = el('form', 'aw-form');
    var text = field(form, 'textarea', 'text', parent ? 'Your reply (Markdown)' : 'Your comment (Markdown)');
    text.required = true;
    text.rows = parent ? 3 : 4;
    var author = field(form, 'input', 'author', 'Name (optional)', state.author);
    author.autocomplete = 'name';
    var website = field(form, 'input', 'website', 'Website (optional)', state.website);
    website.inputMode = 'url';
    website.autocomplete = 'url';
    var error = el('p', 'aw-error');
    error.setAttribute('role', 'alert');
    var row = el('p', 'aw-buttons');
    var submit = el('button', 'aw-submit', parent ? 'Post reply' : 'Post comment');
    submit.type = 'submit';
    row.appendChild(submit);
    if (onCancel) row.appendChild(button('Cancel', onCancel));
    form.appendChild(error);
    form.appendChild(row);
    var inputs = { text: text, author: author, website: website };
    var key = newKey(), busy = false;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (busy) return;
      busy = true;
      submit.disabled = true;
      error.textContent = '';
      for (var k in inputs) inputs[k].removeAttribute('aria-invalid');
      var siteUrl = website.value.trim();
      if (siteUrl && !/^[a-z][a-z0-9+.-]*:/i.test(siteUrl)) siteUrl = 'https://' + siteUrl;
      var payload = { thread: self.thread, text: text.value, author: author.value.trim() || null, website: siteUrl || null, title: document.title || null };
      if (site) payload.site = site;
      if (parent) payload.parent_id = parent.comment.id;
      self.say(parent ? 'Posting your reply…' : 'Posting your comment…');
      api('POST', '/api/v1/comments', payload, key).then(function (data) {
        key = newKey();
        remember(null, null, { author: payload.author || '', website: siteUrl });
        text.value = '';
        self.added(data.comment, parent);
        if (onCancel) onCancel(true);
      }, function (failed) {
        error.textContent = failed.message;
        self.say('');
        var input = inputs[failed.field];
        if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
      }).then(function () {
        busy = false;
        submit.disabled = false;
      });
    });
    return form;
  };

  Widget.prototype.added = function (c, parent) {
    var li = this.item(c);
    if (parent) {
      parent.replies.appendChild(li);
    } else {
      li.className += ' aw-local';
      this.list.appendChild(li);
    }
    if (c.state === 'published') { this.count += 1; this.showCount(); }
    this.say(c.state === 'pending' ? 'Your comment is awaiting moderation; only you can see it until it is approved.' : 'Your comment was posted.');
    li.firstChild.setAttribute('tabindex', '-1');
    li.firstChild.focus();
  };

  Widget.prototype.reply = function (li, opener) {
    if (li.replyForm) { li.replyForm.querySelector('textarea').focus(); return; }
    var form = this.form(li, function (posted) {
      li.removeChild(form);
      li.replyForm = null;
      if (!posted) opener.focus();
    });
    li.replyForm = form;
    li.insertBefore(form, li.replies);
    form.querySelector('textarea').focus();
  };

  Widget.prototype.edit = function (li, article, body, actions) {
    var self = this, c = li.comment;
    var form = el('form', 'aw-form aw-edit');
    var text = field(form, 'textarea', 'text', 'Edit your comment (Markdown)', c.text);
    text.required = true;
    var error = el('p', 'aw-error');
    error.setAttribute('role', 'alert');
    var row = el('p', 'aw-buttons');
    var save = el('button', 'aw-submit', 'Save');
    save.type = 'submit';
    row.appendChild(save);
    row.appendChild(button('Cancel', function () { self.replace(li, c); }));
    form.appendChild(error);
    form.appendChild(row);
    article.replaceChild(form, body);
    actions.hidden = true;
    text.focus();
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      save.disabled = true;
      api('PATCH', '/api/v1/comments/' + encodeURIComponent(c.id), { text: text.value }).then(function (data) {
        self.replace(li, data.comment);
        self.say('Your comment was updated.');
      }, function (failed) {
        error.textContent = failed.message;
        save.disabled = false;
      });
    });
  };

  Widget.prototype.confirmDelete = function (li, actions, opener) {
    var self = this, c = li.comment;
    var ask = el('span', 'aw-confirm');
    ask.appendChild(el('span', null, 'Delete this comment? '));
    var yes = button('Yes, delete', function () {
      yes.disabled = true;
      api('DELETE', '/api/v1/comments/' + encodeURIComponent(c.id)).then(function (data) {
        if (c.state === 'published') { self.count -= 1; self.showCount(); }
        if (li.replies.children.length) {
          self.replace(li, data.comment);
        } else {
          li.parentNode.removeChild(li);
          delete self.nodes[c.id];
        }
        self.say('Your comment was deleted.');
      }, function (failed) {
        self.say(failed.message);
        self.replace(li, c);
      });
    });
    ask.appendChild(yes);
    ask.appendChild(button('Keep it', function () {
      actions.removeChild(ask);
      opener.hidden = false;
      opener.focus();
    }));
    opener.hidden = true;
    actions.appendChild(ask);
    yes.focus();
  };

  // ---- styles, scoped under .aw; host pages may override them ----
  function addStyles() {
    if (document.getElementById('afterword-styles')) return;
    var style = el('style', null, [
      '.aw{font:inherit;line-height:1.5;max-width:48rem}',
      '.aw-list,.aw-replies{list-style:none;margin:0;padding:0}',
      '.aw-replies{margin-left:1.5rem;border-left:2px solid #ddd;padding-left:.75rem}',
      '.aw-comment{margin:.75rem 0}',
      '.aw-meta{font-size:.9em;color:#555;display:flex;flex-wrap:wrap;gap:.5rem;align-items:baseline}',
      '.aw-author{font-weight:600;color:#222}',
      '.aw-badge{background:#fff3cd;color:#664d03;border-radius:.25rem;padding:0 .4rem}',
      '.aw-deleted .aw-body{color:#777;font-style:italic}',
      '.aw-body p{margin:.25rem 0}',
      '.aw-actions{display:flex;gap:.75rem;font-size:.9em}',
      '.aw-link{background:none;border:0;padding:0;color:#0b57d0;cursor:pointer;font:inherit;text-decoration:underline}',
      '.aw-form{margin:.75rem 0}',
      '.aw-field{margin:.25rem 0;display:flex;flex-direction:column}',
      '.aw-field textarea,.aw-field input{font:inherit;padding:.35rem;max-width:100%}',
      '.aw-error{color:#b3261e;margin:.25rem 0}',
      '.aw-error:empty,.aw-status:empty{display:none}',
      '.aw-submit,.aw-more{font:inherit;padding:.35rem .9rem;cursor:pointer}',
      '.aw :focus-visible{outline:2px solid #0b57d0;outline-offset:2px}'
    ].join('\n'));
    style.id = 'afterword-styles';
    document.head.appendChild(style);
  }

  function mount(root) {
    if (root.afterword) return root.afterword;
    addStyles();
    root.afterword = new Widget(root);
    return root.afterword;
  }
  function mountAll() {
    var roots = document.querySelectorAll('[data-afterword-thread]');
    for (var i = 0; i < roots.length; i++) mount(roots[i]);
  }
  window.Afterword = { mount: mount };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mountAll);
  else mountAll();
})();

/* Afterword demo page logic (served with demo.html at /): without ?thread= it lists the site's
 * threads from GET /api/v1/threads, a page at a time (?limit=N sets the page size); with
 * ?thread=KEY it mounts the embed widget on that thread, loading embed.js the way a host page
 * would. Same origin as the API, so no CORS is involved. */
(function () {
  'use strict';
  var me = document.currentScript;
  var params = new URLSearchParams(location.search);
  var thread = params.get('thread');
  var site = params.get('site');

  function el(tag, text) {
    var node = document.createElement(tag);
    if (text != null) node.textContent = text;
    return node;
  }
  function link(key, label) {
    var a = el('a', label);
    var query = new URLSearchParams({ thread: key });
    if (site) query.set('site', site);
    a.href = '/?' + query.toString();
    return a;
  }
  function opener(main) {
    var form = el('form');
    var label = el('label', 'Open or start a thread by key ');
    var input = el('input');
    input.name = 'thread';
    input.required = true;
    input.placeholder = '/blog/my-post';
    label.appendChild(input);
    var go = el('button', 'Open');
    go.type = 'submit';
    form.appendChild(label);
    form.appendChild(go);
    if (site) {
      var hidden = el('input');
      hidden.type = 'hidden';
      hidden.name = 'site';
      hidden.value = site;
      form.appendChild(hidden);
    }
    form.action = '/';
    main.appendChild(form);
  }

  // The API's page size, if the page was opened with ?limit=N (the server checks it).
  var pageLimit = params.get('limit');

  function threadsUrl(after) {
    var query = new URLSearchParams();
    if (site) query.set('site', site);
    if (pageLimit) query.set('limit', pageLimit);
    if (after) query.set('after', after);
    var text = query.toString();
    return '/api/v1/threads' + (text ? '?' + text : '');
  }
  function fetchThreads(after) {
    return fetch(threadsUrl(after), { cache: 'no-store' })
      .then(function (res) { return res.json().then(function (data) { if (!res.ok) throw data; return data; }); });
  }
  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many);
  }
  function threadItem(t) {
    var item = el('li');
    item.appendChild(link(t.key, t.title || t.key));
    item.appendChild(el('span', ' '));
    var count = el('span', '(' + plural(t.count, 'comment', 'comments') + ')');
    count.className = 'count';
    item.appendChild(count);
    return item;
  }
  function failure(failed) {
    return 'Could not load the threads: ' + ((failed && failed.error && failed.error.message) || 'the server did not answer') + '.';
  }

  // The API hands out a page at a time and never a total, so the status says how many are
  // shown and whether more follow, not how many there are.
  function showThreads(main) {
    var heading = el('h2', 'Threads');
    var status = el('p', 'Loading threads…');
    status.setAttribute('role', 'status');
    main.appendChild(heading);
    main.appendChild(status);
    var list = el('ul');
    list.className = 'threads';
    var more = el('button', 'Load more threads');
    more.type = 'button';
    more.hidden = true;
    var shown = 0;
    var next = null;

    function append(data) {
      var first = null;
      data.threads.forEach(function (t) {
        var item = threadItem(t);
        first = first || item;
        list.appendChild(item);
      });
      shown += data.threads.length;
      next = data.next || null;
      more.hidden = !next;
      status.textContent = shown
        ? 'Most recently commented first. Showing ' + plural(shown, 'thread', 'threads') + (next ? '; there are more.' : '.')
        : 'No threads yet.';
      return first;
    }
    more.addEventListener('click', function () {
      more.disabled = true;
      fetchThreads(next).then(function (data) {
        // Keyboard users go on from the first new thread, or the last one if the button went.
        var target = append(data) || (more.hidden && list.lastElementChild);
        if (target) target.querySelector('a').focus();
      }, function (failed) {
        status.textContent = failure(failed);
      }).then(function () { more.disabled = false; });
    });

    fetchThreads(null).then(function (data) {
      append(data);
      main.appendChild(list);
      main.appendChild(more);
      opener(main);
    }, function (failed) {
      status.textContent = failure(failed);
      opener(main);
    });
  }

  function showThread(main) {
    var back = el('p');
    var all = el('a', '← All threads');
    all.href = site ? '/?site=' + encodeURIComponent(site) : '/';
    back.appendChild(all);
    main.appendChild(back);
    main.appendChild(el('h2', thread));
    var root = el('div');
    root.setAttribute('data-afterword-thread', thread);
    main.appendChild(root);
    // Loaded after the container exists, as a host page's async script tag would find it.
    var embed = el('script');
    embed.src = me.getAttribute('data-embed-src');
    embed.async = true;
    if (site) embed.setAttribute('data-afterword-site', site);
    document.body.appendChild(embed);
  }

  function start() {
    var main = document.getElementById('demo');
    if (thread) showThread(main);
    else showThreads(main);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();

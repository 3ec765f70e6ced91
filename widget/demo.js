/* Afterword demo page logic (served with demo.html at /): without ?thread= it lists the site's
 * threads from GET /api/v1/threads; with ?thread=KEY it mounts the embed widget on that thread,
 * loading embed.js the way a host page would. Same origin as the API, so no CORS is involved. */
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

  function showThreads(main) {
    var heading = el('h2', 'Threads');
    var status = el('p', 'Loading threads…');
    status.setAttribute('role', 'status');
    main.appendChild(heading);
    main.appendChild(status);
    fetch('/api/v1/threads' + (site ? '?site=' + encodeURIComponent(site) : ''), { cache: 'no-store' })
      .then(function (res) { return res.json().then(function (data) { if (!res.ok) throw data; return data; }); })
      .then(function (data) {
        status.textContent = data.threads.length ? data.threads.length + ' threads, most recently commented first.' : 'No threads yet.';
        var list = el('ul');
        list.className = 'threads';
        data.threads.forEach(function (t) {
          var item = el('li');
          item.appendChild(link(t.key, t.title || t.key));
          item.appendChild(el('span', ' '));
          var count = el('span', '(' + t.count + (t.count === 1 ? ' comment)' : ' comments)'));
          count.className = 'count';
          item.appendChild(count);
          list.appendChild(item);
        });
        main.appendChild(list);
        opener(main);
      }, function (failed) {
        status.textContent = 'Could not load the threads: ' + ((failed && failed.error && failed.error.message) || 'the server did not answer') + '.';
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

// Live conversations: progressive enhancement over the plain pages.
// Without this script every page works with plain forms and reloads.
// With it, the conversation page follows the WebSocket (/conversations/ws):
// it applies the same events, the same way, as conversations/events.py
// (apply_event), and sends messages with fetch so the page does not reload.
(function () {
  "use strict";

  function wsUrl(value) {
    // url_for gives ws://host/path for WebSocket routes: keep the path, use the page's host.
    var url = new URL(value, window.location.href);
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + url.pathname + url.search;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function formatTime(iso) {
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: "short", timeStyle: "short" })
        .format(new Date(iso));
    } catch (e) { return iso; }
  }

  function ConversationPage(root) {
    this.root = root;
    this.d = root.dataset;
    this.me = parseInt(this.d.me, 10);
    this.list = document.getElementById("messages");
    this.status = document.getElementById("live-status");
    this.form = document.getElementById("message-form");
    this.lastRead = 0;
    this.connect(0);
    if (this.form) { this.form.addEventListener("submit", this.send.bind(this)); }
  }

  ConversationPage.prototype.url = function (template, id, extra) {
    return template.replace(/\/0(\/|$)/, "/" + id + "$1") + (extra || "");
  };

  ConversationPage.prototype.connect = function (attempt) {
    var self = this;
    var socket = new WebSocket(wsUrl(this.d.live));
    this.socket = socket;
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      self.apply(event);
    };
    socket.onclose = function (closing) {
      if (self.closed) { return; }
      // 4401: the session ended (signed out elsewhere, deactivated): the reload shows the sign-in page.
      if (closing.code === 4401) { self.closed = true; window.location.reload(); return; }
      // Reconnect with a back-off; the hello carries the full state again.
      setTimeout(function () { self.connect(attempt + 1); }, Math.min(30000, 500 * Math.pow(2, attempt)));
    };
  };

  ConversationPage.prototype.announce = function (text) {
    if (this.status) { this.status.textContent = text; }
  };

  ConversationPage.prototype.renderMessage = function (m) {
    var li = document.getElementById("m-" + m.id);
    var fresh = !li;
    if (fresh) { li = el("li", { id: "m-" + m.id, "data-message": String(m.id) }); }
    li.className = "message" + (m.author_id === this.me ? " mine" : "") + (m.removed ? " removed" : "");
    li.textContent = "";
    var meta = el("p", { "class": "meta" });
    meta.appendChild(el("span", { "class": "author" }, m.author_name));
    meta.appendChild(document.createTextNode(" · "));
    meta.appendChild(el("time", { datetime: m.created_at }, formatTime(m.created_at)));
    if (m.edited_at && !m.removed) {
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(el("span", { "class": "edited" }, this.d.textEdited));
    }
    li.appendChild(meta);
    if (m.removed) {
      li.appendChild(el("p", { "class": "body removed-note" }, this.d.textRemoved));
    } else {
      if (m.body) { li.appendChild(el("p", { "class": "body" }, m.body)); }
      if (m.attachments && m.attachments.length) {
        var ul = el("ul", { "class": "attachments" });
        var self = this;
        m.attachments.forEach(function (a) {
          var item = el("li", { "data-attachment": String(a.id) });
          item.appendChild(el("a", { href: self.url(self.d.downloadUrl, a.id), download: "" }, a.filename));
          item.appendChild(document.createTextNode(" (" + (a.size / 1024).toFixed(1) + " KB) "));
          if (self.d.canRemove === "1") {
            item.appendChild(el("a", { "class": "remove", href: self.url(self.d.removeUrl, m.id, "?attachment=" + a.id) },
              self.d.textRemove));
          }
          ul.appendChild(item);
        });
        li.appendChild(ul);
      }
      var actions = el("p", { "class": "message-actions" });
      if (this.d.isManager === "1") {
        actions.appendChild(el("a", { href: this.url(this.d.editUrl, m.id) }, this.d.textEdit));
        actions.appendChild(document.createTextNode(" "));
      }
      if (this.d.canRemove === "1") {
        actions.appendChild(el("a", { "class": "remove", href: this.url(this.d.removeUrl, m.id) }, this.d.textRemove));
      }
      li.appendChild(actions);
    }
    if (fresh) {
      this.list.appendChild(li);
      var empty = document.getElementById("no-messages");
      if (empty) { empty.remove(); }
    }
    return li;
  };

  ConversationPage.prototype.markRead = function (id) {
    if (id <= this.lastRead || document.hidden || !this.socket || this.socket.readyState !== 1) { return; }
    this.lastRead = id;
    this.socket.send(JSON.stringify({ type: "read", message_id: id }));
  };

  ConversationPage.prototype.renderParticipants = function () {
    var ul = document.getElementById("participants");
    if (!ul || !this.state) { return; }
    ul.textContent = "";
    var state = this.state;
    Object.keys(state.participants).forEach(function (key) {
      var p = state.participants[key];
      if (!p.active) { return; }
      ul.appendChild(el("li", { "data-account": String(p.id) }, p.name));
    });
  };

  ConversationPage.prototype.apply = function (event) {
    var self = this;
    if (event.event === "hello") {
      this.state = event.state;
      Object.keys(this.state.messages).forEach(function (key) { self.renderMessage(self.state.messages[key]); });
      this.renderParticipants();
      this.root.setAttribute("data-live-ready", "1");
      return;
    }
    if (!this.state) { return; }
    var messages = this.state.messages;
    switch (event.event) {
      case "message.posted":
        if (!messages[event.message_id]) {
          messages[event.message_id] = {
            id: event.message_id, author_id: event.author_id, author_name: event.author_name, body: event.body,
            created_at: event.created_at, edited_at: null, removed: false, attachments: event.attachments
          };
          this.renderMessage(messages[event.message_id]);
          var author = this.state.participants[event.author_id];
          if (author) { author.last_read_id = Math.max(author.last_read_id, event.message_id); }
          if (event.author_id !== this.me) { this.announce(event.author_name + ": " + event.body); }
          this.markRead(event.message_id);
        }
        break;
      case "message.edited":
        if (messages[event.message_id] && !messages[event.message_id].removed) {
          messages[event.message_id].body = event.body;
          messages[event.message_id].edited_at = event.edited_at;
          this.renderMessage(messages[event.message_id]);
        }
        break;
      case "message.removed":
        if (messages[event.message_id]) {
          var m = messages[event.message_id];
          if (event.attachment_id === null) {
            m.body = ""; m.removed = true; m.attachments = [];
            this.announce(this.d.textRemoved);
          } else {
            m.attachments = m.attachments.filter(function (a) { return a.id !== event.attachment_id; });
          }
          this.renderMessage(m);
        }
        break;
      case "participant.joined":
        this.state.participants[event.account_id] = {
          id: event.account_id, name: event.account_name, role: event.role, active: true,
          last_read_id: (this.state.participants[event.account_id] || {}).last_read_id || 0
        };
        this.renderParticipants();
        this.announce(this.d.textJoined.replace("{name}", event.account_name));
        break;
      case "participant.left":
        if (this.state.participants[event.account_id]) {
          this.state.participants[event.account_id].active = false;
          this.announce(this.d.textGone.replace("{name}", this.state.participants[event.account_id].name));
        }
        this.renderParticipants();
        if (event.account_id === this.me && this.form) {
          this.form.replaceWith(el("p", { "class": "notice" }, this.d.textLeft));
          this.form = null;
        }
        break;
      case "conversation.subject_changed":
        this.state.subject = event.subject;
        document.getElementById("subject").textContent = event.subject;
        document.title = event.subject + " · Lotse";
        break;
      case "conversation.manager_changed":
        this.state.manager_id = event.manager_id;
        break;
      case "conversation.read":
        var person = this.state.participants[event.account_id];
        if (person) { person.last_read_id = Math.max(person.last_read_id, event.last_read_id); }
        break;
      case "conversation.deleted":
        this.closed = true;
        this.announce(this.d.textDeleted);
        break;
    }
  };

  ConversationPage.prototype.send = function (submit) {
    var form = this.form;
    if (!window.fetch || !window.FormData) { return; }
    submit.preventDefault();
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    var self = this;
    fetch(form.action, { method: "POST", body: new FormData(form), headers: { Accept: "application/json" },
                         credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        button.disabled = false;
        var old = form.querySelector(".form-error");
        if (old) { old.remove(); }
        if (result.ok) {
          form.reset();
          return;
        }
        var box = el("div", { "class": "form-error", role: "alert" });
        box.appendChild(el("p", {}, result.body.message));
        Object.keys(result.body.fields || {}).forEach(function (name) {
          box.appendChild(el("p", {}, result.body.fields[name]));
        });
        form.insertBefore(box, form.firstChild);
      })
      .catch(function () {
        button.disabled = false;
        form.submit();  // fall back to the plain form
      });
  };

  function ListPage(root) {
    // New messages elsewhere: a reload shows the fresh unread counts (rare, and always correct).
    var socket = new WebSocket(wsUrl(root.dataset.live));
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      if (event.event === "message.posted" || event.event === "account.conversation_added" ||
          event.event === "message.removed") {
        root.setAttribute("data-stale", "1");
        window.location.reload();
      }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var conversation = document.getElementById("conversation");
    if (conversation && window.WebSocket) { new ConversationPage(conversation); }
    var list = document.getElementById("conversation-list");
    if (list && window.WebSocket) { new ListPage(list); }
  });
})();

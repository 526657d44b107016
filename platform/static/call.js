/* Video calls in the browser: the call page, the pre-call check, and the
 * "join call" button on a conversation page.
 *
 * The call: one RTCPeerConnection to the media unit, offered once with
 * BUNDLE: our senders (microphone, camera, and a screen-share sender without
 * a track until sharing starts), then cap-1 audio and cap video receive-only
 * transceivers ("slots"). The server points slots at other participants'
 * streams and says so in "slots" messages; we only move tracks between
 * elements, never renegotiate. Signalling is JSON over the platform's
 * WebSocket /calls/<id>/ws (schema in media/room.py). No inline script: CSP.
 */
(function () {
  "use strict";

  function wsUrl(value) { // url_for gives ws://host/path for WebSocket routes: keep the path only
    var url = new URL(value, location.href);
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + url.pathname + url.search;
  }

  function supported() {
    return !!(window.RTCPeerConnection && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  async function getMedia() {
    try {
      return { stream: await navigator.mediaDevices.getUserMedia({ audio: true, video: true }), error: null };
    } catch (error) {
      try { // a camera may be missing while a microphone works
        return { stream: await navigator.mediaDevices.getUserMedia({ audio: true }), error: error };
      } catch (second) {
        return { stream: null, error: error };
      }
    }
  }

  function showDenied(error) {
    var box = document.getElementById("media-denied");
    if (box && error && (error.name === "NotAllowedError" || error.name === "SecurityError" ||
                         error.name === "NotReadableError" || error.name === "NotFoundError")) {
      box.hidden = false;
    }
  }

  function waitForIce(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      var timer = setTimeout(resolve, 5000);
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  function format(template, name) { return template.replace("{name}", name); }

  /* ---------------------------------------------------------------- call */
  function startCall(root) {
    if (!supported()) { location.href = root.dataset.unsupportedUrl; return; }
    var cap = parseInt(root.dataset.cap, 10);
    var me = root.dataset.me;
    var t = root.dataset;
    var labels = document.getElementById("text-labels").dataset;
    var status = document.getElementById("call-status");
    var errorBox = document.getElementById("call-error");
    var tiles = document.getElementById("tiles");
    var peopleList = document.getElementById("people");
    var screenBox = document.getElementById("screen-share");
    var screenVideo = document.getElementById("screen-video");
    var micButton = document.getElementById("toggle-mic");
    var camButton = document.getElementById("toggle-camera");
    var screenButton = document.getElementById("toggle-screen");
    var call = { pc: null, ws: null, people: {}, names: {}, slots: {}, startedAt: null, ended: false };
    window.lotseCall = call;
    var audioTrack = null, videoTrack = null, screenTrack = null;
    var senders = {};
    var nextId = 1;

    function send(message) {
      message.id = nextId++;
      if (call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify(message));
    }

    function fail(text) { errorBox.textContent = text; errorBox.hidden = false; }

    function person(id) {
      if (!call.people[id]) call.people[id] = { id: id, microphone: true, camera: true, screen_share: false };
      return call.people[id];
    }

    function renderPeople() {
      peopleList.textContent = "";
      Object.keys(call.people).forEach(function (id) {
        var p = call.people[id];
        var li = document.createElement("li");
        li.dataset.participant = id;
        li.className = p.microphone ? "mic-on" : "mic-off";
        var icon = document.createElement("span");
        icon.className = "mic-icon";
        icon.setAttribute("aria-hidden", "true");
        icon.textContent = p.microphone ? "\u{1F3A4}" : "\u{1F507}";
        var name = document.createElement("span");
        name.className = "person-name";
        name.textContent = (call.names[id] || "?") + (id === me ? " (" + t.textYou + ")" : "");
        var state = document.createElement("span");
        state.className = "mic-state";
        state.textContent = p.microphone ? t.textMicOn : t.textMicOff;
        li.append(icon, " ", name, " \u2013 ", state);
        if (!p.camera) {
          var cam = document.createElement("span");
          cam.className = "cam-state";
          cam.textContent = ", " + t.textCamOff;
          li.append(cam);
        }
        peopleList.append(li);
      });
    }

    function tileFor(id) {
      var tile = document.getElementById("tile-" + id);
      if (!tile) {
        tile = document.createElement("li");
        tile.className = "tile";
        tile.id = "tile-" + id;
        var video = document.createElement("video");
        video.autoplay = true; video.playsInline = true; video.muted = true;
        video.setAttribute("aria-label", call.names[id] || "");
        var audio = document.createElement("audio");
        audio.autoplay = true;
        var label = document.createElement("span");
        label.className = "tile-name";
        label.textContent = call.names[id] || "?";
        tile.append(video, audio, label);
        tiles.append(tile);
      }
      return tile;
    }

    function trackOf(mid) {
      var found = call.pc.getTransceivers().find(function (tr) { return tr.mid === mid; });
      return found ? found.receiver.track : null;
    }

    function setStream(element, track) {
      var current = element.srcObject ? element.srcObject.getTracks()[0] : null;
      if (current === track) return;
      element.srcObject = track ? new MediaStream([track]) : null;
      if (track) element.play().catch(function () { /* sound waits for a click, see below */ });
    }

    function applySlots(slots) {
      var byParticipant = {};
      var screen = null;
      slots.forEach(function (slot) {
        if (!slot.participant) return;
        if (slot.source === "screen") { screen = slot; return; }
        byParticipant[slot.participant] = byParticipant[slot.participant] || {};
        byParticipant[slot.participant][slot.source] = trackOf(slot.mid);
      });
      Object.keys(call.people).forEach(function (id) {
        if (id === me) return;
        var tile = tileFor(id);
        var tracks = byParticipant[id] || {};
        setStream(tile.querySelector("video"), tracks.camera || null);
        setStream(tile.querySelector("audio"), tracks.microphone || null);
        tile.classList.toggle("camera-off", !person(id).camera);
      });
      if (screen) {
        screenBox.hidden = false;
        document.getElementById("screen-share-label").textContent = format(t.textScreen, call.names[screen.participant] || "?");
        setStream(screenVideo, trackOf(screen.mid));
      } else {
        screenBox.hidden = true;
        setStream(screenVideo, null);
      }
      call.slots = slots;
    }

    function removeTile(id) {
      var tile = document.getElementById("tile-" + id);
      if (tile) tile.remove();
    }

    function tick() {
      if (!call.startedAt || call.ended) return;
      var seconds = Math.max(0, Math.floor((Date.now() - call.startedAt) / 1000));
      var h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
      var text = (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(s).padStart(2, "0");
      var clock = document.getElementById("call-clock");
      clock.textContent = text;
      clock.setAttribute("datetime", "PT" + seconds + "S");
    }

    function ended(text) {
      call.ended = true;
      status.textContent = text;
      if (call.pc) call.pc.close();
      [audioTrack, videoTrack, screenTrack].forEach(function (track) { if (track) track.stop(); });
      document.querySelectorAll(".call-controls button:not(#leave)").forEach(function (b) { b.disabled = true; });
    }

    function onMessage(message) {
      switch (message.type) {
        case "joined":
          call.names = message.names || {};
          call.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
          (message.room.participants || []).forEach(function (p) { call.people[p.id] = p; });
          call.startedAt = message.room.started_at ? Date.parse(message.room.started_at) : Date.now();
          status.textContent = t.textConnected;
          renderPeople();
          applySlots(message.slots);
          break;
        case "participant_joined":
          call.people[message.participant.id] = message.participant;
          call.names[message.participant.id] = message.participant.name;
          status.textContent = format(t.textJoined, message.participant.name);
          renderPeople();
          applySlots(call.slots);
          break;
        case "participant_left":
          status.textContent = format(t.textLeft, call.names[message.participant] || "?");
          delete call.people[message.participant];
          removeTile(message.participant);
          renderPeople();
          break;
        case "media_state":
          person(message.participant).microphone = message.microphone;
          person(message.participant).camera = message.camera;
          renderPeople();
          applySlots(call.slots);
          break;
        case "screen_share":
          person(message.participant).screen_share = message.on;
          break;
        case "slots":
          applySlots(message.slots);
          break;
        case "room_closed":
          ended(t.textEnded);
          break;
        case "session_ended":
          fail(message.message);
          ended(message.message);
          break;
        case "error":
          fail(message.message);
          if (message.code === "call_full" || message.code === "call_ended" || message.code === "video_calls_off") {
            ended(message.message);
          }
          break;
        default:
          break;
      }
    }

    function toggleMicrophone() {
      var on = !person(me).microphone;
      if (audioTrack) audioTrack.enabled = on;
      person(me).microphone = on;
      micButton.setAttribute("aria-pressed", String(!on));
      micButton.textContent = on ? labels.mute : labels.unmute;
      send({ type: "media", microphone: on });
      renderPeople();
    }

    function toggleCamera() {
      var on = !person(me).camera;
      if (videoTrack) videoTrack.enabled = on;
      person(me).camera = on;
      camButton.setAttribute("aria-pressed", String(!on));
      camButton.textContent = on ? labels.camOff : labels.camOn;
      document.getElementById("tile-me").classList.toggle("camera-off", !on);
      send({ type: "media", camera: on });
      renderPeople();
    }

    async function stopSharing() {
      if (!screenTrack) return;
      screenTrack.stop();
      screenTrack = null;
      await senders.screen.replaceTrack(null);
      screenButton.setAttribute("aria-pressed", "false");
      screenButton.textContent = labels.share;
      send({ type: "screen_share", on: false });
    }

    async function toggleScreen() {
      if (screenTrack) { await stopSharing(); return; }
      try {
        var stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
        screenTrack = stream.getVideoTracks()[0];
      } catch (error) {
        return; // the person chose not to share
      }
      screenTrack.addEventListener("ended", stopSharing);
      await senders.screen.replaceTrack(screenTrack);
      screenButton.setAttribute("aria-pressed", "true");
      screenButton.textContent = labels.unshare;
      send({ type: "screen_share", on: true });
    }

    function fullScreen() {
      var stage = document.getElementById("call-stage");
      if (document.fullscreenElement) document.exitFullscreen();
      else if (stage.requestFullscreen) stage.requestFullscreen();
    }

    // Sound may only start after a click in some browsers: any click retries it.
    document.addEventListener("click", function () {
      document.querySelectorAll("#tiles audio").forEach(function (a) { if (a.srcObject && a.paused) a.play().catch(function () {}); });
    });

    micButton.addEventListener("click", toggleMicrophone);
    camButton.addEventListener("click", toggleCamera);
    screenButton.addEventListener("click", toggleScreen);
    document.getElementById("toggle-fullscreen").addEventListener("click", fullScreen);
    document.getElementById("leave-form").addEventListener("submit", function () {
      send({ type: "leave" });
      ended(t.textEnded);
    });
    setInterval(tick, 1000);

    (async function join() {
      status.textContent = t.textConnecting;
      var media = await getMedia();
      if (media.error) showDenied(media.error);
      if (media.stream) {
        audioTrack = media.stream.getAudioTracks()[0] || null;
        videoTrack = media.stream.getVideoTracks()[0] || null;
        if (videoTrack) document.getElementById("my-video").srcObject = new MediaStream([videoTrack]);
      }
      var pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", iceServers: [] });
      call.pc = pc;
      var mic = pc.addTransceiver(audioTrack || "audio", { direction: "sendonly" });
      var cam = pc.addTransceiver(videoTrack || "video", { direction: "sendonly" });
      var scr = pc.addTransceiver("video", { direction: "sendonly" });
      senders = { microphone: mic.sender, camera: cam.sender, screen: scr.sender };
      for (var i = 0; i < cap - 1; i++) pc.addTransceiver("audio", { direction: "recvonly" });
      for (var j = 0; j < cap; j++) pc.addTransceiver("video", { direction: "recvonly" });
      pc.addEventListener("connectionstatechange", function () {
        if (pc.connectionState === "failed" && !call.ended) fail(t.textFailed);
      });
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIce(pc);
      person(me).microphone = !!audioTrack;
      person(me).camera = !!videoTrack;
      call.names[me] = t.myName;
      micButton.textContent = audioTrack ? labels.mute : labels.unmute;
      micButton.setAttribute("aria-pressed", String(!audioTrack));
      camButton.textContent = videoTrack ? labels.camOff : labels.camOn;
      camButton.setAttribute("aria-pressed", String(!videoTrack));
      var ws = new WebSocket(wsUrl(root.dataset.signalling));
      call.ws = ws;
      ws.addEventListener("message", function (event) { onMessage(JSON.parse(event.data)); });
      ws.addEventListener("close", function () { if (!call.ended) fail(t.textFailed); });
      ws.addEventListener("open", function () {
        send({
          type: "join", sdp: pc.localDescription.sdp,
          senders: { microphone: mic.mid, camera: cam.mid, screen: scr.mid },
          microphone: !!audioTrack, camera: !!videoTrack,
        });
      });
    })();
  }

  /* ------------------------------------------------------- pre-call check */
  function startCheck(root) {
    if (!supported()) { location.href = root.dataset.unsupportedUrl; return; }
    var stream = null;

    function mark(id, ok, text) {
      var item = document.getElementById(id);
      item.textContent = text || (ok ? item.dataset.ok : item.dataset.fail);
      item.className = ok ? "ok" : "fail";
    }

    async function run() {
      if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
      document.getElementById("media-denied").hidden = true;
      var media = await getMedia();
      stream = media.stream;
      if (media.error) showDenied(media.error);
      var video = stream && stream.getVideoTracks()[0];
      var audio = stream && stream.getAudioTracks()[0];
      var preview = document.getElementById("precall-preview");
      if (video) {
        preview.srcObject = new MediaStream([video]);
        preview.addEventListener("loadeddata", function () { mark("check-camera", preview.videoWidth > 0); }, { once: true });
      } else {
        mark("check-camera", false);
      }
      if (audio) {
        var context = new AudioContext();
        var analyser = context.createAnalyser();
        context.createMediaStreamSource(new MediaStream([audio])).connect(analyser);
        var data = new Uint8Array(analyser.fftSize);
        var heard = false, started = Date.now();
        var item = document.getElementById("check-microphone");
        item.textContent = item.dataset.waiting;
        (function listen() {
          analyser.getByteTimeDomainData(data);
          var peak = 0;
          for (var i = 0; i < data.length; i++) peak = Math.max(peak, Math.abs(data[i] - 128) / 128);
          document.getElementById("microphone-level").value = peak;
          if (peak > 0.02 && !heard) { heard = true; mark("check-microphone", true); }
          if (!heard && Date.now() - started > 8000) { mark("check-microphone", false); return; }
          if (Date.now() - started < 15000) requestAnimationFrame(listen);
        })();
      } else {
        mark("check-microphone", false);
      }
      var pc = new RTCPeerConnection({ iceServers: [] });
      pc.addTransceiver("audio", { direction: "recvonly" });
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIce(pc);
      var candidates = (pc.localDescription.sdp.match(/a=candidate/g) || []).length;
      pc.close();
      var reachable = false;
      try { reachable = (await fetch(location.href, { method: "HEAD", credentials: "same-origin" })).ok; } catch (e) { reachable = false; }
      mark("check-connection", candidates > 0 && reachable);
    }

    document.getElementById("precall-retry").addEventListener("click", run);
    document.getElementById("precall-join").addEventListener("click", function () {
      if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    });
    run();
  }

  /* ------------------------------------------- the conversation page's button */
  function startBanner(root) {
    var joinBox = document.getElementById("call-join");
    var link = document.getElementById("call-join-link");
    var startForm = document.getElementById("call-start");
    var state = document.getElementById("call-state");

    function running(callId) {
      link.href = root.dataset.checkUrl.replace("/0/", "/" + callId + "/");
      joinBox.hidden = false;
      if (startForm) startForm.hidden = true;
      state.textContent = root.dataset.textRunning;
    }

    function stopped() {
      joinBox.hidden = true;
      if (startForm) startForm.hidden = false;
      state.textContent = root.dataset.textNone;
    }

    function connect() {
      var ws = new WebSocket(wsUrl(root.dataset.live));
      ws.addEventListener("message", function (event) {
        var data = JSON.parse(event.data);
        if (data.event === "call.started" || data.event === "call.invited") running(data.call_id);
        if (data.event === "call.invited") state.textContent = root.dataset.textInvited.replace("{name}", data.invited_by_name);
        if (data.event === "call.ended") stopped();
      });
      ws.addEventListener("close", function (event) { if (event.code !== 1000) setTimeout(connect, 5000); });
    }
    connect();
  }

  function boot() {
    var call = document.getElementById("call");
    if (call) startCall(call);
    var check = document.getElementById("precall");
    if (check) startCheck(check);
    var banner = document.getElementById("call-banner");
    if (banner) startBanner(banner);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();

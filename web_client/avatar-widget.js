// The talking-avatar client (ASCII only, with \u escapes: host pages may not declare UTF-8). One script, two ways to use it:
//
//   On any website (a floating button that opens the call):
//     <script src="https://AGENT/client/avatar-widget.js" data-server="https://AGENT" data-tenant="demo" async></script>
//
//   As a whole page (the agent's own page at /):
//     <div id="avatar-widget"></div>
//     <script src="/client/avatar-widget.js" data-mode="inline" data-target="#avatar-widget"></script>
//
// Attributes: data-server (default: where this script came from), data-tenant (default "demo"),
// data-title, data-mode ("floating" | "inline"), data-target (inline only), data-ice-transport-policy
// ("all" | "relay": media only through the TURN servers /api/ice-servers hands out, for strict networks).
// Where the tenant's avatar is drawn in the page (render.where: browser or auto), the widget loads
// avatar-face.js (three.js, served by the agent) and the avatar before calling, says in its offer that it
// can draw it, and draws it from the poses the agent sends; if it cannot, the agent sends video instead.
// Every server event is also pushed to window.avatarEvents and dispatched as an "avatar-event" DOM event.
(function () {
  "use strict";
  const script = document.currentScript || document.querySelector('script[src*="avatar-widget.js"]');
  const opts = script ? script.dataset : {};
  const server = (opts.server || (script && script.src ? new URL(script.src, location.href).origin : "")).replace(/\/$/, "");
  const query = new URLSearchParams(location.search);
  // The agent's own page (inline, no data-tenant) takes ?tenant= and, for tests, ?readable=1 (the canvas can be read back).
  const tenant = opts.tenant || (opts.mode === "inline" && query.get("tenant")) || "demo";
  const readable = opts.readable === "true" || (opts.mode === "inline" && query.get("readable") === "1");
  const mode = opts.mode === "inline" ? "inline" : "floating";
  const title = opts.title || "Talk to our support assistant";
  const iceTransportPolicy = opts.iceTransportPolicy === "relay" ? "relay" : "all";
  const api = (path) => `${server}${path}${path.includes("?") ? "&" : "?"}tenant=${encodeURIComponent(tenant)}`;

  const MIC_ERRORS = {
    NotAllowedError: "Microphone permission was denied. Allow the microphone in your browser's address bar, then press Call again.",
    NotFoundError: "No microphone was found. Plug one in and press Call again.",
    NotReadableError: "The microphone is in use by another application.",
    OverconstrainedError: "The microphone does not support the required settings.",
    SecurityError: "The microphone can only be used on a secure (https) page.",
  };
  const HTTP_ERRORS = {
    403: "This website is not allowed to use this assistant.",
    404: "This assistant is not configured for this website.",
    413: "The request was too large for the assistant.",
    429: "Too many calls from this network right now. Please wait a minute and call again.",
    503: "All our agents are busy right now. Please try again in a minute.",
  };
  // Why the server ended a call ({"type": "ended", "reason"}), in the customer's words.
  const ENDED = {
    not_connected: "The call could not connect. Your network may block it; press Call to try again.",
    too_long: "The call reached its time limit. Press Call to call again.",
    idle: "The call ended because nothing was said for a while. Press Call to call again.",
    draining: "The assistant is restarting and will be back in a moment. Press Call to call again.",
  };

  const CSS = `
    :host, .aw-root { all: initial; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; }
    .aw-root { display: block; }
    .aw-launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; padding: 14px 20px; border-radius: 28px;
      border: 0; background: #2a5db0; color: #fff; font: 600 1rem system-ui, sans-serif; cursor: pointer; box-shadow: 0 6px 20px rgba(0,0,0,.25); }
    .aw-panel { box-sizing: border-box; background: #f3f5f9; display: flex; flex-direction: column; gap: 10px; padding: 14px; }
    .aw-floating .aw-panel { position: fixed; right: 20px; bottom: 84px; z-index: 2147483000; width: 380px; max-height: calc(100vh - 110px);
      border-radius: 16px; box-shadow: 0 12px 40px rgba(0,0,0,.3); overflow: auto; }
    .aw-inline .aw-panel { max-width: 560px; margin: 0 auto; }
    .aw-panel[hidden] { display: none; }
    .aw-head { display: flex; align-items: center; justify-content: space-between; }
    .aw-head h1 { font-size: 1.1rem; margin: 0; }
    .aw-close { background: none; color: #1d2330; font-size: 1.4rem; padding: 0 6px; }
    .aw-inline .aw-close { display: none; }
    .aw-stage { position: relative; background: #dfe6f0; border-radius: 12px; overflow: hidden; aspect-ratio: 1; }
    video, canvas { width: 100%; height: 100%; object-fit: cover; display: block; }
    canvas[hidden], video[hidden] { display: none; }
    .status { position: absolute; left: 0; right: 0; bottom: 0; padding: 8px 12px; background: rgba(20,28,40,.65); color: #fff; font-size: .9rem; }
    .status.error { background: #b3261e; }
    .aw-controls, .ask { display: flex; gap: 8px; }
    .ask input { flex: 1; min-width: 0; padding: 8px; border-radius: 8px; border: 1px solid #b8c2d0; font-size: 1rem; }
    button { padding: 8px 16px; border-radius: 8px; border: 0; background: #2a5db0; color: #fff; font-size: 1rem; cursor: pointer; }
    button:disabled { background: #9aa6b8; cursor: default; }
    #hangup:not(:disabled) { background: #b3261e; }
    #mute[aria-pressed="true"] { background: #7a4d00; }
    .captions { list-style: none; padding: 0; margin: 0; max-height: 220px; overflow-y: auto; }
    .captions li { margin: 6px 0; padding: 8px 10px; border-radius: 8px; background: #fff; }
    .captions li.user { background: #dbe7fb; text-align: right; }
    .captions li.interrupted { opacity: .6; font-style: italic; }
    .captions li.interrupted::after { content: " (interrupted)"; }
    .captions li.system { background: #fff4d6; }
    @media (max-width: 600px) {
      .aw-floating .aw-panel { inset: 0; width: auto; max-height: none; border-radius: 0; }
      .aw-floating .aw-launcher { right: 12px; bottom: 12px; }
    }`;

  const HTML = `
    <button class="aw-launcher" id="launcher" aria-expanded="false">\u{1F4AC} Talk to us</button>
    <section class="aw-panel" id="panel" aria-label="${title.replace(/"/g, "&quot;")}">
      <div class="aw-head"><h1></h1><button class="aw-close" id="close" aria-label="Close">\u00d7</button></div>
      <div class="aw-stage">
        <video id="avatar-video" autoplay playsinline></video>
        <canvas id="avatar-canvas" hidden></canvas>
        <div id="status" class="status" role="status">Press \u201cCall\u201d and allow the microphone.</div>
      </div>
      <div class="aw-controls">
        <button id="call">Call</button>
        <button id="mute" aria-pressed="false" disabled>Mute</button>
        <button id="hangup" disabled>Hang up</button>
      </div>
      <form id="ask" class="ask">
        <input id="ask-text" type="text" placeholder="Or type your question\u2026" autocomplete="off" aria-label="Type your question" disabled>
        <button type="submit" id="ask-send" disabled>Send</button>
      </form>
      <ol id="captions" class="captions" aria-live="polite"></ol>
    </section>`;

  function mount() {
    let host, root;
    if (mode === "inline") {
      host = (opts.target && document.querySelector(opts.target)) || document.body;
      root = host;  // our own page: plain DOM, styles scoped by class names
    } else {
      host = document.createElement("div");
      host.id = "avatar-widget-host";
      document.body.appendChild(host);
      root = host.attachShadow({ mode: "open" });  // the host site's CSS cannot reach in, ours cannot leak out
    }
    const wrap = document.createElement("div");
    wrap.className = `aw-root aw-${mode}`;
    wrap.innerHTML = `<style>${CSS}</style>${HTML}`;
    root.appendChild(wrap);
    wrap.querySelector("h1").textContent = title;
    return { host, $: (id) => wrap.querySelector(`#${id}`) };
  }

  const { host, $ } = mount();
  let pc = null, channel = null, sessionId = null, hangupToken = null, localStream = null, face = null;

  // Loads the page-drawn avatar when the tenant wants it: {page: what the offer says, face or null, note}.
  async function prepareFace() {
    let info;
    try {
      info = await fetchJson("/api/avatar");
    } catch (err) {
      return { page: { webgl2: false, avatar: false, error: err.message }, face: null };
    }
    const webgl2 = !!document.createElement("canvas").getContext("webgl2");
    if (info.where === "server") return { page: { webgl2, avatar: false, error: "video from the server" }, face: null };
    if (!webgl2) return { page: { webgl2: false, avatar: false, error: "this browser has no WebGL2" }, face: null };
    try {
      const module = await import(`${server}/client/avatar-face.js`);
      const loaded = await module.loadFace(server, info);
      return { page: { webgl2: true, avatar: true }, face: loaded };
    } catch (err) {
      return { page: { webgl2: true, avatar: false, error: `could not load the 3D avatar: ${err.message || err}` }, face: null };
    }
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", !!isError);
  }

  function addCaption(kind, text) {
    const li = document.createElement("li");
    li.className = kind;
    li.textContent = text;
    $("captions").appendChild(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  let personOn = false;  // a person speaks through the avatar: the page says so until they leave

  function onPerson(event) {
    if (event.status === "waiting") addCaption("system", `Finding a person for you: usually within ${Math.max(1, Math.round(event.wait_s / 60))} min\u2026`);
    else if (event.status === "joined") {
      personOn = true;
      addCaption("system", "A person has joined and is speaking through the avatar.");
      setStatus("A person is speaking with you.");
    } else if (event.status === "left") {
      personOn = false;
      addCaption("system", event.reason === "lost" ? "The person's connection dropped; the assistant is back." : "You're back with the assistant.");
      setStatus("Ask me anything.");
    } else if (event.status === "none_free") addCaption("system", event.message);
    host.classList.toggle("person-speaking", personOn);
  }

  function onEvent(event) {
    (window.avatarEvents = window.avatarEvents || []).push(event);
    host.dispatchEvent(new CustomEvent("avatar-event", { detail: event, bubbles: true }));
    if (event.type === "user") addCaption("user", event.text);
    else if (event.type === "avatar") addCaption("avatar", event.text).dataset.turn = event.turn;
    else if (event.type === "handoff") addCaption("system", "Connecting you to a person\u2026");
    else if (event.type === "person") onPerson(event);
    else if (event.type === "interrupted") {
      $("captions").querySelectorAll(`li.avatar[data-turn="${event.turn}"]`).forEach((li) => li.classList.add("interrupted"));
    } else if (event.type === "state" && personOn) setStatus("A person is speaking with you.");
    else if (event.type === "state") setStatus({ listening: "Listening\u2026", thinking: "Thinking\u2026", speaking: "Speaking\u2026", idle: "Ask me anything." }[event.state] || event.state);
    else if (event.type === "error") setStatus(event.message, true);
    else if (event.type === "ended") { hangup(); setStatus(ENDED[event.reason] || event.message, true); }
  }

  async function waitForIce(peer) {
    if (peer.iceGatheringState === "complete") return;
    await new Promise((resolve) => {
      const check = () => { if (peer.iceGatheringState === "complete") { peer.removeEventListener("icegatheringstatechange", check); resolve(); } };
      peer.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 3000);
    });
  }

  async function fetchJson(path, init) {
    let resp;
    try {
      resp = await fetch(api(path), init);
    } catch (err) {
      // A refused cross-origin request looks like a network error to the page.
      throw new Error("Could not reach the assistant. This website may not be allowed to use it, or the server is down.");
    }
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error((body.reason && ENDED[body.reason]) || HTTP_ERRORS[resp.status] || body.error || `The server answered ${resp.status}.`);
    return body;
  }

  async function call() {
    $("call").disabled = true;
    setStatus("Asking for the microphone\u2026");
    try {
      localStream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
    } catch (err) {
      setStatus(`${MIC_ERRORS[err.name] || `Could not open the microphone: ${err.message}`} You can still type below once connected; press Call to retry.`, true);
      $("call").disabled = false;
      return;
    }
    try {
      const [ice, prepared] = await Promise.all([fetchJson("/api/ice-servers"), prepareFace()]);
      window.avatarRender = { page: prepared.page };
      pc = new RTCPeerConnection({ iceServers: ice.iceServers || [], iceTransportPolicy });
      // Poses are worth nothing late: unordered and never resent.
      const poses = prepared.face ? pc.createDataChannel("poses", { ordered: false, maxRetransmits: 0 }) : null;
      localStream.getTracks().forEach((t) => pc.addTrack(t, localStream));
      pc.addTransceiver("video", { direction: "recvonly" });
      const remote = new MediaStream();
      pc.ontrack = (e) => { remote.addTrack(e.track); $("avatar-video").srcObject = remote; };
      pc.onconnectionstatechange = () => { if (pc && ["failed", "disconnected"].includes(pc.connectionState)) { hangup(); setStatus("The call dropped. Press Call to call again.", true); } };
      channel = pc.createDataChannel("events");
      channel.onmessage = (m) => onEvent(JSON.parse(m.data));
      channel.onopen = () => { $("ask-text").disabled = false; $("ask-send").disabled = false; };
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIce(pc);
      const body = await fetchJson("/api/offer", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type, render: prepared.page,
          microphone: { echoCancellation: localStream.getAudioTracks()[0].getSettings().echoCancellation === true } }),
      });
      sessionId = body.session;
      hangupToken = body.hangup_token;
      await pc.setRemoteDescription({ sdp: body.sdp, type: body.type });
      const where = (body.render && body.render.where) || "server";
      window.avatarRender = { page: prepared.page, where, reason: body.render && body.render.reason };
      $("avatar-video").hidden = where === "browser";
      $("avatar-canvas").hidden = where !== "browser";
      if (where === "browser") {
        face = prepared.face;
        const receiver = pc.getReceivers().find((r) => r.track && r.track.kind === "audio");
        face.start($("avatar-canvas"), poses, receiver, { readable });
        window.avatarFace = face;
      } else if (prepared.page.error && prepared.page.error !== "video from the server") {
        addCaption("system", `Showing video: ${prepared.page.error}.`);
      }
      setStatus("Connected.");
      $("hangup").disabled = false;
      $("mute").disabled = false;
    } catch (err) {
      hangup();
      setStatus(err.message, true);
    }
  }

  function setMuted(muted) {
    if (localStream) localStream.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    $("mute").setAttribute("aria-pressed", String(muted));
    $("mute").textContent = muted ? "Unmute" : "Mute";
  }

  function hangup() {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "bye" }));
    if (sessionId && hangupToken) {
      fetch(api(`/api/sessions/${sessionId}`), { method: "DELETE", keepalive: true, headers: { "X-Hangup-Token": hangupToken } }).catch(() => {});
    }
    if (pc) pc.close();
    if (face) face.stop();
    face = null;
    if (localStream) localStream.getTracks().forEach((t) => t.stop());
    pc = channel = localStream = null; sessionId = hangupToken = null;
    setMuted(false);
    $("call").disabled = false; $("hangup").disabled = true; $("mute").disabled = true;
    $("ask-text").disabled = true; $("ask-send").disabled = true;
  }

  function setOpen(open) {
    $("panel").hidden = !open;
    $("launcher").setAttribute("aria-expanded", String(open));
    if (!open) hangup();
  }

  if (mode === "floating") {
    setOpen(false);
    $("launcher").addEventListener("click", () => setOpen($("panel").hidden));
  } else {
    $("launcher").remove();
  }
  $("close").addEventListener("click", () => setOpen(false));
  $("call").addEventListener("click", call);
  $("mute").addEventListener("click", () => setMuted($("mute").getAttribute("aria-pressed") !== "true"));
  $("hangup").addEventListener("click", () => { hangup(); setStatus("Call ended."); });
  $("ask").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("ask-text").value.trim();
    if (text && channel && channel.readyState === "open") { channel.send(JSON.stringify({ type: "text", text })); $("ask-text").value = ""; }
  });
  window.addEventListener("pagehide", () => { if (sessionId) hangup(); });
  window.avatarCall = { call, hangup, mute: setMuted, micSettings: () => (localStream ? localStream.getAudioTracks()[0].getSettings() : null) };
})();

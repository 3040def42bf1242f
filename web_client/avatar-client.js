// Browser side of a call: microphone up, avatar video and audio down, captions over a data channel.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const server = (document.currentScript && document.currentScript.dataset.server) || "";
  let pc = null, channel = null, sessionId = null, localStream = null;

  const MIC_ERRORS = {
    NotAllowedError: "Microphone permission was denied. Allow the microphone in your browser's address bar, then press Call again. You can also type your question.",
    NotFoundError: "No microphone was found. Plug one in, or type your question instead.",
    NotReadableError: "The microphone is in use by another application.",
    OverconstrainedError: "The microphone does not support the required settings.",
    SecurityError: "The microphone can only be used on a secure (https) page.",
  };

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  function addCaption(kind, text) {
    const li = document.createElement("li");
    li.className = kind;
    li.textContent = text;
    $("captions").appendChild(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  function onEvent(event) {
    window.avatarEvents = window.avatarEvents || [];
    window.avatarEvents.push(event);
    if (event.type === "user") addCaption("user", event.text);
    else if (event.type === "avatar") addCaption("avatar", event.text).dataset.turn = event.turn;
    else if (event.type === "handoff") addCaption("system", "Connecting you to a person…");
    else if (event.type === "interrupted") {
      document.querySelectorAll(`.captions li.avatar[data-turn="${event.turn}"]`).forEach((li) => li.classList.add("interrupted"));
    } else if (event.type === "state") setStatus({ listening: "Listening…", thinking: "Thinking…", speaking: "Speaking…", idle: "Ask me anything." }[event.state] || event.state);
    else if (event.type === "error") setStatus(event.message, true);
  }

  async function waitForIce(peer) {
    if (peer.iceGatheringState === "complete") return;
    await new Promise((resolve) => {
      const check = () => { if (peer.iceGatheringState === "complete") { peer.removeEventListener("icegatheringstatechange", check); resolve(); } };
      peer.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 3000);
    });
  }

  async function call() {
    $("call").disabled = true;
    setStatus("Asking for the microphone…");
    try {
      localStream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
    } catch (err) {
      setStatus(MIC_ERRORS[err.name] || `Could not open the microphone: ${err.message}`, true);
      $("call").disabled = false;
      return;
    }
    try {
      const ice = await fetch(`${server}/api/ice-servers`).then((r) => r.json());
      pc = new RTCPeerConnection({ iceServers: ice.iceServers || [] });
      localStream.getTracks().forEach((t) => pc.addTrack(t, localStream));
      pc.addTransceiver("video", { direction: "recvonly" });
      const remote = new MediaStream();
      pc.ontrack = (e) => { remote.addTrack(e.track); $("avatar-video").srcObject = remote; };
      pc.onconnectionstatechange = () => { if (["failed", "disconnected"].includes(pc.connectionState)) { setStatus("The connection was lost.", true); hangup(); } };
      channel = pc.createDataChannel("events");
      channel.onmessage = (m) => onEvent(JSON.parse(m.data));
      channel.onopen = () => { $("ask-text").disabled = false; $("ask-send").disabled = false; };
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIce(pc);
      const resp = await fetch(`${server}/api/offer`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
      });
      const body = await resp.json();
      if (!resp.ok) throw new Error(body.error || `server answered ${resp.status}`);
      sessionId = body.session;
      await pc.setRemoteDescription({ sdp: body.sdp, type: body.type });
      setStatus("Connected.");
      $("hangup").disabled = false;
    } catch (err) {
      setStatus(err.message, true);
      hangup();
    }
  }

  function hangup() {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "bye" }));
    if (sessionId) fetch(`${server}/api/sessions/${sessionId}`, { method: "DELETE", keepalive: true }).catch(() => {});
    if (pc) pc.close();
    if (localStream) localStream.getTracks().forEach((t) => t.stop());
    pc = channel = localStream = null; sessionId = null;
    $("call").disabled = false; $("hangup").disabled = true;
    $("ask-text").disabled = true; $("ask-send").disabled = true;
  }

  $("call").addEventListener("click", call);
  $("hangup").addEventListener("click", () => { hangup(); setStatus("Call ended."); });
  $("ask").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("ask-text").value.trim();
    if (text && channel && channel.readyState === "open") { channel.send(JSON.stringify({ type: "text", text })); $("ask-text").value = ""; }
  });
  window.avatarCall = { call, hangup };
})();

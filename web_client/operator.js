// The operator's console (/operator): the tenant's FAQ, fine-tunes and versions, and the questions the avatar missed.
// The token is kept in this tab's sessionStorage and sent in the Authorization header: never in a URL, never a cookie,
// so another site cannot make this browser act with it.
const $ = (id) => document.getElementById(id);
let tenant = sessionStorage.getItem("operator-tenant") || "";
let token = sessionStorage.getItem("operator-token") || "";

async function api(method, path, body, contentType = "application/json") {
  const headers = { Authorization: `Bearer ${token}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = contentType;
    init.body = contentType === "application/json" ? JSON.stringify(body) : body;
  }
  const response = await fetch(`/operator/${encodeURIComponent(tenant)}${path}`, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.error || `${response.status}`), { status: response.status });
  return data;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
  return td;
}

function percent(x) {
  return x === undefined || x === null ? "–" : `${(100 * x).toFixed(1)}%`;
}

async function signIn(event) {
  event.preventDefault();
  tenant = $("tenant").value.trim();
  token = $("token").value;
  $("sign-in-error").textContent = "";
  try {
    await api("GET", "/versions");
  } catch (error) {
    $("sign-in-error").textContent = error.status === 429 ? error.message : `Not signed in: ${error.message}`;
    token = "";
    return;
  }
  sessionStorage.setItem("operator-tenant", tenant);
  sessionStorage.setItem("operator-token", token);
  $("token").value = "";
  show();
}

function signOut() {
  sessionStorage.clear();
  tenant = token = "";
  location.reload();
}

async function show() {
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = tenant;
  await Promise.all([loadLive(), loadFaq(), loadVersions(), loadMissed()]);
  setInterval(() => loadLive().catch(() => {}), 2000);
}

// ---- Live: the calls in progress, those waiting for a person, and taking one over ----
function duration(seconds) {
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

async function loadLive() {
  const live = await api("GET", "/live");
  const hour = live.last_hour;
  $("live-summary").textContent = `${live.calls.length} call(s) in progress, ${live.waiting.length} waiting for a person. ` +
    `Last hour: ${hour.turns} turns, ${hour.handoffs} handed off (${percent(hour.handoff_rate)}).`;
  const body = $("live-calls").tBodies[0];
  body.replaceChildren();
  for (const call of live.calls) {
    const row = body.insertRow();
    row.dataset.session = call.session;
    if (call.person === "waiting") row.className = "waiting";
    cell(row, call.session);
    cell(row, call.state);
    cell(row, call.person === "waiting" ? `waiting ${duration(call.waiting_s)}` : call.person);
    cell(row, duration(call.seconds));
    cell(row, String(call.turns));
    cell(row, call.fps === null ? (call.render === "browser" ? "in the page" : "–") : call.fps.toFixed(1));
    cell(row, call.first_audio_ms === null ? "–" : `${call.first_audio_ms} ms`);
    const button = document.createElement("button");
    button.className = "join";
    button.textContent = "Take over";
    button.disabled = call.person === "person" || onCall !== null;
    button.addEventListener("click", () => takeOver(call).catch((error) => { $("takeover-state").textContent = error.message; }));
    row.insertCell().append(button);
  }
}

let onCall = null;  // {session, pc, channel, mic, ping}: the call this operator speaks in; the server sends its transcript so far on joining

function caption(who, text) {
  const item = document.createElement("li");
  item.className = who;
  item.textContent = `${who}: ${text}`;
  $("captions").append(item);
  item.scrollIntoView({ block: "nearest" });
}

function onCallEvent(message) {
  const event = JSON.parse(message.data);
  if (event.type === "transcript") caption(event.who, event.text);
  else if (event.type === "user") caption("customer", event.text);
  else if (event.type === "avatar") caption("avatar", event.text);
  else if (event.type === "call_ended") { endTakeover("The customer hung up."); }
  else if (event.type === "error") $("takeover-state").textContent = event.message;
}

async function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    const check = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", check); resolve(); } };
    pc.addEventListener("icegatheringstatechange", check);
  });
}

async function takeOver(call) {
  $("takeover").hidden = false;
  $("captions").replaceChildren();
  $("takeover-call").textContent = call.session;
  $("takeover-state").textContent = "Connecting…";
  const mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
  const pc = new RTCPeerConnection();
  for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
  const channel = pc.createDataChannel("operator");
  channel.onmessage = onCallEvent;
  pc.ontrack = (event) => { $("customer-audio").srcObject = new MediaStream([event.track]); };
  pc.onconnectionstatechange = () => {
    if (["failed", "disconnected"].includes(pc.connectionState) && onCall && onCall.pc === pc) endTakeover("The connection to the call was lost.");
  };
  // The server takes a page it has not heard from for a few seconds as gone, and hands the call back.
  const ping = setInterval(() => { if (channel.readyState === "open") channel.send(JSON.stringify({ type: "ping" })); }, 2000);
  onCall = { session: call.session, pc, channel, mic, ping };
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  try {
    const answer = await api("POST", `/calls/${encodeURIComponent(call.session)}/join`, { sdp: pc.localDescription.sdp, type: "offer" });
    await pc.setRemoteDescription(answer);
  } catch (error) {
    endTakeover(`Could not take the call over: ${error.message}`);
    return;
  }
  $("takeover-state").textContent = "You are speaking through the avatar. The customer sees that a person is speaking.";
}

function endTakeover(message) {
  if (onCall) {
    clearInterval(onCall.ping);
    onCall.mic.getTracks().forEach((t) => t.stop());
    onCall.pc.close();
  }
  onCall = null;
  $("takeover-state").textContent = message;
}

async function handBack() {
  if (!onCall) return;
  const session = onCall.session;
  if (onCall.channel.readyState === "open") onCall.channel.send(JSON.stringify({ type: "leave" }));
  else await api("POST", `/calls/${encodeURIComponent(session)}/hand-back`).catch(() => {});
  endTakeover("Handed back to the assistant.");
}

function sayThroughAvatar(event) {
  event.preventDefault();
  const text = $("say-text").value.trim();
  if (!text || !onCall || onCall.channel.readyState !== "open") return;
  onCall.channel.send(JSON.stringify({ type: "say", text }));
  caption("you (typed)", text);
  $("say-text").value = "";
}

let entries = [];

async function loadFaq() {
  const faq = await api("GET", "/faq");
  entries = faq.entries;
  $("faq-file").textContent = faq.file;
  $("faq-count").textContent = String(entries.length);
  const body = $("faq-entries").tBodies[0];
  body.replaceChildren();
  for (const entry of entries) {
    const row = body.insertRow();
    cell(row, entry.question);
    cell(row, entry.answer);
    cell(row, entry.paraphrases.join(" · "));
    const edit = document.createElement("button");
    edit.className = "edit";
    edit.textContent = "Edit";
    edit.addEventListener("click", () => editEntry(row, entry));
    row.insertCell().append(edit);
  }
}

// An entry edited in place: question, answer, and one paraphrase per line. The server validates the FAQ whole.
function editEntry(row, entry) {
  row.replaceChildren();
  const form = document.createElement("form");
  form.className = "entry-form";
  const question = Object.assign(document.createElement("input"), { value: entry ? entry.question : "", maxLength: 500, required: true, name: "question" });
  const answer = Object.assign(document.createElement("textarea"), { value: entry ? entry.answer : "", maxLength: 4000, required: true, rows: 3, name: "answer" });
  const paraphrases = Object.assign(document.createElement("textarea"), { value: entry ? entry.paraphrases.join("\n") : "", rows: 4, name: "paraphrases",
    placeholder: "Other ways customers ask it, one per line" });
  const save = Object.assign(document.createElement("button"), { type: "submit", textContent: "Save" });
  const cancel = Object.assign(document.createElement("button"), { type: "button", textContent: "Cancel", className: "secondary" });
  const error = Object.assign(document.createElement("p"), { className: "error" });
  cancel.addEventListener("click", () => loadFaq());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { question: question.value, answer: answer.value, paraphrases: paraphrases.value.split("\n").map((p) => p.trim()).filter(Boolean) };
    if (entry) body.was = entry.question;
    try {
      await api("POST", "/faq/entry", body);
      $("faq-ok").textContent = entry ? `Saved \u201c${body.question}\u201d: the next fine-tune uses it.` : `Added \u201c${body.question}\u201d.`;
      await loadFaq();
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  for (const [label, field] of [["Question", question], ["Answer", answer], ["Paraphrases", paraphrases]]) {
    const wrap = document.createElement("label");
    wrap.append(label, field);
    form.append(wrap);
  }
  form.append(save, " ", cancel, error);
  const cellForForm = row.insertCell();
  cellForForm.colSpan = 4;
  cellForForm.append(form);
}

async function uploadFaq() {
  const file = $("faq-upload").files[0];
  if (!file) return;
  $("faq-error").textContent = $("faq-ok").textContent = "";
  const type = file.name.endsWith(".jsonl") ? "application/jsonl" : "text/csv";
  try {
    const result = await api("PUT", "/faq", await file.text(), type);
    $("faq-ok").textContent = `Uploaded: ${result.entries} entries. The next fine-tune reads it.`;
    await loadFaq();
  } catch (error) {
    $("faq-error").textContent = error.message;  // the validator's line-numbered problems
  } finally {
    $("faq-upload").value = "";
  }
}

async function loadVersions() {
  const data = await api("GET", "/versions");
  const body = $("versions").tBodies[0];
  body.replaceChildren();
  for (const v of [{ version: "base", created: "", faq_entries: "" }, ...data.versions.slice().reverse()]) {
    const row = body.insertRow();
    cell(row, v.version).className = v.version === data.active ? "active" : "";
    cell(row, v.created || "");
    cell(row, String(v.faq_entries ?? ""));
    const tuned = v.metrics && Object.entries(v.metrics).find(([name]) => name.startsWith("fine-tuned (this version"));
    cell(row, tuned ? `${percent(tuned[1].top1_accuracy)} / ${percent(tuned[1].fallback_precision)} / ${percent(tuned[1].fallback_recall)} / ${percent(tuned[1].wrong)}` : "");
    const action = row.insertCell();
    if (v.version !== data.active) {
      const button = document.createElement("button");
      button.textContent = v.version === "base" ? "Roll back to base" : "Activate";
      button.addEventListener("click", async () => {
        button.disabled = true;
        try { await api("POST", `/versions/${v.version}/activate`); } catch (error) { alert(error.message); }
        await loadVersions();
      });
      action.append(button);
    } else {
      action.textContent = "live";
    }
  }
}

async function startFinetune() {
  const button = $("start-finetune");
  button.disabled = true;
  try {
    const job = await api("POST", "/finetune", { steps: Number($("steps").value) || 120 });
    $("finetune-progress").hidden = false;
    await followJob(job.job);
  } catch (error) {
    $("finetune-state").textContent = `Not started: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function followJob(job) {
  for (;;) {
    const status = await api("GET", `/jobs/${job}`);
    const progress = $("finetune-progress");
    if (status.total) { progress.max = status.total; progress.value = status.step || 0; }
    $("finetune-state").textContent = `${status.state}${status.stage ? `: ${status.stage}` : ""}${status.error ? ` (${status.error})` : ""}`;
    if (status.state === "done" || status.state === "failed") {
      if (status.state === "done") { progress.value = progress.max; report(status.metrics || {}, status.evaluated_on); riskCoverage(status.risk_coverage || []); await loadVersions(); }
      return status;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// The fine-tune's report: each method calibrated alike, on the evaluation questions (or, without a file of them, on
// the phrasings kept out of training).
function report(metrics, evaluatedOn) {
  const table = $("finetune-report");
  $("finetune-report-caption").textContent = evaluatedOn === "held-out phrasings"
    ? "On phrasings made from the FAQ and kept out of training (the hand-off line was set on them too: kind numbers)."
    : "On the evaluation questions.";
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const [method, m] of Object.entries(metrics)) {
    const row = body.insertRow();
    for (const text of [method, percent(m.top1_accuracy), percent(m.fallback_precision), percent(m.fallback_recall), percent(m.wrong)]) cell(row, text);
  }
  table.hidden = !body.rows.length;
}

// One row per hand-off line, from answering everything down to about half; the version's own line is marked.
function riskCoverage(rows) {
  const table = $("finetune-risk");
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const r of rows) {
    const row = body.insertRow();
    row.className = r.this_version ? "active" : "";
    for (const text of [`${r.threshold.toFixed(3)}${r.this_version ? " (this version)" : ""}`, percent(r.answered), percent(r.wrong),
      percent(r.top1_in_scope), percent(r.off_topic_handed_off)]) cell(row, text);
  }
  table.hidden = !body.rows.length;
}

async function loadMissed() {
  const data = await api("GET", "/questions");
  const holder = $("missed-groups");
  holder.replaceChildren();
  if (!data.keeping) {
    $("missed-state").textContent = `This tenant keeps no questions (tenants.${tenant}.keep_questions is off).`;
    return;
  }
  $("missed-state").textContent = `${data.groups.reduce((n, g) => n + g.size, 0)} questions in ${data.groups.length} groups, kept ${data.retention_days} days, masked.`;
  for (const group of data.groups) {
    const box = document.createElement("div");
    box.className = "group";
    const list = document.createElement("ul");
    for (const q of group.questions) {
      const item = document.createElement("li");
      item.textContent = `${q.text} (${q.did.replace("_", " ")})`;
      list.append(item);
    }
    const texts = group.questions.map((q) => q.text);
    const pick = document.createElement("select");
    for (const entry of entries) pick.add(new Option(entry.question, entry.question));
    const assign = document.createElement("button");
    assign.textContent = "Add as paraphrases";
    assign.className = "assign";
    assign.addEventListener("click", () => act("/questions/assign", { texts, entry: pick.value }));
    const dismiss = document.createElement("button");
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", () => act("/questions/dismiss", { texts }));
    box.append(list, pick, " ", assign, " ", dismiss);
    holder.append(box);
  }
}

async function act(path, body) {
  try { await api("POST", path, body); } catch (error) { alert(error.message); }
  await Promise.all([loadFaq(), loadMissed()]);
}

$("sign-in").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", signOut);
$("faq-upload").addEventListener("change", uploadFaq);
$("add-entry").addEventListener("click", () => editEntry($("faq-entries").tBodies[0].insertRow(0), null));
$("start-finetune").addEventListener("click", startFinetune);
if (tenant && token) show().catch(() => signOut());
$("hand-back").addEventListener("click", handBack);
$("say-form").addEventListener("submit", sayThroughAvatar);
$("mute").addEventListener("change", () => { if (onCall) onCall.mic.getAudioTracks().forEach((t) => { t.enabled = !$("mute").checked; }); });

// edgellm web chat: streams answers from /v1/chat/completions (server-sent events), keeps the
// conversation in localStorage, shows the model, tokens/s, which tier answered and why, and
// (when the server routes between device and cloud) re-answers the last turn in the cloud.
// Dictation (the microphone button) is in voice.js.
"use strict";

const STORE_KEY = "edgellm.chat.v1";
const SETTINGS_KEY = "edgellm.settings.v1";
const $ = (id) => document.getElementById(id);

let modelId = null;
let routing = null;                      // the server's hybrid routing ({policy, mode, cloud}) or null
let conversation = load(STORE_KEY, []);  // [{role, content, meta?}]
let controller = null;                   // AbortController of the running request

function load(key, fallback) {
  try { const v = JSON.parse(localStorage.getItem(key)); return v ?? fallback; } catch { return fallback; }
}
function save() { localStorage.setItem(STORE_KEY, JSON.stringify(conversation)); }

function settings() {
  return {
    system: $("system").value,
    temperature: parseFloat($("temperature").value),
    max_tokens: parseInt($("max-tokens").value, 10),
    api_key: $("api-key").value,
  };
}
function restoreSettings() {
  const s = load(SETTINGS_KEY, {});
  if (s.system !== undefined) $("system").value = s.system;
  if (s.temperature !== undefined) $("temperature").value = s.temperature;
  if (s.max_tokens !== undefined) $("max-tokens").value = s.max_tokens;
  if (s.api_key !== undefined) $("api-key").value = s.api_key;
  for (const id of ["system", "temperature", "max-tokens", "api-key"])
    $(id).addEventListener("change", () => localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings())));
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = settings().api_key;
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function setStatus(text) { $("status").textContent = text; }
function setTier(tier, route) {
  const el = $("tier");
  el.textContent = "tier: " + (tier || "–");
  el.className = "tier" + (tier ? " " + tier : "");
  el.title = route ? "Why: " + whyText(route) : "Which tier answered the last message";
}

// Why the router chose the tier (RouteRecord.reason, docs/hybrid.md), in words.
const REASONS = {
  privacy_block: "private data must stay on the device", low_confidence: "the device answer looked unsure",
  explicit: "the cloud was asked for", budget_exhausted: "the cloud budget is used up",
  cloud_down: "the cloud is unreachable", timeout: "the cloud timed out", cloud_error: "the cloud failed",
  local_only: "local-only", cloud_only: "cloud-only", prefer_local: "device first",
  prefer_cloud: "cloud first", context_overflow: "the prompt is too long for the device",
  capability: "the device model lacks a needed capability",
};
function whyText(route) {
  const parts = [REASONS[route.reason] || route.reason];
  if (route.escalated) parts.push("escalated");
  if (route.fallback) parts.push("fallback");
  if (route.redacted) parts.push("private data redacted");
  return parts.join(", ");
}
function routeOf(meta) {
  return meta && meta.route ? { reason: meta.route.reason, escalated: !!meta.route.escalated,
    fallback: !!meta.route.fallback, redacted: !!meta.route.redacted } : null;
}

function metaText(meta) {
  if (!meta) return "";
  const parts = [];
  if (meta.tokens !== undefined) parts.push(meta.tokens + " tokens");
  if (meta.tps) parts.push(meta.tps.toFixed(1) + " tok/s");
  if (meta.ttft_ms) parts.push("first token " + Math.round(meta.ttft_ms) + " ms");
  if (meta.tier) parts.push("tier " + meta.tier);
  if (meta.route) parts.push("why: " + whyText(meta.route));
  if (meta.note) parts.push(meta.note);
  if (meta.finish && meta.finish !== "stop") parts.push(meta.finish);
  return parts.join(" · ");
}

function updateMeta(el, meta) {
  el.textContent = metaText(meta);
  el.dataset.tier = meta && meta.tier ? meta.tier : "";
  el.dataset.reason = meta && meta.route ? meta.route.reason : "";
}

function renderMessage(m) {
  const div = document.createElement("div");
  div.className = "msg " + m.role + (m.error ? " error" : "");
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = m.content;
  div.appendChild(text);
  const meta = document.createElement("span");
  meta.className = "meta";
  updateMeta(meta, m.meta);
  div.appendChild(meta);
  $("messages").appendChild(div);
  return div;
}

function renderAll() {
  $("messages").replaceChildren();
  for (const m of conversation) renderMessage(m);
  scrollDown();
}
function scrollDown() { const el = $("messages"); el.scrollTop = el.scrollHeight; }

function lastUserIndex() {
  for (let i = conversation.length - 1; i >= 0; i--) if (conversation[i].role === "user") return i;
  return -1;
}
function updateAskCloud() {
  $("ask-cloud").hidden = !routing || !routing.cloud || controller !== null || lastUserIndex() < 0;
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("input").disabled = busy;
  updateAskCloud();
}

async function loadModel() {
  try {
    const r = await fetch("v1/models", { headers: headers() });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
    modelId = j.data[0].id;
    $("model").textContent = modelId + (j.data[0].meta ? "  ·  ctx " + j.data[0].meta.n_ctx : "");
    routing = (j.data[0].meta && j.data[0].meta.routing) || null;
    initVoice(j.data);  // voice.js: the microphone button, when the server has a speech model
    if (routing) $("model").textContent += "  ·  routing " + routing.mode + (routing.cloud ? " + cloud" : "");
    updateAskCloud();
  } catch (e) {
    $("model").textContent = "model unavailable: " + e.message;
  }
}

// Reads an SSE body and calls onEvent with each parsed JSON payload.
async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let sep;
    while ((sep = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, sep);
      buf = buf.slice(sep + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function send(text) {
  conversation.push({ role: "user", content: text });
  save();
  renderMessage(conversation[conversation.length - 1]);
  await answer(null);
}

// "Ask the cloud": drops the answer to the last user turn and asks again with route.escalate
// (the server still keeps blocked private data on the device and says so).
async function askCloud() {
  const i = lastUserIndex();
  if (i < 0 || controller) return;
  conversation = conversation.slice(0, i + 1);
  save();
  renderAll();
  await answer({ escalate: true });
}

// Streams an answer to the conversation so far; `route` is the request's routing override.
async function answer(route) {
  const s = settings();
  const reply = { role: "assistant", content: "", meta: {} };
  const div = renderMessage(reply);
  div.classList.add("streaming");
  const textEl = div.querySelector(".text");
  const metaEl = div.querySelector(".meta");
  scrollDown();

  const messages = [];
  if (s.system.trim()) messages.push({ role: "system", content: s.system });
  for (const m of conversation) if (!m.error) messages.push({ role: m.role, content: m.content });
  const body = {
    model: modelId || undefined, messages, stream: true, stream_options: { include_usage: true },
    temperature: isNaN(s.temperature) ? 0.7 : s.temperature,
    max_tokens: isNaN(s.max_tokens) ? 512 : s.max_tokens,
  };
  if (route) body.route = route;

  controller = new AbortController();
  setBusy(true);
  setStatus("generating…");
  const t0 = performance.now();
  let tFirst = 0, nChunks = 0;
  try {
    const r = await fetch("v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { const j = await r.json(); if (j.error) msg = j.error.message; } catch {}
      throw new Error(msg);
    }
    await readEvents(r.body, (ev) => {
      if (ev.error && ev.restart) {
        // The cloud's stream broke off; the device's answer replaces what was shown.
        reply.content = "";
        reply.meta.note = "cloud answer broke off, answered again";
        textEl.textContent = "";
        return;
      }
      if (ev.error) throw new Error(ev.error.message);
      if (ev.route) reply.meta.route = routeOf({ route: ev.route });
      if (ev.tier) { reply.meta.tier = ev.tier; setTier(ev.tier, reply.meta.route); }
      if (ev.tier === "cloud") delete reply.meta.tps;  // chunk arrival rate says nothing about a remote model
      if (ev.usage) reply.meta.tokens = ev.usage.completion_tokens;
      if (ev.timings) {
        reply.meta.tps = ev.timings.predicted_per_second;
        reply.meta.ttft_ms = ev.timings.ttft_ms;
      }
      for (const c of ev.choices || []) {
        const piece = c.delta && c.delta.content;
        if (piece) {
          if (!tFirst) tFirst = performance.now();
          nChunks++;
          reply.content += piece;
          textEl.textContent = reply.content;
          scrollDown();
        }
        if (c.finish_reason) reply.meta.finish = c.finish_reason;
      }
      if (!reply.meta.tps && reply.meta.tier !== "cloud" && tFirst && nChunks > 1)
        reply.meta.tps = (nChunks - 1) / ((performance.now() - tFirst) / 1000);
      updateMeta(metaEl, reply.meta);
    });
    setStatus("");
  } catch (e) {
    if (e.name === "AbortError") {
      reply.meta.finish = "stopped";
      setStatus("stopped");
    } else {
      reply.error = true;
      if (!reply.content) reply.content = "Error: " + e.message;
      div.classList.add("error");
      setStatus("error: " + e.message);
    }
  } finally {
    div.classList.remove("streaming");
    textEl.textContent = reply.content;
    updateMeta(metaEl, reply.meta);
    conversation.push(reply);
    save();
    controller = null;
    setBusy(false);
    $("input").focus();
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (!reply.error && reply.meta.finish !== "stopped") setStatus("done in " + secs + " s");
  }
}

$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("composer").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("ask-cloud").addEventListener("click", () => { askCloud(); });
$("new-chat").addEventListener("click", () => {
  if (controller) controller.abort();
  conversation = [];
  save();
  renderAll();
  setTier(null);
  setStatus("");
  updateAskCloud();
});
$("settings-toggle").addEventListener("click", () => { $("settings").hidden = !$("settings").hidden; });

restoreSettings();
renderAll();
loadModel();

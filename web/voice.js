// Dictation for the chat page: the microphone button records with WebAudio (an AudioWorklet), encodes 16-bit PCM WAV
// (which the server's decoder reads; no codec in the browser), posts it to /v1/audio/transcriptions
// and puts the text in the input box. The audio never leaves the machine running edgellm serve.
// The button is enabled only when /v1/models lists a speech model (serve --asr-model).
"use strict";

const MAX_SECONDS = 120;  // a recording stops itself here (a 16 kHz WAV of it is ~3.8 MB)
let asrModel = null;
let maxUploadBytes = 25 << 20;
let rec = null;  // {ctx, stream, source, node, chunks, rate, timer} while recording

// The recorder's AudioWorkletProcessor: copies each block of the first channel to the page.
const CAPTURE_WORKLET = `registerProcessor("edgellm-capture", class extends AudioWorkletProcessor {
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) this.port.postMessage(ch.slice(0));
    return true;
  }
});`;

// Called by app.js with /v1/models' list.
function initVoice(models) {
  const m = (models || []).find((x) => x.meta && x.meta.kind === "transcription");
  const btn = document.getElementById("mic");
  if (!m || !navigator.mediaDevices || !window.AudioContext) {
    btn.disabled = true;
    btn.title = m ? "Speech input needs a browser with microphone access (a secure origin: localhost or https)"
                  : "Speech input needs a server started with --asr-model";
    return;
  }
  asrModel = m.id;
  if (m.meta.max_upload_bytes) maxUploadBytes = m.meta.max_upload_bytes;
  btn.disabled = false;
  btn.title = "Dictate with " + asrModel + ": click to record, click again to transcribe";
}

async function startRecording() {
  // Raw sound: the browser's call processing (gain control, noise suppression) distorts speech
  // for a recognizer, and Whisper copes with noise itself.
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, autoGainControl: false, noiseSuppression: false, echoCancellation: false } });
  // Whisper reads 16 kHz; asking the context for it keeps uploads small. Browsers that cannot
  // connect a microphone to a context of another rate get their own rate (the server resamples).
  let ctx = new AudioContext({ sampleRate: 16000 });
  let source;
  try {
    source = ctx.createMediaStreamSource(stream);
  } catch {
    ctx.close();
    ctx = new AudioContext();
    source = ctx.createMediaStreamSource(stream);
  }
  const chunks = [];
  let node;
  if (ctx.audioWorklet) {
    // On the audio thread, so a busy page does not drop samples; the blocks queue up as messages.
    const url = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: "text/javascript" }));
    try { await ctx.audioWorklet.addModule(url); } finally { URL.revokeObjectURL(url); }
    node = new AudioWorkletNode(ctx, "edgellm-capture", { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1 });
    node.port.onmessage = (ev) => chunks.push(ev.data);
  } else {
    // ScriptProcessorNode: deprecated, on the page's thread, but where there is no worklet.
    node = ctx.createScriptProcessor(4096, 1, 1);
    node.onaudioprocess = (ev) => chunks.push(new Float32Array(ev.inputBuffer.getChannelData(0)));
  }
  source.connect(node);
  node.connect(ctx.destination);  // a processor runs only when connected; it outputs silence
  rec = { ctx, stream, source, node, chunks, rate: ctx.sampleRate };
  rec.timer = setTimeout(() => { if (rec) stopRecording(); }, MAX_SECONDS * 1000);
  const btn = document.getElementById("mic");
  btn.classList.add("recording");
  btn.textContent = "■";
  btn.title = "Recording: click to stop and transcribe";
  setStatus("recording… click ■ to stop");
}

function wavBlob(chunks, rate) {
  let n = 0;
  for (const c of chunks) n += c.length;
  const buf = new ArrayBuffer(44 + n * 2);
  const v = new DataView(buf);
  const str = (off, s) => { for (let i = 0; i < s.length; i++) v.setUint8(off + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + n * 2, true); str(8, "WAVE");
  str(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, rate, true); v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  str(36, "data"); v.setUint32(40, n * 2, true);
  let off = 44;
  for (const c of chunks)
    for (let i = 0; i < c.length; i++, off += 2) v.setInt16(off, Math.max(-1, Math.min(1, c[i])) * 32767, true);
  return new Blob([buf], { type: "audio/wav" });
}

async function stopRecording() {
  const r = rec;
  rec = null;
  clearTimeout(r.timer);
  const btn = document.getElementById("mic");
  btn.classList.remove("recording");
  btn.textContent = "🎤";
  btn.disabled = true;
  try {
    r.source.disconnect();
    r.node.disconnect();
    if (r.node.port) await new Promise((ok) => setTimeout(ok, 50));  // the last blocks' messages
    r.stream.getTracks().forEach((t) => t.stop());
    r.ctx.close();
    const wav = wavBlob(r.chunks, r.rate);
    if (wav.size > maxUploadBytes) throw new Error("the recording is larger than the server's upload limit");
    setStatus("transcribing " + (wav.size / 2 / r.rate).toFixed(1) + " s of speech…");
    const form = new FormData();
    form.append("file", wav, "speech.wav");
    form.append("model", asrModel);
    form.append("response_format", "json");
    const h = headers();
    delete h["Content-Type"];  // the browser sets multipart/form-data with its boundary
    const t0 = performance.now();
    const res = await fetch("v1/audio/transcriptions", { method: "POST", headers: h, body: form });
    const j = await res.json();
    if (!res.ok) throw new Error(j.error ? j.error.message : res.statusText);
    const input = $("input");
    const text = (j.text || "").trim();
    input.value = input.value.trim() ? input.value.trimEnd() + " " + text : text;
    input.focus();
    setStatus(text ? "transcribed in " + ((performance.now() - t0) / 1000).toFixed(1) + " s" : "no speech heard");
  } catch (e) {
    setStatus("speech: " + e.message);
  } finally {
    btn.disabled = false;
    btn.title = "Dictate with " + asrModel + ": click to record, click again to transcribe";
  }
}

let starting = false;  // a second click while the microphone opens does nothing
document.getElementById("mic").addEventListener("click", async () => {
  if (rec) return stopRecording();
  if (starting) return;
  starting = true;
  try {
    await startRecording();
  } catch (e) {
    setStatus("microphone: " + e.message);
  } finally {
    starting = false;
  }
});

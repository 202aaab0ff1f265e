// The voxline web page: one call over /ws/call (protocol: voxline/transports/websocket.py).

const WIRE_RATE = 16000;
const STATES = {
  connecting: "connecting…",
  listening: "listening",
  user_speaking: "you're speaking",
  thinking: "thinking…",
  speaking: "agent speaking",
  agent_speaking: "agent speaking",
  ended: "call ended",
  idle: "idle",
};

const button = document.getElementById("call");
const statusLine = document.getElementById("status");
const transcript = document.getElementById("transcript");

// Counters tests (and curious people) can read from the console.
const stats = {
  callId: null, sentFrames: 0, sentSamples: 0, receivedSamples: 0, playedSamples: 0,
  bufferedSamples: 0, clears: 0, events: [], errors: [],
};
window.voxlineStats = stats;

let call = null; // { ws, ctx, mic, capture, player }

function setStatus(state, text) {
  statusLine.dataset.state = state;
  statusLine.textContent = text ?? STATES[state] ?? state;
}

function bubble(role, turn) {
  // One bubble per (role, turn): later events for the same turn update it in place.
  const key = turn === undefined || turn === null ? null : `${role}-${turn}`;
  let item = key ? transcript.querySelector(`[data-key="${key}"]`) : null;
  if (!item) {
    item = document.createElement("li");
    item.className = `bubble ${role}`;
    if (key) item.dataset.key = key;
    const text = document.createElement("span");
    text.className = "text";
    item.append(text);
    transcript.append(item);
  }
  item.scrollIntoView({ block: "end", behavior: "smooth" });
  return item;
}

function showText(role, event) {
  const item = bubble(role, event.turn);
  item.querySelector(".text").textContent = event.text ?? "";
  if (role === "agent") item.classList.toggle("interrupted", Boolean(event.interrupted));
}

function showMetrics(event) {
  const m = event; // flat: {"type": "metrics", "turn": 0, "stt_ms": ..., ...} (conversation/events.py)
  const parts = [
    ["voice-to-voice", m.voice_to_voice_ms], ["stt", m.stt_ms],
    ["llm", m.llm_first_token_ms], ["tts", m.tts_first_audio_ms], ["barge-in stop", m.barge_in_stop_ms],
  ].filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${Math.round(v)} ms`);
  if (!parts.length) return;
  // Metrics follow the turn's agent text: use its bubble (keyed by turn, else the latest agent one).
  const agentBubbles = transcript.querySelectorAll(".bubble.agent");
  const keyed = transcript.querySelector(`[data-key="agent-${event.turn}"]`);
  const item = keyed ?? agentBubbles[agentBubbles.length - 1] ?? bubble("agent", event.turn);
  let note = item.querySelector(".latency");
  if (!note) {
    note = document.createElement("small");
    note.className = "latency";
    item.append(note);
  }
  note.textContent = parts.join(" · ");
}

function onEvent(event) {
  stats.events.push(event.type);
  switch (event.type) {
    case "ready": stats.callId = event.call_id; setStatus("listening"); break;
    case "state": setStatus(event.state); break;
    case "user_text": showText("caller", event); break;
    case "agent_text": showText("agent", event); break;
    case "transcript": showText(event.role === "user" ? "caller" : "agent", event); break;
    case "metrics": showMetrics(event); break;
    case "clear": stats.clears++; call?.player.port.postMessage({ type: "clear" }); break;
    case "error": stats.errors.push(event.message); setStatus("error", `error: ${event.message}`); break;
    case "hangup": endCall(event.reason); break;
    default: break; // newer servers may send more; ignore what we don't know
  }
}

function onAudio(buffer) {
  stats.receivedSamples += buffer.byteLength / 2;
  call?.player.port.postMessage({ type: "audio", samples: buffer }, [buffer]);
}

async function startCall() {
  button.disabled = true;
  setStatus("connecting");
  transcript.replaceChildren();
  try {
    const ctx = new AudioContext({ latencyHint: "interactive" });
    await ctx.audioWorklet.addModule("/static/worklets.js");
    const mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    const capture = new AudioWorkletNode(ctx, "voxline-capture", { numberOfOutputs: 1 });
    const mute = new GainNode(ctx, { gain: 0 }); // keeps the capture node pulled by the graph
    ctx.createMediaStreamSource(mic).connect(capture).connect(mute).connect(ctx.destination);
    const player = new AudioWorkletNode(ctx, "voxline-player", { outputChannelCount: [1] });
    player.connect(ctx.destination);
    player.port.onmessage = (e) => {
      stats.playedSamples = Math.round((e.data.played * WIRE_RATE) / e.data.rate);
      stats.bufferedSamples = Math.round((e.data.buffered * WIRE_RATE) / e.data.rate);
    };
    await ctx.resume();

    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = accessToken ? `?token=${encodeURIComponent(accessToken)}` : "";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/call${query}`);
    ws.binaryType = "arraybuffer";
    call = { ws, ctx, mic, capture, player };
    ws.onopen = () => ws.send(JSON.stringify({ type: "start", sample_rate: WIRE_RATE, format: "s16le" }));
    ws.onmessage = (e) => (typeof e.data === "string" ? onEvent(JSON.parse(e.data)) : onAudio(e.data));
    ws.onclose = () => endCall();
    capture.port.onmessage = (e) => {
      if (ws.readyState !== WebSocket.OPEN || !stats.callId) return;
      ws.send(e.data);
      stats.sentFrames++;
      stats.sentSamples += e.data.byteLength / 2;
    };
    button.textContent = "Hang up";
    button.classList.add("active");
  } catch (err) {
    stats.errors.push(String(err));
    setStatus("error", `could not start the call: ${err.message ?? err}`);
    endCall();
  } finally {
    button.disabled = false;
  }
}

function endCall(reason) {
  if (call) {
    const { ws, ctx, mic } = call;
    call = null;
    if (ws.readyState === WebSocket.OPEN) {
      if (!reason) ws.send(JSON.stringify({ type: "hangup" }));
      ws.close(1000);
    }
    mic.getTracks().forEach((t) => t.stop());
    // Let the last words of a goodbye finish before closing the audio context.
    setTimeout(() => ctx.close(), reason ? 1500 : 0);
    if (reason) {
      const note = bubble("system");
      note.querySelector(".text").textContent = `call ended (${reason.replaceAll("_", " ")})`;
    }
    if (statusLine.dataset.state !== "error") setStatus("ended");
  }
  stats.callId = null;
  button.textContent = "Call";
  button.classList.remove("active");
}

function sendDtmf(digit) {
  if (!call || call.ws.readyState !== WebSocket.OPEN) return false;
  call.ws.send(JSON.stringify({ type: "dtmf", digit }));
  return true;
}

// A server that requires auth: the backend that serves this page links to it as /?token=<token>
// (minted by `voxline token` or POST /tokens); the page passes it on /ws/call (docs/security.md).
const accessToken = new URLSearchParams(location.search).get("token");

button.addEventListener("click", () => (call ? endCall() : startCall()));
// Keys 0-9, * and # send DTMF during a call (for menus and "press 1" flows).
document.addEventListener("keydown", (e) => {
  if (/^[0-9*#]$/.test(e.key) && sendDtmf(e.key)) e.preventDefault();
});

fetch("/health", { headers: accessToken ? { Authorization: `Bearer ${accessToken}` } : {} }).then((r) => r.json()).then((h) => {
  if (h.agent) document.getElementById("agent").textContent = h.agent;
}).catch(() => {});

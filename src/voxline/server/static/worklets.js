// AudioWorklet processors for the voxline page: microphone capture and low-latency playback.
// They run on the audio rendering thread; the main thread only moves buffers through their ports.

const WIRE_RATE = 16000; // what the page sends and asks the server to send back
const FRAME = WIRE_RATE / 50; // 20 ms

// Microphone → 16 kHz s16le, posted as 20 ms ArrayBuffers.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / WIRE_RATE; // input samples per output sample
    this.phase = 0;
    this.sum = 0;
    this.count = 0;
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
  }

  push(value) {
    const s = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = s < 0 ? s * 32768 : s * 32767;
    if (this.filled === FRAME) {
      this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
      this.frame = new Int16Array(FRAME);
      this.filled = 0;
    }
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    if (this.step === 1) {
      for (let i = 0; i < channel.length; i++) this.push(channel[i]);
      return true;
    }
    // Averaging each output sample's span of input is a cheap low-pass that keeps aliasing down
    // well enough for speech recognition, and handles any ratio (44.1 kHz included).
    for (let i = 0; i < channel.length; i++) {
      this.sum += channel[i];
      this.count++;
      this.phase += 1;
      if (this.phase >= this.step) {
        this.phase -= this.step;
        this.push(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
      }
    }
    return true;
  }
}

// 16 kHz s16 chunks from the server → a ring buffer at the context rate → the speakers.
// A "clear" message empties it at once (barge-in).
class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ring = new Float32Array(sampleRate * 20);
    this.read = 0;
    this.size = 0;
    this.step = WIRE_RATE / sampleRate; // wire samples per output sample
    this.pos = 0; // fractional position into the pending wire samples
    this.prev = 0; // last wire sample of the previous chunk, for interpolation across chunks
    this.played = 0;
    this.sinceReport = 0;
    this.port.onmessage = (event) => {
      const msg = event.data;
      if (msg.type === "audio") this.enqueue(new Int16Array(msg.samples));
      else if (msg.type === "clear") this.clear();
    };
  }

  clear() {
    this.read = 0;
    this.size = 0;
    this.pos = 0;
    this.prev = 0;
  }

  write(value) {
    const cap = this.ring.length;
    if (this.size === cap) { // overflow: drop the oldest sample rather than the newest
      this.read = (this.read + 1) % cap;
      this.size--;
    }
    this.ring[(this.read + this.size) % cap] = value;
    this.size++;
  }

  enqueue(pcm) {
    // Linear interpolation between consecutive wire samples (prev, pcm[0], pcm[1], ...).
    const n = pcm.length;
    let pos = this.pos;
    while (pos < n) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = i === 0 ? this.prev : pcm[i - 1] / 32768;
      const b = pcm[i] / 32768;
      this.write(a + (b - a) * frac);
      pos += this.step;
    }
    this.pos = pos - n;
    this.prev = pcm[n - 1] / 32768;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    let n = 0;
    while (n < out.length && this.size > 0) {
      out[n++] = this.ring[this.read];
      this.read = (this.read + 1) % this.ring.length;
      this.size--;
    }
    out.fill(0, n);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    this.played += n;
    this.sinceReport += out.length;
    if (this.sinceReport >= sampleRate / 10) { // ~10 reports a second for the page's stats
      this.sinceReport = 0;
      this.port.postMessage({ played: this.played, buffered: this.size, rate: sampleRate });
    }
    return true;
  }
}

registerProcessor("voxline-capture", CaptureProcessor);
registerProcessor("voxline-player", PlayerProcessor);

// The store page's camera: scan pickup QR codes with the browser's BarcodeDetector.
// Owns the camera stream and the detect loop; knows nothing about orders. Where the browser
// has no BarcodeDetector for QR codes (or no camera API), `available()` says no and the page
// hides its scan button: typing the code is the way then.

const DETECT_EVERY_MS = 150;

export class Scanner {
  /**
   * @param {object} o
   * @param {HTMLVideoElement} o.video
   * @param {(text: string) => boolean} o.onCode  a QR was read; false = busy, read it again later
   * @param {number} o.repeatMs  the same text within this time is the same scan
   * @param {(on: boolean, error?: string) => void} o.onState
   */
  constructor({ video, onCode, repeatMs, onState }) {
    this.video = video;
    this.onCode = onCode;
    this.repeatMs = repeatMs;
    this.onState = onState;
    this.stream = null;
    this.detector = null;
    this.timer = null;
    this.last = { text: null, at: 0 };
  }

  static async available() {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return false;
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      return formats.includes("qr_code");
    } catch {
      return false;
    }
  }

  get on() {
    return this.stream !== null;
  }

  async start() {
    if (this.stream) return;
    try {
      this.detector ??= new window.BarcodeDetector({ formats: ["qr_code"] });
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: "environment" } }, // the back camera, facing the customer
        audio: false,
      });
    } catch (err) {
      // No permission, no camera, or plain http on a LAN address (cameras need https).
      this.stream = null;
      this.onState(false, err?.message || String(err));
      return;
    }
    this.video.srcObject = this.stream;
    this.onState(true);
    await this.video.play().catch(() => {});
    this.loop();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.stream) return;
    for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.video.srcObject = null;
    this.onState(false);
  }

  async loop() {
    if (!this.stream) return;
    if (this.video.readyState >= 2) {
      try {
        const found = await this.detector.detect(this.video);
        const text = found[0]?.rawValue;
        const now = Date.now();
        if (text && text === this.last.text && now - this.last.at < this.repeatMs) {
          this.last.at = now; // still held up to the camera: the same scan, not a new one
        } else if (text && this.onCode(text)) {
          this.last = { text, at: now };
          navigator.vibrate?.(40);
        }
      } catch {
        // A frame the detector could not read; the next one may do.
      }
    }
    if (this.stream) this.timer = setTimeout(() => this.loop(), DETECT_EVERY_MS);
  }
}

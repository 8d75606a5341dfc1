/**
 * Binary frames kept for reuse, at most this many, each at most FRAME_POOL_MAX_BYTES: a runner sends one frame
 * per chunk, and a fresh 64 KiB buffer per chunk counts as external memory to V8, which then runs a major GC
 * every few dozen MB (bench/history/README.md, the CPU budget of one stream).
 */
const FRAME_POOL_SIZE = 8;
const FRAME_POOL_MAX_BYTES = 1024 * 1024 + 64 * 1024;
/** Kept frames are allocated in steps of this many bytes, so chunks of nearby sizes share them; smaller ones are not kept. */
const FRAME_STEP = 16 * 1024;
/**
 * Frames smaller than FRAME_STEP are cut one after another from a slab of this many bytes: one allocation for
 * dozens of frames (a line-buffered command's chunk is one line). A slab is never written twice: it goes when
 * its last frame does.
 */
const FRAME_SLAB_BYTES = 64 * 1024;

/** The memory of a client's binary frames: small ones cut from a slab, large ones kept for reuse once answered. */
export class FramePool {
  /** Frames of answered requests, free for the next ones (see FRAME_POOL_SIZE). */
  readonly #frames: Uint8Array[] = [];
  /** The slab small frames are cut from (FRAME_SLAB_BYTES), and where its free part starts. */
  #slab = new Uint8Array(0);
  #slabAt = 0;

  /** A frame's memory: the next part of the slab for a small one, else a kept frame large enough, else a new one (in FRAME_STEP steps when it may be kept). */
  readonly allocate = (size: number): Uint8Array => {
    if (size < FRAME_STEP) {
      if (this.#slabAt + size > this.#slab.length) {
        this.#slab = new Uint8Array(FRAME_SLAB_BYTES);
        this.#slabAt = 0;
      }
      const frame = this.#slab.subarray(this.#slabAt, this.#slabAt + size);
      this.#slabAt += (size + 7) & ~7;
      return frame;
    }
    for (let i = 0; i < this.#frames.length; i++) {
      if (this.#frames[i]!.byteLength >= size) return this.#frames.splice(i, 1)[0]!.subarray(0, size);
    }
    // Frames over the bound are not kept.
    if (size > FRAME_POOL_MAX_BYTES) return new Uint8Array(size);
    return new Uint8Array(Math.ceil(size / FRAME_STEP) * FRAME_STEP).subarray(0, size);
  };

  /** The request `frame` went in was answered: the server has read all of it, so its memory may be written again. */
  release(frame: Uint8Array): void {
    // A small frame's memory is part of a slab, never kept.
    const kept = frame.byteLength >= FRAME_STEP ? frame.buffer.byteLength : 0;
    if (kept >= FRAME_STEP && kept <= FRAME_POOL_MAX_BYTES && this.#frames.length < FRAME_POOL_SIZE) {
      this.#frames.push(new Uint8Array(frame.buffer, 0, kept));
    }
  }
}

/**
 * Keeps a command's output within a character limit while it arrives: the first half and the last half
 * of the limit, so both how a command started and how it ended (usually the error) reach the model.
 */
export class OutputBuffer {
  #head = '';
  #tail = '';
  #total = 0;
  #split = false;

  constructor(private readonly limit: number | undefined) {}

  /** Adds the next piece of the stream. */
  append(text: string): void {
    this.#total += text.length;
    if (this.limit === undefined) {
      this.#head += text;
      return;
    }
    const tailSize = Math.floor(this.limit / 2);
    if (!this.#split) {
      this.#head += text;
      if (this.#head.length <= this.limit) return;
      // The limit was just passed: from now on only the head and a rolling tail are kept.
      this.#split = true;
      const headSize = this.limit - tailSize;
      this.#tail = tailSize > 0 ? this.#head.slice(headSize).slice(-tailSize) : '';
      this.#head = this.#head.slice(0, headSize);
      return;
    }
    if (tailSize > 0) this.#tail = (this.#tail + text).slice(-tailSize);
  }

  /** True when characters were dropped. */
  get truncated(): boolean {
    return this.#split;
  }

  /** The kept text, with a marker saying how many characters were dropped where they were dropped. */
  toString(): string {
    if (!this.#split) return this.#head;
    const dropped = this.#total - this.#head.length - this.#tail.length;
    return `${this.#head}\n…[${dropped} characters truncated]…\n${this.#tail}`;
  }
}

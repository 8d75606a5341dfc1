/**
 * The producer contract. A producer turns a tool call into a proposal and, on
 * acceptance, opens data channels that its owner (a runner, or the accepting
 * client) streams into. `sh` and `env` are producers; a new one registers the
 * same way (plugins call `registerProducer`, which also declares its scheme).
 */
export interface ProducerDefinition {
  /** The tool name, also the URI scheme of its data channels. */
  tool: string;
  description: string;
  /** Channel numbers (file-descriptor style) and their names, created at 102 on accept. */
  channels: Record<number, string>;
  /** Read-only producers are the only ones offered in `ask` mode. */
  readOnly: boolean;
}

export class ProducerRegistry {
  readonly #producers = new Map<string, ProducerDefinition>();

  get(tool: string): ProducerDefinition | undefined {
    return this.#producers.get(tool);
  }

  list(): ProducerDefinition[] {
    return [...this.#producers.values()];
  }

  register(def: ProducerDefinition): void {
    if (this.#producers.has(def.tool)) throw new Error(`Producer "${def.tool}" is already registered`);
    const numbers = Object.keys(def.channels).map(Number);
    if (numbers.length === 0 || numbers.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new Error(`Producer "${def.tool}" must declare channels numbered from 1`);
    }
    this.#producers.set(def.tool, def);
  }
}

import type { Role } from "../protocol/roles.js";
import type { MethodDefinition, NotificationDefinition } from "./method.js";

/** All methods and notifications of a server; frozen once the server starts. */
export class MethodRegistry {
  readonly methods = new Map<string, MethodDefinition & { plugin: string; role: Role }>();
  readonly notifications = new Map<string, NotificationDefinition & { plugin: string }>();
  #frozen = false;

  addMethod(def: MethodDefinition, plugin: string): void {
    this.#assertOpen(`method "${def.name}"`);
    const existing = this.methods.get(def.name);
    if (existing) {
      throw new Error(`Method "${def.name}" registered by plugin "${plugin}" is already registered by plugin "${existing.plugin}"`);
    }
    // A method that says nothing of who may call it is for admins only: nothing opens up by being left out.
    this.methods.set(def.name, { ...def, role: def.role ?? "admin", plugin });
  }

  addNotification(def: NotificationDefinition, plugin: string): void {
    this.#assertOpen(`notification "${def.name}"`);
    const existing = this.notifications.get(def.name);
    if (existing) {
      throw new Error(`Notification "${def.name}" registered by plugin "${plugin}" is already registered by plugin "${existing.plugin}"`);
    }
    this.notifications.set(def.name, { ...def, plugin });
  }

  freeze(): void {
    this.#frozen = true;
  }

  #assertOpen(what: string): void {
    if (this.#frozen) throw new Error(`Cannot register ${what} after the server has started; register it in a plugin's setup()`);
  }
}

/**
 * Typed services. A key carries its service's type, so `use(KEY)` returns
 * what `provide(KEY, …)` was given without the caller choosing the type.
 */
export interface ServiceKey<T> {
  readonly name: string;
  /** Type marker only; never set. */
  readonly __type?: T;
}

export function serviceKey<T>(name: string): ServiceKey<T> {
  return { name };
}

/** Looks services up: `use` when the service must exist, `find` when it is optional. */
export interface Services {
  use<T>(key: ServiceKey<T>): T;
  find<T>(key: ServiceKey<T>): T | undefined;
}

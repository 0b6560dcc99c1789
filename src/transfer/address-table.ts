/**
 * Values by source address. An entry is never overwritten: the first value added for an
 * address keeps it until that value itself is deleted. Looked up for every datagram, so by port first (a number: no
 * string is built per datagram) and then by host among the few entries on that port.
 */
export class AddressTable<T> {
  readonly #byPort = new Map<number, Array<{ readonly host: string; readonly value: T }>>();

  get(host: string, port: number): T | undefined {
    const entries = this.#byPort.get(port);
    if (entries === undefined) return undefined;
    for (const e of entries) if (e.host === host) return e.value;
    return undefined;
  }

  /** Maps host:port to `value` unless the address is taken; returns whether it was added. */
  add(host: string, port: number, value: T): boolean {
    let entries = this.#byPort.get(port);
    if (entries === undefined) {
      entries = [];
      this.#byPort.set(port, entries);
    }
    if (entries.some((e) => e.host === host)) return false;
    entries.push({ host, value });
    return true;
  }

  /** Forgets host:port if it maps to `value`. */
  delete(host: string, port: number, value: T): void {
    const entries = this.#byPort.get(port);
    if (entries === undefined) return;
    const kept = entries.filter((e) => !(e.host === host && e.value === value));
    if (kept.length === 0) this.#byPort.delete(port);
    else this.#byPort.set(port, kept);
  }
}

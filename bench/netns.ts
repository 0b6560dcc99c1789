/**
 * Kernel-level packet loss: a private network namespace whose loopback drops a random
 * fraction of incoming UDP datagrams (`iptables -m statistic --mode random`; this kernel
 * has no `tc netem`). Every datagram between two processes in the namespace crosses lo's
 * INPUT once, so the rule's probability is the path's loss rate; TCP (the tracker link)
 * is not touched. Needs root, `ip` and `iptables`; the namespace is deleted at the end,
 * also on failure and on interrupt.
 */
import { runSync } from "./proc.js";
import { which } from "./util.js";

const created = new Set<string>();

export type NetnsProbe = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Whether kernel-level loss can be used here, and why not. */
export function probeNetns(): NetnsProbe {
  if (process.getuid?.() !== 0) return { ok: false, reason: "needs root (run the benchmark as root to add it)" };
  const missing = ["ip", "iptables"].filter((t) => which(t) === undefined);
  if (missing.length > 0) {
    return { ok: false, reason: `${missing.join(", ")} not found (apt-get install iproute2 iptables)` };
  }
  let ns: LossNamespace | undefined;
  try {
    ns = LossNamespace.create(`udpswarm-bench-probe-${process.pid}`);
    ns.setLoss(0.1);
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    ns?.delete();
  }
}

export class LossNamespace {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  static create(name = `udpswarm-bench-${process.pid}`): LossNamespace {
    const add = runSync("ip", ["netns", "add", name]);
    if (!add.ok) throw new Error(`ip netns add ${name}: ${add.output}`);
    created.add(name);
    const ns = new LossNamespace(name);
    const up = runSync("ip", ["-n", name, "link", "set", "lo", "up"]);
    if (!up.ok) {
      ns.delete();
      throw new Error(`ip -n ${name} link set lo up: ${up.output}`);
    }
    return ns;
  }

  /** Replaces the namespace's INPUT rules by one dropping the fraction `p` of UDP. */
  setLoss(p: number): void {
    const iptables = (...args: string[]) => {
      const r = runSync("ip", ["netns", "exec", this.name, "iptables", ...args]);
      if (!r.ok) throw new Error(`iptables ${args.join(" ")} in ${this.name}: ${r.output}`);
    };
    iptables("-F", "INPUT");
    if (p > 0) {
      iptables(
        "-A",
        "INPUT",
        "-p",
        "udp",
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        String(p),
        "-j",
        "DROP",
      );
    }
  }

  delete(): void {
    runSync("ip", ["netns", "del", this.name]);
    created.delete(this.name);
  }
}

/** Deletes every namespace still there (synchronous: also used by exit handlers). */
export function deleteAllNamespaces(): void {
  for (const name of created) {
    runSync("ip", ["netns", "del", name]);
    created.delete(name);
  }
}

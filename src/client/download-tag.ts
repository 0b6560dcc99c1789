/**
 * Whose a client's partial download is (SPEC §12): the user, the group it comes from and
 * the destination folder, kept as the staging record's tag. Part of the partial's identity:
 * a restart takes it up for the same user, group and destination only, and a version of the
 * same name from another group never discards it.
 */
export type DownloadOwner = { readonly user: string; readonly group: string; readonly dest: string };

const KIND = "client";

export function downloadTag(o: DownloadOwner): string {
  return JSON.stringify([KIND, o.user, o.group, o.dest]);
}

/** The owner a tag names, or undefined for a tag that is not a client's (or is damaged). */
export function parseDownloadTag(tag: string): DownloadOwner | undefined {
  let v: unknown;
  try {
    v = JSON.parse(tag);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v) || v.length !== 4 || v[0] !== KIND) return undefined;
  const [, user, group, dest] = v as unknown[];
  if (typeof user !== "string" || typeof group !== "string" || typeof dest !== "string") return undefined;
  return { user, group, dest };
}

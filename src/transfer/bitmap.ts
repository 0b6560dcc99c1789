/**
 * The bitmap and its run codec moved to wire/ (the tracker shares them and must not
 * import the peer's data path); this path stays for the data path's existing imports.
 */
export { Bitmap, flattenRuns, parseRuns, runsOf } from "../wire/bitmap.js";

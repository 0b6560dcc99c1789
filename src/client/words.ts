/**
 * Splits a command line into words as a shell would for plain arguments: blanks separate
 * words; "double" and 'single' quotes keep blanks; a backslash escapes the next character
 * (outside single quotes). No expansion of any kind. Returns an error for an open quote.
 */
export function splitWords(line: string): string[] | { readonly error: string } {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && (line[i + 1] === '"' || line[i + 1] === "\\")) word += line[++i];
      else word += c;
      continue;
    }
    if (c === " " || c === "\t") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === '"' || c === "'") quote = c;
    else if (c === "\\" && i + 1 < line.length) word += line[++i];
    else word += c;
  }
  if (quote !== undefined) return { error: `unterminated ${quote === '"' ? "double" : "single"} quote` };
  if (inWord) words.push(word);
  return words;
}

/** The client's commands (SPEC §10): name, arguments, and one line of help. */
export type CommandSpec = { readonly name: string; readonly args: readonly string[]; readonly help: string };

export const COMMANDS: readonly CommandSpec[] = [
  { name: "create_user", args: ["USER", "PASSWORD"], help: "create an account" },
  { name: "login", args: ["USER", "PASSWORD"], help: "log in (the session is kept in ./.udpswarm/)" },
  { name: "logout", args: [], help: "log out and stop sharing until the next login" },
  { name: "create_group", args: ["GROUP"], help: "create a group; you are its owner" },
  { name: "join_group", args: ["GROUP"], help: "ask the owner of GROUP to let you in" },
  { name: "leave_group", args: ["GROUP"], help: "leave GROUP (an owner hands it to the longest-standing member)" },
  { name: "list_groups", args: [], help: "every group, its owner, and your standing in it" },
  { name: "list_requests", args: ["GROUP"], help: "pending requests to join GROUP (owner only)" },
  { name: "accept_request", args: ["GROUP", "USER"], help: "let USER into GROUP (owner only)" },
  { name: "reject_request", args: ["GROUP", "USER"], help: "turn USER's request down (owner only)" },
  { name: "upload_file", args: ["PATH", "GROUP"], help: "share the file at PATH with GROUP while this client runs" },
  { name: "list_files", args: ["GROUP"], help: "the files of GROUP and who shares them (members only)" },
  { name: "download_file", args: ["GROUP", "FILE", "DEST_DIR"], help: "fetch FILE from every sharer into DEST_DIR" },
  { name: "stop_share", args: ["GROUP", "FILE"], help: "stop sharing FILE with GROUP" },
  { name: "show_downloads", args: [], help: "[D] GROUP FILE PERCENT while downloading, [C] GROUP FILE once complete" },
  { name: "help", args: [], help: "this list" },
  { name: "quit", args: [], help: "leave (downloads in progress are dropped)" },
];

export const COMMAND_NAMES: readonly string[] = COMMANDS.map((c) => c.name);

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export function usageOf(c: CommandSpec): string {
  return [c.name, ...c.args].join(" ");
}

export function helpText(): string[] {
  const width = Math.max(...COMMANDS.map((c) => usageOf(c).length));
  return COMMANDS.map((c) => `${usageOf(c).padEnd(width)}  ${c.help}`);
}

/** Completion of a command name at the start of the line (node:readline's completer). */
export function completeCommand(line: string): [string[], string] {
  if (/\s/u.test(line.trimStart())) return [[], line];
  const word = line.trimStart();
  const hits = COMMAND_NAMES.filter((n) => n.startsWith(word));
  return [hits.length > 0 ? hits.map((h) => `${h} `) : [], word];
}

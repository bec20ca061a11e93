import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "A refused write changes nothing (an update)",
  breakage: "src/domain/talks.ts: updateTalk writes the new name when the call is refused",
  edits: [
    {
      file: "src/domain/talks.ts",
      find: [
        '  await deps.writeLimits.take(caller, "edits");',
        "  return changeOwnTalk(deps, caller, id, (change) => {",
        "    change.requireActive();",
        "    if (name === undefined && detail === undefined) return change.talk;",
        "    const talk = change.updateTalk({ name: name ?? change.talk.name, detail: detail ?? change.talk.detail });",
        '    change.record({ type: "talk_updated", talk });',
        "    return change.talk;",
        "  });",
      ].join("\n"),
      replace: [
        '  await deps.writeLimits.take(caller, "edits");',
        "  try {",
        "    return await changeOwnTalk(deps, caller, id, (change) => {",
        "      change.requireActive();",
        "      if (name === undefined && detail === undefined) return change.talk;",
        "      const talk = change.updateTalk({ name: name ?? change.talk.name, detail: detail ?? change.talk.detail });",
        '      change.record({ type: "talk_updated", talk });',
        "      return change.talk;",
        "    });",
        "  } catch (error) {",
        '    if (name !== undefined) await deps.db.updateTable("talks").set({ name }).where("id", "=", id).execute();',
        "    throw error;",
        "  }",
      ].join("\n"),
    },
  ],
  suites: [{ file: "test/security/authz-matrix.test.ts" }, { file: "test/security/fuzz.test.ts", filter: "aimed at the fixture" }],
});

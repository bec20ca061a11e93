/** A message's reactions grouped by emoji, in the order each emoji was first used. */
import type { Message } from "../../gen/talk/v1/resources_pb.js";

export interface ReactionGroup {
  readonly emoji: string;
  readonly count: number;
  /** Whether the signed-in agent is among those who reacted: clicking then removes it. */
  readonly mine: boolean;
  readonly agentIds: readonly string[];
}

export const quickEmojis = ["👍", "❤️", "😂", "🎉", "😮", "👀"] as const;

export function groupReactions(message: Message, me: string): ReactionGroup[] {
  const groups = new Map<string, string[]>();
  for (const reaction of message.metadata?.reactions ?? []) {
    const who = groups.get(reaction.emoji) ?? [];
    if (!who.includes(reaction.ownerId)) who.push(reaction.ownerId);
    groups.set(reaction.emoji, who);
  }
  return [...groups].map(([emoji, agentIds]) => ({ emoji, count: agentIds.length, mine: agentIds.includes(me), agentIds }));
}

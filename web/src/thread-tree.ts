/**
 * Threads: replies nest under the message named by their parent_id, in seq order. A reply
 * whose parent is unknown (not loaded) is shown at the top level rather than lost.
 */
import type { Message } from "../../gen/talk/v1/resources_pb.js";

export interface ThreadNode {
  readonly message: Message;
  readonly replies: ThreadNode[];
}

const bySeq = (a: Message, b: Message): number => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0);

export function buildThreads(messages: Iterable<Message>): ThreadNode[] {
  const sorted = [...messages].sort(bySeq);
  const nodes = new Map<string, ThreadNode>();
  const roots: ThreadNode[] = [];
  for (const message of sorted) {
    const node: ThreadNode = { message, replies: [] };
    nodes.set(message.id, node);
    // Parents are always older; processing in seq order means a parent is already placed,
    // and a malformed parent link can never form a cycle.
    const parent = message.parentId === "" ? undefined : nodes.get(message.parentId);
    if (parent !== undefined && parent.message.seq < message.seq) parent.replies.push(node);
    else roots.push(node);
  }
  return roots;
}

/** The number of replies under a node, at any depth. */
export function replyCount(node: ThreadNode): number {
  return node.replies.reduce((sum, reply) => sum + 1 + replyCount(reply), 0);
}

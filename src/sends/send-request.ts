/** A validated send, and what takes it: the domain's view of the send path. */
import type { Identity } from "../domain/model/identity.js";
import type { MessageId, TalkId } from "../domain/model/ids.js";
import type { Media, Message } from "../domain/model/model.js";

/** A send whose fields have been validated (domain/messages.ts); its rules are judged later. */
export interface SendRequest {
  readonly caller: Identity;
  readonly talkId: TalkId;
  readonly text: string;
  readonly medias: readonly Media[];
  readonly parentId: MessageId | null;
  readonly clientMessageId: string | null;
}

/** Commits sends: the group commit of send-batcher.ts, built once per process in service.ts. */
export interface Sends {
  /** The message written, the first message of a retry, or the error the send gets. */
  submit(request: SendRequest): Promise<Message>;
}

/** The limits the rules enforce; docs/api.md lists them for clients. */
export const limits = {
  /** Message text, in characters (Unicode code points). */
  maxTextLength: 10_000,
  maxMediasPerMessage: 10,
  maxMediaUrlLength: 2_048,
  maxMediaNameLength: 255,
  maxMediaTypeLength: 255,
  /** Emoji: a short name ("thumbsup") or the character(s) themselves. */
  maxEmojiLength: 64,
  /** Reactions (agent + emoji pairs) on one message. */
  maxReactionsPerMessage: 500,
  maxTalkNameLength: 200,
  maxTalkDetailLength: 2_000,
  maxAgentNameLength: 200,
  maxClientMessageIdLength: 128,
  /** Others a talk may be created with, besides the caller. */
  maxInitialParticipants: 100,
  defaultPageSize: 50,
  maxPageSize: 200,
} as const;

import type { ColumnType } from "kysely";

/** A media attachment as stored in messages.medias (jsonb). */
export interface MediaJson {
  type: string;
  url: string;
  name: string;
}

/** messages: seq is the seq of the message_created event and orders the talk's messages. */
export interface MessagesTable {
  id: string;
  customer_id: string;
  chat_id: string;
  seq: ColumnType<number, number, never>;
  parent_id: string | null;
  owner_type: string;
  owner_id: string | null;
  type: string;
  text: string;
  medias: ColumnType<MediaJson[], string, string>;
  client_message_id: string | null;
  tm_create: ColumnType<Date, Date, never>;
  tm_update: Date;
  tm_delete: Date | null;
}

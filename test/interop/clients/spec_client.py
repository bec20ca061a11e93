#!/usr/bin/env python3
"""A client of the Talk API written from the spec's text (talk-api-reference) alone.

Python 3 standard library only: urllib for REST, json, and a minimal WebSocket client over a
socket. It walks the spec's tutorial and curl examples and checks every field the spec's
examples show, in the spec's types and formats: timestamps "2024-01-17 10:30:00.000000",
tm_delete "" on live talks and messages and a timestamp on deleted ones, parent_id only on
replies, medias [] and metadata.reactions [] on a fresh message.

Where the spec says nothing, the client follows Talkhub's docs (docs/events.md): the
WebSocket's subscribe frame and topic, and chat_id on the message list (the spec's tutorial
lists without it).

Usage: spec_client.py <base url> <customer id> <agent A id> <token A> <agent B id> <token B>
       <agent C id>
Prints "ok <number of checks>" and exits 0, or prints the first failed check and exits 1.
"""
import base64
import hashlib
import json
import os
import re
import socket
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request

TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EVENT_TYPES = {
    "message_created", "message_updated", "message_deleted", "reaction_added",
    "reaction_removed", "participant_joined", "participant_left",
}

checks = 0


class CheckFailed(Exception):
    pass


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        raise CheckFailed(what)


def is_time(value):
    return isinstance(value, str) and TIME.match(value) is not None


def is_uuid(value):
    return isinstance(value, str) and UUID.match(value) is not None


# ------------------------------------------------------------------------------------------
# REST, as the spec's curl examples call it: ?token=, Content-Type: application/json
# ------------------------------------------------------------------------------------------

def call(base, method, path, token, body=None):
    sep = "&" if "?" in path else "?"
    url = f"{base}{path}{sep}token={urllib.parse.quote(token)}"
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"{method} {path}: HTTP {error.code} {error.read().decode('utf-8', 'replace')}")


# ------------------------------------------------------------------------------------------
# The spec's resources, field by field
# ------------------------------------------------------------------------------------------

def check_talk(talk, customer_id, deleted=False):
    where = f"talk {talk.get('id')}"
    check(is_uuid(talk["id"]), f"{where}: id is a UUID")
    check(talk["customer_id"] == customer_id, f"{where}: customer_id")
    check(talk["type"] in ("normal", "group"), f"{where}: type {talk['type']!r} is normal or group")
    for key in ("tm_create", "tm_update"):
        check(is_time(talk[key]), f"{where}: {key} {talk[key]!r} in the spec's format")
    if deleted:
        check(is_time(talk["tm_delete"]), f"{where}: tm_delete {talk['tm_delete']!r} is a timestamp once deleted")
    else:
        check(talk["tm_delete"] == "", f"{where}: tm_delete {talk.get('tm_delete')!r} is \"\" while live")


def check_participant(participant, customer_id, chat_id, owner_id):
    where = f"participant {participant.get('id')}"
    check(is_uuid(participant["id"]), f"{where}: id is a UUID")
    check(participant["customer_id"] == customer_id, f"{where}: customer_id")
    check(participant["owner_type"] == "agent", f"{where}: owner_type agent")
    check(participant["owner_id"] == owner_id, f"{where}: owner_id")
    check(participant["chat_id"] == chat_id, f"{where}: chat_id")
    check(is_time(participant["tm_joined"]), f"{where}: tm_joined {participant['tm_joined']!r} in the spec's format")


def check_reaction(reaction, emoji, owner_id):
    check(reaction["emoji"] == emoji, f"reaction emoji {reaction['emoji']!r}")
    check(reaction["owner_type"] == "agent", "reaction owner_type agent")
    check(reaction["owner_id"] == owner_id, "reaction owner_id")
    check(is_time(reaction["tm_create"]), f"reaction tm_create {reaction['tm_create']!r} in the spec's format")


def check_message(message, customer_id, chat_id, owner_id=None, parent_id=None, deleted=False):
    where = f"message {message.get('id')}"
    check(is_uuid(message["id"]), f"{where}: id is a UUID")
    check(message["customer_id"] == customer_id, f"{where}: customer_id")
    check(message["chat_id"] == chat_id, f"{where}: chat_id")
    check(message["type"] in ("normal", "system"), f"{where}: type {message['type']!r}")
    check(message["owner_type"] in ("agent", "system"), f"{where}: owner_type {message['owner_type']!r}")
    if owner_id is not None:
        check(message["owner_type"] == "agent" and message["owner_id"] == owner_id, f"{where}: owner agent {owner_id}")
    if parent_id is None:
        # The tutorial's top-level messages carry no parent_id.
        check("parent_id" not in message, f"{where}: no parent_id on a top-level message ({message.get('parent_id')!r})")
    else:
        check(message["parent_id"] == parent_id, f"{where}: parent_id {message.get('parent_id')!r}")
    check(isinstance(message["text"], str), f"{where}: text is a string")
    check(isinstance(message["medias"], list), f"{where}: medias is an array")
    for media in message["medias"]:
        check(all(isinstance(media[k], str) for k in ("type", "url", "name")), f"{where}: media type, url, name")
    check(isinstance(message["metadata"], dict) and isinstance(message["metadata"]["reactions"], list),
          f"{where}: metadata.reactions is an array")
    for reaction in message["metadata"]["reactions"]:
        check_reaction(reaction, reaction["emoji"], reaction["owner_id"])
    for key in ("tm_create", "tm_update"):
        check(is_time(message[key]), f"{where}: {key} {message[key]!r} in the spec's format")
    if deleted:
        check(is_time(message["tm_delete"]), f"{where}: tm_delete {message['tm_delete']!r} is a timestamp once deleted")
    else:
        check(message["tm_delete"] == "", f"{where}: tm_delete {message.get('tm_delete')!r} is \"\" while live")


def check_times_anywhere(value, where):
    """Every tm_* at any depth: the spec's format, or "" for an unset tm_delete."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("tm_"):
                check(is_time(item) or (key == "tm_delete" and item == ""), f"{where}.{key} {item!r} in the spec's format")
            else:
                check_times_anywhere(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_times_anywhere(item, f"{where}[{i}]")


# ------------------------------------------------------------------------------------------
# A minimal WebSocket client (RFC 6455): handshake, masked text frames out, frames in
# ------------------------------------------------------------------------------------------

class WebSocket:
    def __init__(self, base, path):
        parsed = urllib.parse.urlsplit(base)
        self.sock = socket.create_connection((parsed.hostname, parsed.port or 80), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        self.sock.sendall((
            f"GET {path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode("ascii"))
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise CheckFailed("WebSocket: connection closed during the handshake")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        check(lines[0].split(" ")[1] == "101", f"WebSocket handshake: {lines[0]}")
        headers = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip() for line in lines[1:]}
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode("ascii")).digest()).decode("ascii")
        check(headers.get("sec-websocket-accept") == accept, "WebSocket handshake: Sec-WebSocket-Accept")

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = bytes([0x80 | opcode, 0x80 | length])
        elif length < 65536:
            header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_json(self, value):
        self._send(0x1, json.dumps(value).encode("utf-8"))

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise CheckFailed("WebSocket: connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive_json(self, timeout):
        """The next text frame as JSON, or None when none comes within timeout seconds."""
        self.sock.settimeout(timeout)
        try:
            while True:
                first, second = self._read(2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    length = int.from_bytes(self._read(2), "big")
                elif length == 127:
                    length = int.from_bytes(self._read(8), "big")
                payload = self._read(length)
                if opcode == 0x9:
                    self._send(0xA, payload)
                elif opcode == 0x8:
                    raise CheckFailed(f"WebSocket closed by the server: {payload[2:].decode('utf-8', 'replace')}")
                elif opcode == 0x1:
                    return json.loads(payload.decode("utf-8"))
        except socket.timeout:
            return None

    def close(self):
        try:
            self._send(0x8, (1000).to_bytes(2, "big"))
        finally:
            self.sock.close()


# ------------------------------------------------------------------------------------------
# The walk
# ------------------------------------------------------------------------------------------

def main(base, customer_id, a_id, a_token, b_id, b_token, c_id):
    # Real-Time Updates: agent B connects and subscribes to its talk events.
    ws = WebSocket(base, f"/v1.0/ws?token={urllib.parse.quote(b_token)}")
    topic = f"agent_id:{b_id}:talk_chat:*"
    ws.send_json({"type": "subscribe", "topics": [topic]})
    ack = ws.receive_json(10)
    check(ack is not None and ack.get("type") == "ack" and ack.get("topics") == [topic], f"WebSocket subscribe acknowledged: {ack}")

    # Tutorial: Create a Talk.
    talk = call(base, "POST", "/v1.0/service_agents/talk_chats", a_token, {"type": "normal"})
    check_talk(talk, customer_id)
    check(talk["type"] == "normal", "the tutorial's talk is normal")
    chat_id = talk["id"]

    # Tutorial: Add Participants.
    participant = call(base, "POST", f"/v1.0/service_agents/talk_chats/{chat_id}/participants", a_token,
                       {"owner_type": "agent", "owner_id": b_id})
    check_participant(participant, customer_id, chat_id, b_id)

    # Tutorial: Send a Message.
    text = "Hello team! Let's discuss the new feature."
    hello = call(base, "POST", "/v1.0/service_agents/talk_messages", a_token, {"chat_id": chat_id, "type": "normal", "text": text})
    check_message(hello, customer_id, chat_id, owner_id=a_id)
    check(hello["text"] == text and hello["type"] == "normal", "the message's text and type")
    check(hello["medias"] == [] and hello["metadata"] == {"reactions": []}, "a fresh message: medias [] and metadata.reactions []")
    check(hello["tm_update"] == hello["tm_create"], "a fresh message: tm_update is tm_create")

    # A threaded reply (Reply to Message), by B.
    reply_text = "Great idea! I'll start working on the requirements."
    reply = call(base, "POST", "/v1.0/service_agents/talk_messages", b_token,
                 {"chat_id": chat_id, "type": "normal", "text": reply_text, "parent_id": hello["id"]})
    check_message(reply, customer_id, chat_id, owner_id=b_id, parent_id=hello["id"])

    # Tutorial: Add a Reaction (A reacts to B's reply).
    reacted = call(base, "POST", f"/v1.0/service_agents/talk_messages/{reply['id']}/reactions", a_token, {"emoji": "👍"})
    check_message(reacted, customer_id, chat_id, owner_id=b_id, parent_id=hello["id"])
    check(reacted["id"] == reply["id"], "the reaction answers the reacted message")
    check(len(reacted["metadata"]["reactions"]) == 1, "one reaction")
    check_reaction(reacted["metadata"]["reactions"][0], "👍", a_id)
    check(reacted["tm_update"] >= reacted["tm_create"], "tm_update not before tm_create (the format sorts as text)")
    check(reacted["tm_update"] == reacted["metadata"]["reactions"][0]["tm_create"], "the reaction moved tm_update to its time")

    # Tutorial: List Messages.
    listed = call(base, "GET", f"/v1.0/service_agents/talk_messages?page_size=50&chat_id={chat_id}", a_token)
    check(isinstance(listed["result"], list) and isinstance(listed["next_page_token"], str), "a list: result and next_page_token")
    by_id = {m["id"]: m for m in listed["result"]}
    check(hello["id"] in by_id and reply["id"] in by_id, "both messages listed")
    for message in listed["result"]:
        if message["type"] == "system":
            # System Messages: {"type": "system", "text": "Agent B joined the conversation."}
            check_message(message, customer_id, chat_id)
            check(message["text"].endswith("joined the conversation."), f"a system message: {message['text']!r}")
        else:
            check_message(message, customer_id, chat_id, parent_id=message.get("parent_id") or None)
    check(by_id[reply["id"]]["parent_id"] == hello["id"], "the listed reply keeps its parent_id")
    check(by_id[reply["id"]]["metadata"]["reactions"] == reacted["metadata"]["reactions"], "the listed reply's reactions")
    check("Agent B joined the conversation." in [m["text"] for m in listed["result"] if m["type"] == "system"],
          "the spec's system message for B's join")

    # Tutorial: Remove a Participant.
    removed = call(base, "DELETE", f"/v1.0/service_agents/talk_chats/{chat_id}/participants/{participant['id']}", a_token)
    check_participant(removed, customer_id, chat_id, b_id)
    check(removed["id"] == participant["id"] and removed["tm_joined"] == participant["tm_joined"], "the removed participant as it was")

    # Tutorial: Delete a Talk.
    deleted = call(base, "DELETE", f"/v1.0/service_agents/talk_chats/{chat_id}", a_token)
    check_talk(deleted, customer_id, deleted=True)
    check(deleted["id"] == chat_id and deleted["tm_create"] == talk["tm_create"], "the deleted talk as it was made")
    check(deleted["tm_update"] == deleted["tm_delete"], "the delete moved tm_update to tm_delete")

    # The curl examples: a group talk, messages (threading, media), a reaction, removal.
    group = call(base, "POST", "/v1.0/talks", a_token, {"name": "Project Discussion", "participant_ids": [b_id, c_id]})
    check_talk(group, customer_id)
    check(group["type"] == "group", "three agents make a group talk")
    basic = call(base, "POST", f"/v1.0/talks/{group['id']}/messages", a_token, {"text": "Hello team, let's discuss the project status."})
    check_message(basic, customer_id, group["id"], owner_id=a_id)
    threaded = call(base, "POST", f"/v1.0/talks/{group['id']}/messages", a_token,
                    {"text": "I agree, we should prioritize the API work.", "parent_id": basic["id"]})
    check_message(threaded, customer_id, group["id"], owner_id=a_id, parent_id=basic["id"])
    media = {"type": "application/pdf", "url": "https://storage.example.com/design-doc.pdf", "name": "design-document.pdf"}
    with_media = call(base, "POST", f"/v1.0/talks/{group['id']}/messages", a_token, {"text": "Here is the design document.", "medias": [media]})
    check_message(with_media, customer_id, group["id"], owner_id=a_id)
    check(with_media["medias"] == [media], "the media as sent")
    thumbs = call(base, "POST", f"/v1.0/messages/{basic['id']}/reactions", b_token, {"emoji": "thumbsup"})
    check_reaction(thumbs["metadata"]["reactions"][0], "thumbsup", b_id)
    members = call(base, "GET", f"/v1.0/talks/{group['id']}/participants", a_token)
    for member in members["result"]:
        check_participant(member, customer_id, group["id"], member["owner_id"])
    c_member = next(m for m in members["result"] if m["owner_id"] == c_id)
    check_participant(call(base, "DELETE", f"/v1.0/talks/{group['id']}/participants/{c_member['id']}", a_token), customer_id, group["id"], c_id)

    # A deleted message (soft delete) keeps its place and carries its tm_delete.
    gone = call(base, "DELETE", f"/v1.0/messages/{with_media['id']}", a_token)
    check_message(gone, customer_id, group["id"], owner_id=a_id, deleted=True)
    check(gone["tm_update"] >= gone["tm_create"], "the deleted message's tm_update")
    for talk_seen in call(base, "GET", "/v1.0/talks", a_token)["result"]:
        check_talk(talk_seen, customer_id)

    # The pushes B received: the spec's event types, the spec's resources inside.
    frames = []
    while True:
        frame = ws.receive_json(2)
        if frame is None:
            break
        frames.append(frame)
    ws.close()
    events = [f for f in frames if f.get("type") in EVENT_TYPES]
    check(all(isinstance(f.get("seq"), int) for f in events), f"event seqs are numbers: {[f.get('seq') for f in events]}")
    for frame in frames:
        check(frame.get("type") != "error", f"no error frame: {frame}")
        check_times_anywhere(frame, f"frame {frame.get('type')} {frame.get('seq')}")
    created = [f["message_created"] for f in events if f["type"] == "message_created"]
    pushed = {m["id"]: m for m in created}
    check(hello["id"] in pushed and reply["id"] in pushed, f"message_created pushed for both tutorial messages ({len(created)} seen)")
    check_message(pushed[hello["id"]], customer_id, chat_id, owner_id=a_id)
    check(pushed[hello["id"]] == hello, "the pushed message is the one the REST answer showed")
    check_message(pushed[reply["id"]], customer_id, chat_id, owner_id=b_id, parent_id=hello["id"])
    added = [f["reaction_added"] for f in events if f["type"] == "reaction_added"]
    check(any(a["message"]["id"] == reply["id"] for a in added), "reaction_added pushed")
    for change in added:
        check_reaction(change["reaction"], change["reaction"]["emoji"], change["reaction"]["owner_id"])
        check_message(change["message"], customer_id, change["message"]["chat_id"], parent_id=change["message"].get("parent_id") or None)
    joined = [f["participant_joined"] for f in events if f["type"] == "participant_joined"]
    check(any(j["participant"]["owner_id"] == b_id for j in joined), "participant_joined pushed for B")
    for change in joined:
        check_participant(change["participant"], customer_id, change["participant"]["chat_id"], change["participant"]["owner_id"])
        check_talk(change["talk"], customer_id)
    print(f"ok {checks}")


if __name__ == "__main__":
    try:
        main(*sys.argv[1:8])
    except CheckFailed as failure:
        print(f"FAILED after {checks} checks: {failure}")
        sys.exit(1)
    except (KeyError, TypeError) as crash:
        print(f"FAILED after {checks} checks: the answer did not have the spec's shape: {crash!r}")
        traceback.print_exc()
        sys.exit(1)

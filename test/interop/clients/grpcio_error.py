"""Python's grpcio (Debian's python3-grpcio) calls GetTalk with a bad id and prints the status
code's name and the error message as grpcio decodes it. No generated stubs: the request is
encoded by hand (GetTalkRequest.id is field 1, a string).
Usage: python3 grpcio_error.py <host:port> <token> <id> <gzip|identity>"""
import sys

import grpc

target, token, talk_id, encoding = sys.argv[1:5]
compression = grpc.Compression.Gzip if encoding == "gzip" else grpc.Compression.NoCompression
raw = talk_id.encode("utf-8")
request = b"\x0a" + bytes([len(raw)]) + raw
with grpc.insecure_channel(target, compression=compression) as channel:
    get_talk = channel.unary_unary("/talk.v1.TalkService/GetTalk", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        get_talk(request, metadata=[("authorization", "Bearer " + token)], timeout=30)
        print("OK")
    except grpc.RpcError as error:
        print(error.code().name)
        print(error.details())

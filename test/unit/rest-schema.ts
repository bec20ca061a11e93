/**
 * A small schema for the REST transcoder's unit tests, built in memory: messages with the
 * field kinds the transcoder treats differently (nested message, repeated, bool, enum) and
 * methods whose google.api.http rules are given per test, so that rules the real services do
 * not have (and malformed ones) can be tried.
 */
import { create, createFileRegistry, setExtension, type DescService } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { http } from "../../gen/google/api/annotations_pb.js";
import { HttpRuleSchema, type HttpRule } from "../../gen/google/api/http_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";

const T = FieldDescriptorProto_Type;
const L = FieldDescriptorProto_Label;

function field(
  name: string,
  number: number,
  type: FieldDescriptorProto_Type,
  more: { readonly typeName?: string; readonly label?: FieldDescriptorProto_Label } = {},
) {
  const jsonName = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return { name, number, type, label: L.OPTIONAL, jsonName, ...more };
}

export type RuleInit = MessageInitShape<typeof HttpRuleSchema>;

export interface MethodSpec {
  readonly name: string;
  readonly rule?: RuleInit;
  /** Server streaming. */
  readonly streaming?: boolean;
  readonly clientStreaming?: boolean;
}

/**
 * A service "test.v1.Svc" whose methods all take test.v1.Req and return test.v1.Res:
 *   Req { string id = 1; Inner inner = 2; repeated string tags = 3; bool flag = 4;
 *         int32 count = 5; repeated bool flags = 6; Inner.Kind kind = 7; string token = 8; string chat_id = 9 }
 *   Inner { string name = 1; Inner deeper = 2; repeated Inner items = 3 }
 *   Res { string id = 1; Inner inner = 2 }
 */
export function testService(methods: readonly MethodSpec[]): DescService {
  const file = create(FileDescriptorProtoSchema, {
    name: "test/v1/rest_test.proto",
    package: "test.v1",
    syntax: "proto3",
    messageType: [
      {
        name: "Inner",
        field: [
          field("name", 1, T.STRING),
          field("deeper", 2, T.MESSAGE, { typeName: ".test.v1.Inner" }),
          field("items", 3, T.MESSAGE, { typeName: ".test.v1.Inner", label: L.REPEATED }),
        ],
      },
      {
        name: "Req",
        field: [
          field("id", 1, T.STRING),
          field("inner", 2, T.MESSAGE, { typeName: ".test.v1.Inner" }),
          field("tags", 3, T.STRING, { label: L.REPEATED }),
          field("flag", 4, T.BOOL),
          field("count", 5, T.INT32),
          field("flags", 6, T.BOOL, { label: L.REPEATED }),
          field("token", 8, T.STRING),
          field("chat_id", 9, T.STRING),
        ],
      },
      { name: "Res", field: [field("id", 1, T.STRING), field("inner", 2, T.MESSAGE, { typeName: ".test.v1.Inner" })] },
    ],
    service: [
      {
        name: "Svc",
        method: methods.map((m) => {
          const options = create(MethodOptionsSchema);
          if (m.rule !== undefined) setExtension(options, http, create(HttpRuleSchema, m.rule));
          return {
            name: m.name,
            inputType: ".test.v1.Req",
            outputType: ".test.v1.Res",
            options,
            serverStreaming: m.streaming === true,
            clientStreaming: m.clientStreaming === true,
          };
        }),
      },
    ],
  });
  const registry = createFileRegistry(file, () => undefined);
  const service = registry.getService("test.v1.Svc");
  if (service === undefined) throw new Error("the test service was not built");
  return service;
}

export type { HttpRule };

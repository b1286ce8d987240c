import protobuf from 'protobufjs';

/**
 * The part of the Remote Execution API v2 and the Remote Asset API v1 (and of google.bytestream,
 * google.longrunning, google.rpc) that accel speaks, written from the public specification: message and field names and numbers are the protocol.
 * Fields accel neither reads nor writes are left out; protobuf skips unknown fields, so a client that sends
 * them is still understood. Parsed once, from text, so the single executable needs no .proto files on disk.
 */
const REAPI = `
syntax = "proto3";
package build.bazel.remote.execution.v2;

message Digest { string hash = 1; int64 size_bytes = 2; }
message Action {
  Digest command_digest = 1; Digest input_root_digest = 2; google.protobuf.Duration timeout = 6;
  bool do_not_cache = 7; bytes salt = 9; Platform platform = 10;
}
message Command {
  message EnvironmentVariable { string name = 1; string value = 2; }
  repeated string arguments = 1; repeated EnvironmentVariable environment_variables = 2;
  repeated string output_files = 3; repeated string output_directories = 4; Platform platform = 5;
  string working_directory = 6; repeated string output_paths = 7;
}
message Platform { message Property { string name = 1; string value = 2; } repeated Property properties = 1; }
message Directory { repeated FileNode files = 1; repeated DirectoryNode directories = 2; repeated SymlinkNode symlinks = 3; }
message FileNode { string name = 1; Digest digest = 2; bool is_executable = 4; }
message DirectoryNode { string name = 1; Digest digest = 2; }
message SymlinkNode { string name = 1; string target = 2; }
message ExecutedActionMetadata {
  string worker = 1; google.protobuf.Timestamp queued_timestamp = 2;
  google.protobuf.Timestamp worker_start_timestamp = 3; google.protobuf.Timestamp worker_completed_timestamp = 4;
  google.protobuf.Timestamp execution_start_timestamp = 7; google.protobuf.Timestamp execution_completed_timestamp = 8;
}
message ActionResult {
  repeated OutputFile output_files = 2; repeated OutputDirectory output_directories = 3; int32 exit_code = 4;
  bytes stdout_raw = 5; Digest stdout_digest = 6; bytes stderr_raw = 7; Digest stderr_digest = 8;
  ExecutedActionMetadata execution_metadata = 9; repeated OutputSymlink output_file_symlinks = 10;
  repeated OutputSymlink output_directory_symlinks = 11; repeated OutputSymlink output_symlinks = 12;
}
message OutputFile { string path = 1; Digest digest = 2; bool is_executable = 4; bytes contents = 5; }
message OutputSymlink { string path = 1; string target = 2; }
message Tree { Directory root = 1; repeated Directory children = 2; }
message OutputDirectory { string path = 1; Digest tree_digest = 3; }
message ExecutionPolicy { int32 priority = 1; }
message ResultsCachePolicy { int32 priority = 1; }
message ExecuteRequest {
  string instance_name = 1; bool skip_cache_lookup = 3; Digest action_digest = 6;
  ExecutionPolicy execution_policy = 7; ResultsCachePolicy results_cache_policy = 8; int32 digest_function = 9;
  bool inline_stdout = 10; bool inline_stderr = 11; repeated string inline_output_files = 12;
}
message ExecuteResponse { ActionResult result = 1; bool cached_result = 2; google.rpc.Status status = 3; string message = 5; }
message ExecuteOperationMetadata { int32 stage = 1; Digest action_digest = 2; }
message WaitExecutionRequest { string name = 1; }
message GetActionResultRequest {
  string instance_name = 1; Digest action_digest = 2; bool inline_stdout = 3; bool inline_stderr = 4;
  repeated string inline_output_files = 5;
}
message UpdateActionResultRequest { string instance_name = 1; Digest action_digest = 2; ActionResult action_result = 3; }
message FindMissingBlobsRequest { string instance_name = 1; repeated Digest blob_digests = 2; }
message FindMissingBlobsResponse { repeated Digest missing_blob_digests = 2; }
message BatchUpdateBlobsRequest {
  message Request { Digest digest = 1; bytes data = 2; int32 compressor = 3; }
  string instance_name = 1; repeated Request requests = 2;
}
message BatchUpdateBlobsResponse {
  message Response { Digest digest = 1; google.rpc.Status status = 2; }
  repeated Response responses = 1;
}
message BatchReadBlobsRequest { string instance_name = 1; repeated Digest digests = 2; }
message BatchReadBlobsResponse {
  message Response { Digest digest = 1; bytes data = 2; google.rpc.Status status = 3; int32 compressor = 4; }
  repeated Response responses = 1;
}
message GetTreeRequest { string instance_name = 1; Digest root_digest = 2; int32 page_size = 3; string page_token = 4; }
message GetTreeResponse { repeated Directory directories = 1; string next_page_token = 2; }
message GetCapabilitiesRequest { string instance_name = 1; }
message SemVer { int32 major = 1; int32 minor = 2; int32 patch = 3; string prerelease = 4; }
message ActionCacheUpdateCapabilities { bool update_enabled = 1; }
message CacheCapabilities {
  repeated int32 digest_functions = 1; ActionCacheUpdateCapabilities action_cache_update_capabilities = 2;
  int64 max_batch_total_size_bytes = 4; int32 symlink_absolute_path_strategy = 5;
  repeated int32 supported_compressors = 6;
}
message ExecutionCapabilities { int32 digest_function = 1; bool exec_enabled = 2; repeated int32 digest_functions = 5; }
message ServerCapabilities {
  CacheCapabilities cache_capabilities = 1; ExecutionCapabilities execution_capabilities = 2;
  SemVer deprecated_api_version = 3; SemVer low_api_version = 4; SemVer high_api_version = 5;
}
`;

const GOOGLE = `
syntax = "proto3";
package google.protobuf;
message Any { string type_url = 1; bytes value = 2; }
message Duration { int64 seconds = 1; int32 nanos = 2; }
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
`;

const RPC = `
syntax = "proto3";
package google.rpc;
message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
message PreconditionFailure {
  message Violation { string type = 1; string subject = 2; string description = 3; }
  repeated Violation violations = 1;
}
`;

const LONGRUNNING = `
syntax = "proto3";
package google.longrunning;
message Operation {
  string name = 1; google.protobuf.Any metadata = 2; bool done = 3;
  oneof result { google.rpc.Status error = 4; google.protobuf.Any response = 5; }
}
`;

const BYTESTREAM = `
syntax = "proto3";
package google.bytestream;
message ReadRequest { string resource_name = 1; int64 read_offset = 2; int64 read_limit = 3; }
message ReadResponse { bytes data = 10; }
message WriteRequest { string resource_name = 1; int64 write_offset = 2; bool finish_write = 3; bytes data = 10; }
message WriteResponse { int64 committed_size = 1; }
message QueryWriteStatusRequest { string resource_name = 1; }
message QueryWriteStatusResponse { int64 committed_size = 1; bool complete = 2; }
`;

/** The Remote Asset API's Fetch and Push services (build.bazel.remote.asset.v1), the part Bazel's downloader uses. */
const ASSET = `
syntax = "proto3";
package build.bazel.remote.asset.v1;
message Qualifier { string name = 1; string value = 2; }
message FetchBlobRequest {
  string instance_name = 1; google.protobuf.Duration timeout = 2;
  google.protobuf.Timestamp oldest_content_accepted = 3; repeated string uris = 4; repeated Qualifier qualifiers = 5;
  int32 digest_function = 6;
}
message FetchBlobResponse {
  google.rpc.Status status = 1; string uri = 2; repeated Qualifier qualifiers = 3;
  google.protobuf.Timestamp expires_at = 4; build.bazel.remote.execution.v2.Digest blob_digest = 5;
  int32 digest_function = 6;
}
message FetchDirectoryRequest {
  string instance_name = 1; google.protobuf.Duration timeout = 2;
  google.protobuf.Timestamp oldest_content_accepted = 3; repeated string uris = 4; repeated Qualifier qualifiers = 5;
}
message FetchDirectoryResponse {
  google.rpc.Status status = 1; string uri = 2; repeated Qualifier qualifiers = 3;
  google.protobuf.Timestamp expires_at = 4; build.bazel.remote.execution.v2.Digest root_directory_digest = 5;
}
message PushBlobRequest {
  string instance_name = 1; repeated string uris = 2; repeated Qualifier qualifiers = 3;
  google.protobuf.Timestamp expire_at = 4; build.bazel.remote.execution.v2.Digest blob_digest = 5;
}
message PushBlobResponse {}
message PushDirectoryRequest {
  string instance_name = 1; repeated string uris = 2; repeated Qualifier qualifiers = 3;
  google.protobuf.Timestamp expire_at = 4; build.bazel.remote.execution.v2.Digest root_directory_digest = 5;
}
message PushDirectoryResponse {}
`;

const root = new protobuf.Root();
for (const text of [GOOGLE, RPC, LONGRUNNING, BYTESTREAM, REAPI, ASSET]) protobuf.parse(text, root, { keepCase: true });
root.resolveAll();

export const V2 = 'build.bazel.remote.execution.v2';
const ASSET_V1 = 'build.bazel.remote.asset.v1';
export const DIGEST_SHA256 = 1;
/** ExecutionStage.Value */
export const STAGE = { CACHE_CHECK: 1, QUEUED: 2, EXECUTING: 3, COMPLETED: 4 } as const;

export interface Digest {
  hash: string;
  size_bytes: number;
}

export interface FileNode {
  name: string;
  digest?: Digest;
  is_executable?: boolean;
}
export interface DirectoryNode {
  name: string;
  digest?: Digest;
}
export interface SymlinkNode {
  name: string;
  target: string;
}
export interface Directory {
  files: FileNode[];
  directories: DirectoryNode[];
  symlinks: SymlinkNode[];
}
export interface Property {
  name: string;
  value: string;
}
export interface Action {
  command_digest?: Digest;
  input_root_digest?: Digest;
  timeout?: { seconds: number; nanos: number };
  do_not_cache: boolean;
  salt: Buffer;
  platform?: { properties: Property[] };
}
export interface Command {
  arguments: string[];
  environment_variables: { name: string; value: string }[];
  output_files: string[];
  output_directories: string[];
  output_paths: string[];
  working_directory: string;
  platform?: { properties: Property[] };
}
export interface OutputFile {
  path: string;
  digest?: Digest;
  is_executable?: boolean;
  contents?: Buffer;
}
export interface ActionResult {
  output_files: OutputFile[];
  output_directories?: { path: string; tree_digest?: Digest }[];
  output_file_symlinks?: { path: string; target: string }[];
  output_directory_symlinks?: { path: string; target: string }[];
  output_symlinks?: { path: string; target: string }[];
  exit_code: number;
  stdout_raw?: Buffer;
  stdout_digest?: Digest;
  stderr_raw?: Buffer;
  stderr_digest?: Digest;
  execution_metadata?: Record<string, unknown>;
}
export interface RpcStatus {
  code: number;
  message: string;
  details?: { type_url: string; value: Buffer }[];
}
export interface Operation {
  name: string;
  metadata?: { type_url: string; value: Buffer };
  done: boolean;
  error?: RpcStatus;
  response?: { type_url: string; value: Buffer };
}

export interface Qualifier {
  name: string;
  value: string;
}
export interface FetchBlobRequest {
  instance_name: string;
  timeout?: { seconds: number; nanos: number };
  oldest_content_accepted?: { seconds: number; nanos: number };
  uris: string[];
  qualifiers: Qualifier[];
  digest_function: number;
}
export interface FetchBlobResponse {
  status?: RpcStatus;
  uri: string;
  qualifiers: Qualifier[];
  blob_digest?: Digest;
}

/** One message type: bytes ⇄ plain objects (int64 as numbers, absent fields at their defaults). */
export interface Codec<T> {
  readonly name: string;
  encode(value: T): Buffer;
  decode(data: Uint8Array): T;
}

export function codec<T>(name: string): Codec<T> {
  const type = root.lookupType(name);
  return {
    name,
    encode: (value) => Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish()),
    decode: (data) => type.toObject(type.decode(data), { longs: Number, defaults: true, arrays: true }) as T,
  };
}

export const msg = {
  Digest: codec<Digest>(`${V2}.Digest`),
  Action: codec<Action>(`${V2}.Action`),
  Command: codec<Command>(`${V2}.Command`),
  Directory: codec<Directory>(`${V2}.Directory`),
  Tree: codec<{ root?: Directory; children: Directory[] }>(`${V2}.Tree`),
  ActionResult: codec<ActionResult>(`${V2}.ActionResult`),
  ExecuteResponse: codec<{ result?: ActionResult; cached_result: boolean; status?: RpcStatus; message: string }>(
    `${V2}.ExecuteResponse`,
  ),
  ExecuteOperationMetadata: codec<{ stage: number; action_digest?: Digest }>(`${V2}.ExecuteOperationMetadata`),
  PreconditionFailure: codec<{ violations: { type: string; subject: string; description: string }[] }>(
    'google.rpc.PreconditionFailure',
  ),
  Operation: codec<Operation>('google.longrunning.Operation'),
};

/** The type URL an Any carries for a message of this name. */
export function typeUrl(name: string): string {
  return `type.googleapis.com/${name}`;
}

export interface MethodSpec {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (value: unknown) => Buffer;
  requestDeserialize: (data: Buffer) => unknown;
  responseSerialize: (value: unknown) => Buffer;
  responseDeserialize: (data: Buffer) => unknown;
  originalName: string;
}

function method(service: string, name: string, req: string, res: string, streams: 'none' | 'in' | 'out'): MethodSpec {
  const request = codec<unknown>(req);
  const response = codec<unknown>(res);
  return {
    path: `/${service}/${name}`,
    requestStream: streams === 'in',
    responseStream: streams === 'out',
    requestSerialize: request.encode,
    requestDeserialize: request.decode,
    responseSerialize: response.encode,
    responseDeserialize: response.decode,
    originalName: name,
  };
}

const EXEC = `${V2}.Execution`;
const AC = `${V2}.ActionCache`;
const CAS = `${V2}.ContentAddressableStorage`;
const CAPS = `${V2}.Capabilities`;
const BS = 'google.bytestream.ByteStream';
const FETCH = `${ASSET_V1}.Fetch`;
const PUSH = `${ASSET_V1}.Push`;

/** The services, as grpc-js service definitions (path, streaming, codecs). */
export const services = {
  Execution: {
    Execute: method(EXEC, 'Execute', `${V2}.ExecuteRequest`, 'google.longrunning.Operation', 'out'),
    WaitExecution: method(EXEC, 'WaitExecution', `${V2}.WaitExecutionRequest`, 'google.longrunning.Operation', 'out'),
  },
  ActionCache: {
    GetActionResult: method(AC, 'GetActionResult', `${V2}.GetActionResultRequest`, `${V2}.ActionResult`, 'none'),
    UpdateActionResult: method(
      AC,
      'UpdateActionResult',
      `${V2}.UpdateActionResultRequest`,
      `${V2}.ActionResult`,
      'none',
    ),
  },
  ContentAddressableStorage: {
    FindMissingBlobs: method(
      CAS,
      'FindMissingBlobs',
      `${V2}.FindMissingBlobsRequest`,
      `${V2}.FindMissingBlobsResponse`,
      'none',
    ),
    BatchUpdateBlobs: method(
      CAS,
      'BatchUpdateBlobs',
      `${V2}.BatchUpdateBlobsRequest`,
      `${V2}.BatchUpdateBlobsResponse`,
      'none',
    ),
    BatchReadBlobs: method(
      CAS,
      'BatchReadBlobs',
      `${V2}.BatchReadBlobsRequest`,
      `${V2}.BatchReadBlobsResponse`,
      'none',
    ),
    GetTree: method(CAS, 'GetTree', `${V2}.GetTreeRequest`, `${V2}.GetTreeResponse`, 'out'),
  },
  Capabilities: {
    GetCapabilities: method(
      CAPS,
      'GetCapabilities',
      `${V2}.GetCapabilitiesRequest`,
      `${V2}.ServerCapabilities`,
      'none',
    ),
  },
  Fetch: {
    FetchBlob: method(FETCH, 'FetchBlob', `${ASSET_V1}.FetchBlobRequest`, `${ASSET_V1}.FetchBlobResponse`, 'none'),
    FetchDirectory: method(
      FETCH,
      'FetchDirectory',
      `${ASSET_V1}.FetchDirectoryRequest`,
      `${ASSET_V1}.FetchDirectoryResponse`,
      'none',
    ),
  },
  Push: {
    PushBlob: method(PUSH, 'PushBlob', `${ASSET_V1}.PushBlobRequest`, `${ASSET_V1}.PushBlobResponse`, 'none'),
    PushDirectory: method(
      PUSH,
      'PushDirectory',
      `${ASSET_V1}.PushDirectoryRequest`,
      `${ASSET_V1}.PushDirectoryResponse`,
      'none',
    ),
  },
  ByteStream: {
    Read: method(BS, 'Read', 'google.bytestream.ReadRequest', 'google.bytestream.ReadResponse', 'out'),
    Write: method(BS, 'Write', 'google.bytestream.WriteRequest', 'google.bytestream.WriteResponse', 'in'),
    QueryWriteStatus: method(
      BS,
      'QueryWriteStatus',
      'google.bytestream.QueryWriteStatusRequest',
      'google.bytestream.QueryWriteStatusResponse',
      'none',
    ),
  },
};

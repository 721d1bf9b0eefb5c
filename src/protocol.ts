/**
 * Declared protocols: one declaration gives compile-time types and run-time validation.
 *
 * Validators are Standard Schema (https://standardschema.dev): zod, valibot, arktype and others
 * implement it, so no validator library is a dependency of this one. The interface below is the
 * spec's, copied as the spec intends (it is types only).
 */

/** The Standard Schema v1 interface. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardSchemaIssue> };

export interface StandardSchemaIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** One validation problem, as it travels in an INVALID_MESSAGE error. */
export interface ValidationIssue {
  message: string;
  /** Where in the message, e.g. `['items', 0, 'name']`. */
  path: Array<string | number>;
}

/** A message's schemas: `input` validates the fields (without `type`), `output` the reply. */
export interface MessageSchemas {
  input?: StandardSchemaV1;
  output?: StandardSchemaV1;
  /**
   * The reply is streamed (the handler is an async generator, the asker uses `stream()`): `output`
   * then validates each item, and the handler's type returns `AsyncIterable<output>`.
   */
  stream?: boolean;
}

export type ProtocolDefinition = Record<string, MessageSchemas>;

type InputOf<S> = S extends StandardSchemaV1<infer I, unknown> ? I : {};
type OutputOf<S> = S extends StandardSchemaV1<unknown, infer O> ? O : void;

/** The protocol type (message type → handler signature) a declaration describes. */
export type ApiOf<D extends ProtocolDefinition> = {
  [K in keyof D & string]: D[K] extends { stream: true }
    ? (event: InputOf<D[K]['input']>) => AsyncIterable<D[K]['output'] extends StandardSchemaV1 ? OutputOf<D[K]['output']> : unknown>
    : (event: InputOf<D[K]['input']>) => OutputOf<D[K]['output']>;
};

declare const apiMarker: unique symbol;

/** A declared protocol, as returned by `defineProtocol`. */
export interface DeclaredProtocol<Api = any> {
  readonly definition: ProtocolDefinition;
  /** Travels in the handshake; a peer declaring another name is refused. */
  readonly name: string | undefined;
  /** Travels in the handshake; the peer's is `connection.peerProtocol.version`. */
  readonly version: string | number | undefined;
  /** Type-only: carries the protocol's API type. */
  readonly [apiMarker]?: Api;
}

/**
 * Declare a protocol: per message type, Standard Schema validators for its fields (`input`)
 * and its reply (`output`). Pass it as `listen(name, { protocol, handlers })` and
 * `connect(name, { protocol })`; the types of `ask` and of the handlers follow from it.
 *
 * ```ts
 * const Calculator = defineProtocol({
 *   add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
 * }, { name: 'calculator', version: 2 });
 * ```
 */
export function defineProtocol<const D extends ProtocolDefinition>(
  definition: D,
  meta: { name?: string; version?: string | number } = {},
): DeclaredProtocol<ApiOf<D>> {
  for (const [type, schemas] of Object.entries(definition)) {
    for (const key of ['input', 'output'] as const) {
      const schema = schemas?.[key];
      if (schema !== undefined && typeof schema?.['~standard']?.validate !== 'function') {
        throw new TypeError(`defineProtocol: "${type}.${key}" is not a Standard Schema validator (it has no ['~standard'].validate).`);
      }
    }
  }
  return { definition, name: meta.name, version: meta.version };
}

/** Flatten Standard Schema issues for the wire. */
export function toValidationIssues(issues: ReadonlyArray<StandardSchemaIssue>): ValidationIssue[] {
  return issues.map((issue) => ({
    message: String(issue.message),
    path: (issue.path ?? []).map((segment) => {
      const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
      return typeof key === 'number' ? key : String(key);
    }),
  }));
}

export function describeIssues(issues: ValidationIssue[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

/** One message of a declared protocol, as introspection can describe it. */
export interface MessageDescription {
  type: string;
  /** Whether the message declares an `input` (fields) schema. */
  hasInput: boolean;
  /** Whether the message declares an `output` (reply) schema. */
  hasOutput: boolean;
  /** Present (true) when the reply is declared as a stream. */
  stream?: true;
  /** JSON Schema of the fields, when the validator can produce one. */
  input?: Record<string, unknown>;
  /** JSON Schema of the reply, when the validator can produce one. */
  output?: Record<string, unknown>;
}

export interface ProtocolDescription {
  name?: string;
  version?: string | number;
  messages: MessageDescription[];
}

/**
 * Describe a declared protocol for introspection: its name, version and message types, and for
 * each schema its JSON Schema where the validator can produce one — through the Standard JSON
 * Schema interface (`['~standard'].jsonSchema`, zod ≥ 4.2, arktype) or a `toJSONSchema()` method
 * (zod 4). Best effort: a schema that cannot be expressed is left out; this never throws.
 */
export function protocolDescription(protocol: DeclaredProtocol | ProtocolDefinition): ProtocolDescription {
  const declared = isDeclaredProtocol(protocol) ? protocol : undefined;
  const definition: ProtocolDefinition = declared !== undefined ? declared.definition : (protocol as ProtocolDefinition);
  const description: ProtocolDescription = { messages: [] };
  if (declared?.name !== undefined) description.name = declared.name;
  if (declared?.version !== undefined) description.version = declared.version;
  for (const [type, schemas] of Object.entries(definition ?? {})) {
    const message: MessageDescription = { type, hasInput: schemas?.input !== undefined, hasOutput: schemas?.output !== undefined };
    if (schemas?.stream === true) message.stream = true;
    const input = jsonSchemaOf(schemas?.input, 'input');
    if (input !== undefined) message.input = input;
    const output = jsonSchemaOf(schemas?.output, 'output');
    if (output !== undefined) message.output = output;
    description.messages.push(message);
  }
  return description;
}

function isDeclaredProtocol(value: unknown): value is DeclaredProtocol {
  return typeof value === 'object' && value !== null && 'definition' in value && typeof (value as { definition?: unknown }).definition === 'object';
}

/** A validator's JSON Schema (for `input`, the shape a sender must send; for `output`, what the asker gets), or undefined. */
function jsonSchemaOf(schema: StandardSchemaV1 | undefined, io: 'input' | 'output'): Record<string, unknown> | undefined {
  if (schema === undefined) return undefined;
  const attempts: Array<() => unknown> = [
    () => {
      // Standard JSON Schema: ['~standard'].jsonSchema.input/output({ target }).
      const converter = (schema['~standard'] as { jsonSchema?: Record<string, unknown> }).jsonSchema?.[io];
      return typeof converter === 'function' ? converter({ target: 'draft-2020-12' }) : undefined;
    },
    () => {
      const method = (schema as { toJSONSchema?: unknown }).toJSONSchema;
      return typeof method === 'function' ? method.call(schema) : undefined;
    },
  ];
  for (const attempt of attempts) {
    try {
      const result = attempt();
      if (typeof result === 'object' && result !== null && !Array.isArray(result)) {
        // Only plain JSON travels (introspection sends it over the wire).
        return JSON.parse(JSON.stringify(result)) as Record<string, unknown>;
      }
    } catch {
      // This validator cannot express the schema: try the next way, else leave it out.
    }
  }
  return undefined;
}

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
}

export type ProtocolDefinition = Record<string, MessageSchemas>;

type InputOf<S> = S extends StandardSchemaV1<infer I, unknown> ? I : {};
type OutputOf<S> = S extends StandardSchemaV1<unknown, infer O> ? O : void;

/** The protocol type (message type → handler signature) a declaration describes. */
export type ApiOf<D extends ProtocolDefinition> = {
  [K in keyof D & string]: (event: InputOf<D[K]['input']>) => OutputOf<D[K]['output']>;
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

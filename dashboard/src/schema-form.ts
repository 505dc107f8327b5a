// A form built from a JSON schema of the API (the server's own OpenAPI document, /openapi.json), so
// that the federation creation form has exactly the API's fields, bounds, patterns, choices and
// defaults. The server validates again; this only spares a round trip and names the bad field.

export interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  description?: string;
  example?: unknown;
}

export interface Field {
  /** Dotted path in the body, e.g. backbone.sha256. */
  path: string;
  /** The last name of the path. */
  name: string;
  /** The object the field belongs to ('' at the top). */
  group: string;
  kind: 'integer' | 'number' | 'string' | 'boolean' | 'choice';
  choices?: string[];
  required: boolean;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  description?: string;
  example?: unknown;
}

/** The fields of an object schema, nested objects flattened into dotted paths, in schema order. */
export function fieldsOf(schema: JsonSchema, prefix = ''): Field[] {
  const fields: Field[] = [];
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    if (property.type === 'object' && property.properties) {
      fields.push(...fieldsOf(property, path));
      continue;
    }
    const choices = property.anyOf?.every((option) => Array.isArray(option.enum) && option.enum.length === 1)
      ? property.anyOf.map((option) => String(option.enum![0]))
      : Array.isArray(property.enum) ? property.enum.map(String) : undefined;
    const kind: Field['kind'] = choices ? 'choice' : property.type === 'integer' || property.type === 'number' || property.type === 'boolean' ? property.type : 'string';
    fields.push({
      path, name, group: prefix, kind, choices,
      required: (schema.required ?? []).includes(name) && property.default === undefined,
      default: property.default, minimum: property.minimum, maximum: property.maximum, minLength: property.minLength,
      maxLength: property.maxLength, pattern: property.pattern, description: property.description, example: property.example,
    });
  }
  return fields;
}

/** The initial value of a field's input: its default, else empty. */
export function initialValue(field: Field): string | boolean {
  if (field.kind === 'boolean') return field.default === true;
  return field.default === undefined ? '' : String(field.default);
}

/** Why a value does not fit its field, or undefined when it does (or is an omitted optional field). */
export function checkValue(field: Field, value: string | boolean): string | undefined {
  if (field.kind === 'boolean') return undefined;
  const text = String(value).trim();
  if (text === '') return field.required ? 'required' : undefined;
  if (field.kind === 'integer' || field.kind === 'number') {
    const n = Number(text);
    if (!Number.isFinite(n) || (field.kind === 'integer' && !Number.isInteger(n))) return `must be ${field.kind === 'integer' ? 'a whole number' : 'a number'}`;
    if (field.minimum !== undefined && n < field.minimum) return `must be at least ${field.minimum}`;
    if (field.maximum !== undefined && n > field.maximum) return `must be at most ${field.maximum}`;
    return undefined;
  }
  if (field.kind === 'choice') return field.choices!.includes(text) ? undefined : `must be one of ${field.choices!.join(', ')}`;
  if (field.minLength !== undefined && text.length < field.minLength) return `must have at least ${field.minLength} characters`;
  if (field.maxLength !== undefined && text.length > field.maxLength) return `must have at most ${field.maxLength} characters`;
  if (field.pattern !== undefined && !new RegExp(field.pattern).test(text)) return `must match ${field.pattern}`;
  return undefined;
}

/**
 * The request body of the form's values, or the errors by path. Optional fields left empty are
 * left out (the server applies its default).
 */
export function bodyOf(fields: readonly Field[], values: Readonly<Record<string, string | boolean>>): { body?: Record<string, unknown>; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const body: Record<string, unknown> = {};
  for (const field of fields) {
    const value = values[field.path] ?? initialValue(field);
    const problem = checkValue(field, value);
    if (problem) {
      errors[field.path] = problem;
      continue;
    }
    const text = String(value).trim();
    if (field.kind !== 'boolean' && text === '') continue;
    const parsed = field.kind === 'boolean' ? value === true : field.kind === 'integer' || field.kind === 'number' ? Number(text) : text;
    const parts = field.path.split('.');
    let target = body;
    for (const part of parts.slice(0, -1)) target = (target[part] ??= {}) as Record<string, unknown>;
    target[parts.at(-1)!] = parsed;
  }
  return Object.keys(errors).length > 0 ? { errors } : { body, errors };
}

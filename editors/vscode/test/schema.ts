// The server's JSON Schemas (src/lsp_server/contract/schemas, generated from its attrs classes)
// and a validator for the part of JSON Schema they use, so the fixtures these tests feed the
// extension, and the arguments it sends, are checked against what the server really speaks.
// A keyword outside that part throws: the generator grew, and so must this.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { EXTENSION_ROOT } from './helpers';

export const SCHEMAS = path.resolve(EXTENSION_ROOT, '..', '..', 'src', 'lsp_server', 'contract', 'schemas');

type Schema = { [keyword: string]: any };

const KEYWORDS = new Set([
  '$schema', 'title', 'description', 'default', 'format', '$defs', '$ref', 'anyOf', 'type', 'enum',
  'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems',
]);

export function loadSchema(name: string): Schema {
  return JSON.parse(fs.readFileSync(path.join(SCHEMAS, name), 'utf8'));
}

/** The schema of a command's `arguments`; undefined for a command the server does not offer. */
export function commandSchema(command: string): Schema | undefined {
  const file = path.join('commands', `${command}.json`);
  return fs.existsSync(path.join(SCHEMAS, file)) ? loadSchema(file) : undefined;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Where and why `value` does not fit `schema`; empty when it does. */
export function problems(schema: Schema, value: unknown, root: Schema = schema, at = '$'): string[] {
  const unknown = Object.keys(schema).filter((keyword) => !KEYWORDS.has(keyword));
  if (unknown.length > 0) {
    throw new Error(`schema keywords this validator does not know: ${unknown.join(', ')}`);
  }
  if (schema.$ref !== undefined) {
    const found = problems(root.$defs[schema.$ref.replace('#/$defs/', '')], value, root, at);
    if (found.length > 0) return found;
  }
  if (schema.anyOf !== undefined && !schema.anyOf.some((option: Schema) => problems(option, value, root, at).length === 0)) {
    return [`${at}: ${JSON.stringify(value)} fits none of its types`];
  }
  const type = typeOf(value);
  if (schema.type !== undefined) {
    const types: string[] = [].concat(schema.type);
    if (!types.includes(type) && !(type === 'integer' && types.includes('number'))) {
      return [`${at}: expected ${types.join(' or ')}, got ${type}`];
    }
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    return [`${at}: expected one of ${JSON.stringify(schema.enum)}, got ${JSON.stringify(value)}`];
  }
  const found: string[] = [];
  if (type === 'object') {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) {
      if (!(name in object)) found.push(`${at}: ${name} is missing`);
    }
    for (const [name, item] of Object.entries(object)) {
      const sub = schema.properties?.[name] ?? schema.additionalProperties;
      if (sub === false) {
        found.push(`${at}: ${name} is not expected`);
      } else if (sub !== undefined && sub !== true) {
        found.push(...problems(sub, item, root, `${at}.${name}`));
      }
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) found.push(`${at}: fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) found.push(`${at}: more than ${schema.maxItems} items`);
    if (schema.items !== undefined) value.forEach((item, i) => found.push(...problems(schema.items, item, root, `${at}[${i}]`)));
  }
  return found;
}

export function assertFits(name: string, value: unknown): void {
  assert.deepEqual(problems(loadSchema(name), value), [], `${name}: ${JSON.stringify(value)}`);
}

/** A command's arguments as the extension sends them fit the server's schema for them. */
export function assertArgumentsFit(command: string, args: unknown): void {
  const schema = commandSchema(command);
  assert.ok(schema, `the server offers no ${command}`);
  assert.deepEqual(problems(schema, args), [], `${command} arguments: ${JSON.stringify(args)}`);
}

// JSON-schema keywords xgrammar cannot enforce: a request that uses one gets a 400
// naming them (with where they are), rather than output that ignores them.

/** Keywords xgrammar's converter ignores or refuses, by the type they apply to. */
const UNSUPPORTED: Record<string, readonly string[]> = {
  array: ['uniqueItems', 'contains', 'minContains', 'maxContains'],
  object: ['patternProperties', 'propertyNames', 'dependentSchemas', 'dependentRequired', 'if', 'then', 'else'],
  any: ['not'],
  number: ['multipleOf'],
};

/** String formats xgrammar builds a grammar for. */
const STRING_FORMATS = new Set([
  'email', 'date', 'time', 'date-time', 'duration', 'ipv4', 'ipv6', 'hostname', 'uuid',
  'uri', 'uri-reference', 'uri-template', 'json-pointer', 'relative-json-pointer',
]);

const SUBSCHEMA_MAPS = ['properties', '$defs', 'definitions', 'dependentSchemas', 'patternProperties'];
const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const SUBSCHEMAS = ['items', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'not'];

/** "keyword at #/path" for each unsupported use in `schema`. */
export function unsupportedJsonSchemaFeatures(schema: unknown): string[] {
  const found: string[] = [];
  const visit = (node: unknown, path: string): void => {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return;
    const s = node as Record<string, unknown>;
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const hit = (k: string) => found.push(`${k} at ${path || '#'}`);
    for (const k of UNSUPPORTED.any!) if (k in s) hit(k);
    if (types.includes('number') || types.includes('integer')) for (const k of UNSUPPORTED.number!) if (k in s) hit(k);
    if (types.includes('array')) for (const k of UNSUPPORTED.array!) if (k in s) hit(k);
    if (types.includes('object')) for (const k of UNSUPPORTED.object!) if (k in s) hit(k);
    if (types.includes('string') && typeof s.format === 'string' && !STRING_FORMATS.has(s.format)) hit(`format "${s.format}"`);
    for (const k of SUBSCHEMA_MAPS) {
      const m = s[k];
      if (m && typeof m === 'object') for (const [name, sub] of Object.entries(m)) visit(sub, `${path || '#'}/${k}/${name}`);
    }
    for (const k of SUBSCHEMA_LISTS) {
      const l = s[k];
      if (Array.isArray(l)) l.forEach((sub, i) => visit(sub, `${path || '#'}/${k}/${i}`));
    }
    for (const k of SUBSCHEMAS) visit(s[k], `${path || '#'}/${k}`);
  };
  visit(schema, '');
  return found;
}

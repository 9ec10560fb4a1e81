// validate.mjs - a small JSON Schema (draft-07 subset) validator for
// docs/report-schema.json: $ref (local), oneOf, type, const, enum, required,
// properties, additionalProperties: false, items, minItems, minimum,
// minLength, pattern.  Usage: node validate.mjs SCHEMA JSON... (exit 1 on errors)
import fs from "node:fs";

function typeOf(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function resolve(root, ref) {
  if (!ref.startsWith("#/")) throw new Error("unsupported $ref " + ref);
  let node = root;
  for (const part of ref.slice(2).split("/")) {
    node = node[part];
    if (node === undefined) throw new Error("dangling $ref " + ref);
  }
  return node;
}

export function validate(root, schema, v, path = "$", errs = []) {
  if (schema.$ref) return validate(root, resolve(root, schema.$ref), v, path, errs);
  if (schema.oneOf) {
    const ok = schema.oneOf.map((s) => validate(root, s, v, path, []));
    const n = ok.filter((e) => e.length === 0).length;
    if (n !== 1) {
      errs.push(`${path}: matches ${n} of the oneOf branches (need exactly 1)`);
      ok.forEach((e, i) => e.slice(0, 5).forEach((m) => errs.push(`  branch ${i}: ${m}`)));
    }
  }
  const t = typeOf(v);
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const fine = types.some((x) => x === t || (x === "number" && t === "integer"));
    if (!fine) {
      errs.push(`${path}: type ${t}, expected ${types.join("|")}`);
      return errs;
    }
  }
  if ("const" in schema && JSON.stringify(v) !== JSON.stringify(schema.const))
    errs.push(`${path}: ${JSON.stringify(v)} is not ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.some((x) => JSON.stringify(x) === JSON.stringify(v)))
    errs.push(`${path}: ${JSON.stringify(v)} not in ${JSON.stringify(schema.enum)}`);
  if ((t === "number" || t === "integer") && schema.minimum !== undefined && v < schema.minimum)
    errs.push(`${path}: ${v} < minimum ${schema.minimum}`);
  if (t === "string") {
    if (schema.minLength !== undefined && v.length < schema.minLength) errs.push(`${path}: shorter than ${schema.minLength}`);
    if (schema.pattern && !new RegExp(schema.pattern).test(v)) errs.push(`${path}: "${v}" does not match ${schema.pattern}`);
  }
  if (t === "object") {
    for (const k of schema.required || []) if (!(k in v)) errs.push(`${path}: missing required "${k}"`);
    const props = schema.properties || {};
    for (const [k, x] of Object.entries(v)) {
      if (props[k]) validate(root, props[k], x, `${path}.${k}`, errs);
      else if (schema.additionalProperties === false) errs.push(`${path}: unexpected property "${k}"`);
    }
  }
  if (t === "array") {
    if (schema.minItems !== undefined && v.length < schema.minItems) errs.push(`${path}: fewer than ${schema.minItems} items`);
    if (schema.items) v.forEach((x, i) => validate(root, schema.items, x, `${path}[${i}]`, errs));
  }
  return errs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [schemaPath, ...files] = process.argv.slice(2);
  const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8"));
  let bad = 0;
  for (const f of files) {
    const errs = validate(schema, schema, JSON.parse(fs.readFileSync(f, "utf8")));
    if (errs.length) {
      bad++;
      console.error(`${f}: INVALID\n  ` + errs.slice(0, 20).join("\n  "));
    } else {
      console.log(`${f}: valid`);
    }
  }
  process.exit(bad ? 1 : 0);
}

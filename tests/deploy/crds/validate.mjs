// Validates Prometheus Operator objects (monitoring.coreos.com/v1) two ways:
//  1. the JSON schema of the CRD, compiled into @kubernetes-models/prometheus-operator: types,
//     patterns (durations), enums and required fields, as the API server checks them;
//  2. TypeScript's excess-property check against the same package's types: a misspelt or
//     unknown field, which the schema admits and the API server would silently prune.
// Usage: node validate.mjs OBJECTS.json   (a JSON array). Prints one line per problem and
// exits 1 when there is any.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const here = dirname(fileURLToPath(import.meta.url));
const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
const problems = [];
const name = (o) => `${o.kind}/${o.metadata?.name}`;

for (const object of objects) {
  const Model = v1[object.kind];
  if (object.apiVersion !== "monitoring.coreos.com/v1" || typeof Model !== "function") {
    problems.push(`${name(object)}: not a monitoring.coreos.com/v1 kind this package knows`);
    continue;
  }
  try {
    new Model(object).validate();
  } catch (error) {
    problems.push(`${name(object)}: schema: ${error.message}`);
  }
}

// One object literal per line, so a diagnostic's line names its object. The file is virtual,
// placed beside node_modules so that the package's types resolve.
const kinds = [...new Set(objects.map((o) => o.kind).filter((k) => typeof v1[k] === "function"))];
const header = [
  ...kinds.map((k) => `import type { I${k} } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${k}";`),
];
const lines = objects.map((o, i) =>
  kinds.includes(o.kind) ? `export const o${i}: I${o.kind} = ${JSON.stringify(o)};` : "");
const source = [...header, ...lines].join("\n");
const file = join(here, "__objects__.ts");
const options = {
  strict: true, noEmit: true, skipLibCheck: true,
  module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
};
const host = ts.createCompilerHost(options);
const readFile = host.readFile.bind(host);
const fileExists = host.fileExists.bind(host);
host.readFile = (f) => (f === file ? source : readFile(f));
host.fileExists = (f) => f === file || fileExists(f);
const getSourceFile = host.getSourceFile.bind(host);
host.getSourceFile = (f, version) =>
  f === file ? ts.createSourceFile(f, source, version) : getSourceFile(f, version);
const program = ts.createProgram([file], options, host);
for (const d of ts.getPreEmitDiagnostics(program)) {
  const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
  if (d.file?.fileName === file) {
    const line = d.file.getLineAndCharacterOfPosition(d.start).line - header.length;
    problems.push(`${name(objects[line] ?? {})}: fields: ${text}`);
  } else {
    problems.push(`typescript: ${text}`);
  }
}

for (const p of problems) console.log(p);
console.log(`${objects.length} object(s) checked, ${problems.length} problem(s)`);
process.exit(problems.length ? 1 : 0);

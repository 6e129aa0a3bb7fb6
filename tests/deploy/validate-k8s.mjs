// Validates Kubernetes manifests offline against the API schemas of the npm package
// kubernetes-models (no API server needed; `kubectl --dry-run=client` needs one).
//
//   node tests/deploy/validate-k8s.mjs deploy/k8s/*.yaml
//
// Every YAML document in each file must be an object of a kind kubernetes-models
// knows (by apiVersion and kind) and pass its schema: types, enums, formats and
// required fields. (The schemas do not reject a field they do not define: a misspelt
// optional field passes here, as it would pass the API server, which drops it.)
// Files whose documents are not API objects (kustomization.yaml) are skipped when
// named with --skip. Prints one line per document; exit 1 when any fails or none
// was checked.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const args = process.argv.slice(2);
const skip = new Set();
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--skip") skip.add(args[++i]);
  else files.push(args[i]);
}

// apiVersion "apps/v1" -> module "kubernetes-models/apps/v1/<Kind>"; core "v1" -> "kubernetes-models/v1/<Kind>".
async function modelOf(apiVersion, kind) {
  if (!/^[a-z0-9.]*\/?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Za-z]+$/.test(kind)) return null;
  try {
    const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
    return mod[kind] ?? null;
  } catch {
    return null;
  }
}

let failed = 0;
let checked = 0;
for (const file of files) {
  const base = file.replace(/^.*\//, "");
  if (skip.has(base)) {
    console.log(`skip ${file} (not API objects)`);
    continue;
  }
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const [i, doc] of docs.entries()) {
    const where = `${file}#${i + 1}`;
    if (doc.errors.length) {
      console.log(`FAIL ${where}: YAML: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue; // an empty document
    checked++;
    const Model = await modelOf(obj.apiVersion ?? "", obj.kind ?? "");
    if (!Model) {
      console.log(`FAIL ${where}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`);
      failed++;
      continue;
    }
    const problems = [];
    try {
      new Model(obj).validate();
    } catch (e) {
      problems.push(String(e.message ?? e).split("\n").slice(0, 6).join("; "));
    }
    if (problems.length) {
      console.log(`FAIL ${where} ${obj.kind} ${obj.metadata?.name}: ${problems.join("; ")}`);
      failed++;
    } else {
      console.log(`ok   ${where} ${obj.kind} ${obj.metadata?.name}`);
    }
  }
}

console.log(`${checked - failed} passed, ${failed} failed`);
process.exit(failed || checked === 0 ? 1 : 0);

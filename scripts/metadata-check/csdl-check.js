#!/usr/bin/env node
/*
 * csdl-check.js - validate OData CSDL XML ($metadata) documents.
 *
 * Usage: node csdl-check.js [--xsd] FILE...
 *
 * Per file:
 *   1. [xsd]        (only with --xsd) XML Schema validation against the OASIS
 *                   edmx.xsd/edm.xsd shipped in odata-csdl, using xmllint-wasm
 *                   (libxml2). check-metadata.sh normally does this step with
 *                   Python lxml instead and passes --xsd only as a fallback.
 *   2. [odata-csdl] OASIS TC converter odata-csdl (xml2json): well-formedness,
 *                   EDMX/EDM namespaces, allowed child elements and attributes,
 *                   min/max occurrences, name collisions.
 *   3. [json-schema] the converted CSDL JSON against the OASIS CSDL JSON schema
 *                   (schemas/csdl.schema.json from odata-csdl), with ajv.
 *   4. [model]      reference resolution and CSDL model rules that neither XSD
 *                   nor JSON schema can express (see checkModel below).
 *   5. [odata-openapi] the OASIS TC odata-openapi converter must be able to
 *                   process the model; its diagnostics are reported as warnings,
 *                   a crash is an error.
 *
 * Output: FILE:LINE: error|warning: [check] message   (one per finding)
 * Exit code: 0 = no errors (warnings allowed), 1 = errors, 2 = usage error.
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const sax = require("sax");
const { xml2json } = require("odata-csdl");
const { csdl2openapi } = require("odata-openapi");
const Ajv = require("ajv");

const CSDL_PKG_DIR = path.dirname(require.resolve("odata-csdl/package.json"));
const SCHEMA_DIR = path.join(CSDL_PKG_DIR, "schemas");

// ---------------------------------------------------------------- constants

// CSDL 4.0 primitive types (Part 3, section 4.4)
const PRIMITIVE_TYPES = new Set(
  [
    "Binary", "Boolean", "Byte", "Date", "DateTimeOffset", "Decimal", "Double",
    "Duration", "Guid", "Int16", "Int32", "Int64", "SByte", "Single", "Stream",
    "String", "TimeOfDay",
    "Geography", "GeographyPoint", "GeographyLineString", "GeographyPolygon",
    "GeographyMultiPoint", "GeographyMultiLineString", "GeographyMultiPolygon",
    "GeographyCollection",
    "Geometry", "GeometryPoint", "GeometryLineString", "GeometryPolygon",
    "GeometryMultiPoint", "GeometryMultiLineString", "GeometryMultiPolygon",
    "GeometryCollection",
  ].map((n) => "Edm." + n)
);
// built-in abstract / vocabulary types; value = minimum CSDL version
const ABSTRACT_TYPES = {
  "Edm.PrimitiveType": "4.0",
  "Edm.ComplexType": "4.0",
  "Edm.EntityType": "4.0",
  "Edm.AnnotationPath": "4.0",
  "Edm.PropertyPath": "4.0",
  "Edm.NavigationPropertyPath": "4.0",
  "Edm.Untyped": "4.01",
  "Edm.AnyPropertyPath": "4.01",
  "Edm.ModelElementPath": "4.01",
};
// types allowed for key properties (plus enum types and type definitions of these)
const KEY_TYPES = new Set(
  [
    "Boolean", "Byte", "Date", "DateTimeOffset", "Decimal", "Duration", "Guid",
    "Int16", "Int32", "Int64", "SByte", "String", "TimeOfDay",
  ].map((n) => "Edm." + n)
);
const ENUM_UNDERLYING = new Set(
  ["Byte", "SByte", "Int16", "Int32", "Int64"].map((n) => "Edm." + n)
);

// ---------------------------------------------------------------- reporting

function makeReporter(file) {
  const findings = [];
  return {
    findings,
    add(level, check, line, message) {
      findings.push({ level, check, line: line || "-", message });
    },
    print() {
      for (const f of findings)
        console.log(`${file}:${f.line}: ${f.level}: [${f.check}] ${f.message}`);
    },
    errors() {
      return findings.filter((f) => f.level === "error").length;
    },
    warnings() {
      return findings.filter((f) => f.level === "warning").length;
    },
  };
}

// ---------------------------------------------------------------- XSD (wasm)

async function checkXsdWasm(file, xml, rep) {
  const { validateXML } = require("xmllint-wasm");
  const read = (n) => fs.readFileSync(path.join(SCHEMA_DIR, n), "utf8");
  const result = await validateXML({
    xml: [{ fileName: file, contents: xml.toString("utf8") }],
    schema: [{ fileName: "edmx.xsd", contents: read("edmx.xsd") }],
    preload: [{ fileName: "edm.xsd", contents: read("edm.xsd") }],
  });
  // libxml2 continuation lines (source excerpt, caret) come without a location
  const located = result.errors.filter((e) => e.loc && e.loc.lineNumber);
  for (const e of located.length ? located : result.errors)
    rep.add("error", "xsd", e.loc && e.loc.lineNumber, e.message || e.rawMessage);
  return result.valid;
}

// ---------------------------------------------------------------- JSON schema

let csdlJsonValidator;
function checkJsonSchema(json, rep) {
  if (!csdlJsonValidator) {
    const schema = JSON.parse(
      fs.readFileSync(path.join(SCHEMA_DIR, "csdl.schema.json"), "utf8")
    );
    const ajv = new Ajv({ allErrors: true, strict: false });
    csdlJsonValidator = ajv.compile(schema);
  }
  if (!csdlJsonValidator(json)) {
    for (const e of csdlJsonValidator.errors)
      rep.add(
        "error",
        "json-schema",
        null,
        `${e.instancePath || "/"} ${e.message}` +
          (e.params && Object.keys(e.params).length
            ? " " + JSON.stringify(e.params)
            : "")
      );
  }
}

// ---------------------------------------------------------------- raw XML facts
// Facts that the CSDL JSON representation does not preserve (e.g. whether a
// Nullable attribute was written at all), collected with a plain sax pass.

function collectXmlFacts(xml) {
  const facts = { returnTypes: [], navigationProperties: [], containers: [], childLines: {}, bindingLines: {} };
  const parser = sax.parser(true, { xmlns: true, position: true });
  const stack = [];
  parser.onopentag = (node) => {
    const line = parser.line + 1;
    const attr = (n) => (node.attributes[n] ? node.attributes[n].value : undefined);
    if (node.local === "ReturnType") {
      const op = stack[stack.length - 1] || {};
      facts.returnTypes.push({
        line,
        operation: op.name,
        type: attr("Type"),
        hasNullable: node.attributes.Nullable !== undefined,
      });
    }
    if (node.local === "NavigationProperty") {
      const owner = stack[stack.length - 1] || {};
      facts.navigationProperties.push({
        line,
        owner: owner.name,
        name: attr("Name"),
        type: attr("Type"),
        hasNullable: node.attributes.Nullable !== undefined,
      });
    }
    if (node.local === "EntityContainer") facts.containers.push({ line, name: attr("Name") });
    const parent = stack[stack.length - 1] || {};
    if (parent.local === "EntityContainer" && attr("Name") && !(attr("Name") in facts.childLines))
      facts.childLines[attr("Name")] = line;
    if (node.local === "NavigationPropertyBinding")
      facts.bindingLines[`${parent.name}|${attr("Path")}`] = line;
    stack.push({ local: node.local, name: attr("Name") });
  };
  parser.onclosetag = () => stack.pop();
  parser.onerror = () => {
    throw new Error("not well-formed");
  };
  parser.write(xml.toString("utf8")).close();
  return facts;
}

// ---------------------------------------------------------------- model rules

/**
 * Checks on the alias-normalized CSDL JSON (with @parser.line annotations):
 *  - exactly one entity container; schema aliases unique
 *  - every qualified name (types, base types, terms, actions, functions, entity
 *    sets) resolves to a model element of the right kind in a local schema;
 *    names in namespaces included via edmx:Reference are accepted (types from
 *    them get a "not checked" warning), any other namespace is an error
 *  - base types of the same kind, no inheritance cycles
 *  - every non-abstract entity type has a key (own or inherited); no key
 *    redeclared when inherited; key properties exist, are single-valued,
 *    non-nullable and of a permitted key type
 *  - structural properties are not entity-typed; navigation properties are
 *    entity-typed; Partner and ReferentialConstraint properties exist
 *  - type definitions / enum types have valid underlying types
 *  - actions/functions: bound ones have a binding parameter, parameter and
 *    return types resolve, Edm.Stream only where permitted, EntitySetPath
 *    resolves, action/function overload rules
 *  - ReturnType of a collection of entity types carries no Nullable attribute
 *  - entity sets/singletons are typed with model entity types; entity sets
 *    have keys; navigation property bindings resolve (path and target);
 *    action/function imports point to unbound actions/functions
 *  - annotation terms are in scope
 */
function checkModel(csdl, facts, rep) {
  const version = csdl.$Version || "4.0";
  const line = (obj, member) =>
    obj ? (member ? obj[member + "@parser.line"] : obj["@parser.line"]) : undefined;

  // ---- schemas, qualifiers
  const schemas = {}; // namespace -> schema object
  const qualifier = {}; // namespace or alias -> namespace (local schemas)
  const external = new Set(); // namespaces/aliases included via edmx:Reference
  for (const [key, value] of Object.entries(csdl)) {
    if (key.startsWith("$") || key.includes("@")) continue;
    schemas[key] = value;
    qualifier[key] = key;
  }
  for (const [ns, schema] of Object.entries(schemas)) {
    if (schema.$Alias) {
      if (qualifier[schema.$Alias] && qualifier[schema.$Alias] !== ns)
        rep.add("error", "model", line(schema), `Schema alias '${schema.$Alias}' is not unique`);
      qualifier[schema.$Alias] = ns;
    }
  }
  for (const ref of Object.values(csdl.$Reference || {})) {
    for (const inc of ref.$Include || []) {
      external.add(inc.$Namespace);
      if (inc.$Alias) external.add(inc.$Alias);
    }
  }

  const split = (qname) => {
    const i = qname.lastIndexOf(".");
    return i < 0 ? [null, qname] : [qname.substring(0, i), qname.substring(i + 1)];
  };
  const normalize = (qname) => {
    const [q, n] = split(qname);
    return q && qualifier[q] ? qualifier[q] + "." + n : qname;
  };
  /** resolve a qualified name: {kind: primitive|abstract|model|external|unknown, def, qname, reason} */
  const resolve = (qname) => {
    if (typeof qname !== "string" || !qname.includes("."))
      return { kind: "unknown", qname, reason: "not a qualified name" };
    const [q, n] = split(qname);
    if (q === "Edm") {
      if (PRIMITIVE_TYPES.has(qname)) return { kind: "primitive", qname };
      if (ABSTRACT_TYPES[qname]) {
        if (ABSTRACT_TYPES[qname] > version)
          return { kind: "unknown", qname, reason: `not defined in CSDL ${version}` };
        return { kind: "abstract", qname };
      }
      return { kind: "unknown", qname, reason: "no such Edm type" };
    }
    if (qualifier[q]) {
      const def = schemas[qualifier[q]][n];
      if (def === undefined || n.startsWith("$"))
        return { kind: "unknown", qname, reason: `schema '${qualifier[q]}' has no element '${n}'` };
      return { kind: "model", def, qname: qualifier[q] + "." + n };
    }
    if (external.has(q)) return { kind: "external", qname };
    return {
      kind: "unknown",
      qname,
      reason: `namespace '${q}' is neither defined in this document nor included via edmx:Reference`,
    };
  };
  const kindOf = (r) => (r.kind === "model" ? (Array.isArray(r.def) ? r.def[0].$Kind : r.def.$Kind) : r.kind);

  /** check a type reference; allowed: array of model kinds plus 'primitive' / 'abstract' */
  const checkTypeRef = (qname, allowed, where, ln) => {
    const r = resolve(qname);
    if (r.kind === "unknown") {
      rep.add("error", "model", ln, `${where}: type '${qname}' does not resolve (${r.reason})`);
      return r;
    }
    if (r.kind === "external") {
      rep.add("warning", "model", ln, `${where}: type '${qname}' is in a referenced document and was not checked`);
      return r;
    }
    const k = kindOf(r);
    if (!allowed.includes(k))
      rep.add("error", "model", ln, `${where}: type '${qname}' is of kind ${k}, expected ${allowed.join(" or ")}`);
    return r;
  };

  const isMember = (k) => !k.startsWith("$") && !k.includes("@");
  const typeOf = (obj) => obj.$Type || "Edm.String";

  // ---- inheritance helpers
  const baseChain = (qname) => {
    // returns [{qname, def}] from the type itself up to the root; stops on cycles/unresolved
    const chain = [];
    const seen = new Set();
    let cur = resolve(qname);
    while (cur.kind === "model" && !seen.has(cur.qname)) {
      seen.add(cur.qname);
      chain.push({ qname: cur.qname, def: cur.def });
      if (!cur.def.$BaseType) break;
      cur = resolve(cur.def.$BaseType);
    }
    return chain;
  };
  const findMember = (typeQName, name) => {
    for (const { qname, def } of baseChain(typeQName))
      if (isMember(name) && def[name] !== undefined) return { owner: qname, member: def[name] };
    return null;
  };
  const effectiveKey = (typeQName) => {
    for (const { qname, def } of baseChain(typeQName)) if (def.$Key) return { owner: qname, key: def.$Key };
    return null;
  };
  const isSameOrDerived = (sub, sup) => baseChain(sub).some((t) => t.qname === normalize(sup));
  const related = (a, b) => isSameOrDerived(a, b) || isSameOrDerived(b, a);

  // ---- entity container count
  if (facts.containers.length !== 1)
    rep.add(
      "error",
      "model",
      facts.containers[1] ? facts.containers[1].line : null,
      `a service metadata document MUST define exactly one entity container, found ${facts.containers.length}`
    );

  const containmentTargets = new Map(); // entity type qname -> first containment nav "Type/nav"
  const containers = [];

  // ---- schema children
  for (const [ns, schema] of Object.entries(schemas)) {
    for (const [name, def] of Object.entries(schema)) {
      if (!isMember(name)) continue;
      const qn = ns + "." + name;
      if (Array.isArray(def)) {
        checkOverloads(qn, def);
        continue;
      }
      switch (def.$Kind) {
        case "EntityType":
        case "ComplexType":
          checkStructuredType(qn, def);
          break;
        case "EnumType": {
          const u = def.$UnderlyingType || "Edm.Int32";
          if (!ENUM_UNDERLYING.has(u))
            rep.add("error", "model", line(def), `EnumType ${qn}: UnderlyingType '${u}' must be Edm.Byte, Edm.SByte, Edm.Int16, Edm.Int32 or Edm.Int64`);
          break;
        }
        case "TypeDefinition": {
          const r = resolve(def.$UnderlyingType);
          if (r.kind !== "primitive" && !(r.kind === "abstract" && def.$UnderlyingType === "Edm.PrimitiveType" && version >= "4.01"))
            rep.add("error", "model", line(def), `TypeDefinition ${qn}: UnderlyingType '${def.$UnderlyingType}' must be a primitive type`);
          break;
        }
        case "Term":
          checkTypeRef(typeOf(def), ["primitive", "abstract", "ComplexType", "EnumType", "TypeDefinition", "EntityType"], `Term ${qn}`, line(def));
          if (def.$BaseTerm) {
            const r = resolve(def.$BaseTerm);
            if (r.kind === "unknown" || (r.kind === "model" && kindOf(r) !== "Term"))
              rep.add("error", "model", line(def), `Term ${qn}: BaseTerm '${def.$BaseTerm}' does not resolve to a term`);
          }
          break;
        case "EntityContainer":
          containers.push({ qn, def });
          break;
        default:
          break;
      }
    }
  }
  for (const c of containers) checkContainer(c.qn, c.def);
  checkReturnTypeNullable();
  checkCollectionNavNullable();
  checkAnnotationTerms(csdl, null);

  // ---------------------------------------------------------- structured types
  function checkStructuredType(qn, def) {
    const what = `${def.$Kind} ${qn}`;
    const ln = line(def);
    // base type
    if (def.$BaseType) {
      const r = checkTypeRef(def.$BaseType, [def.$Kind], `${what}: BaseType`, ln);
      if (r.kind === "model") {
        const chain = baseChain(qn);
        const last = chain[chain.length - 1];
        if (last.def.$BaseType && resolve(last.def.$BaseType).kind === "model")
          rep.add("error", "model", ln, `${what}: cyclic type hierarchy via '${last.def.$BaseType}'`);
      }
    }
    // key
    if (def.$Kind === "EntityType") {
      const inherited = def.$BaseType ? effectiveKey(def.$BaseType) : null;
      if (def.$Key && inherited)
        rep.add("error", "model", ln, `${what}: declares a key although it inherits one from ${inherited.owner}`);
      if (!def.$Key && !inherited && !def.$Abstract)
        rep.add("error", "model", ln, `${what}: non-abstract entity type has no key (neither declared nor inherited)`);
      if (def.$Key) checkKey(qn, def);
    }
    // members
    for (const [name, m] of Object.entries(def)) {
      if (!isMember(name) || m === null || typeof m !== "object") continue;
      const where = `${what}, ${m.$Kind === "NavigationProperty" ? "navigation property" : "property"} ${name}`;
      const mln = line(m);
      if (m.$Kind === "NavigationProperty") {
        const r = checkTypeRef(m.$Type, ["EntityType", "abstract"], where, mln);
        if (r.kind === "abstract" && m.$Type !== "Edm.EntityType")
          rep.add("error", "model", mln, `${where}: type '${m.$Type}' is not an entity type`);
        if (m.$Partner && r.kind === "model") {
          const p = findMember(r.qname, m.$Partner);
          if (!p || p.member.$Kind !== "NavigationProperty")
            rep.add("error", "model", mln, `${where}: Partner '${m.$Partner}' is not a navigation property of ${r.qname}`);
          else if (p.member.$Type && !related(resolve(p.member.$Type).qname || p.member.$Type, qn))
            rep.add("error", "model", mln, `${where}: Partner '${m.$Partner}' navigates to ${p.member.$Type}, not back to ${qn}`);
        }
        for (const [dep, principal] of Object.entries(m.$ReferentialConstraint || {})) {
          if (!isMember(dep)) continue;
          if (!findMember(qn, dep.split("/")[0]))
            rep.add("error", "model", mln, `${where}: ReferentialConstraint Property '${dep}' not found on ${qn}`);
          if (r.kind === "model" && !findMember(r.qname, String(principal).split("/")[0]))
            rep.add("error", "model", mln, `${where}: ReferentialConstraint ReferencedProperty '${principal}' not found on ${r.qname}`);
        }
        if (m.$ContainsTarget && r.kind === "model" && !containmentTargets.has(r.qname))
          containmentTargets.set(r.qname, { via: `${qn}/${name}`, line: mln });
      } else {
        const t = typeOf(m);
        const r = checkTypeRef(t, ["primitive", "abstract", "ComplexType", "EnumType", "TypeDefinition"], where, mln);
        if (r.kind === "abstract" && t === "Edm.EntityType")
          rep.add("error", "model", mln, `${where}: a structural property cannot be of type Edm.EntityType`);
        if (m.$Collection && t === "Edm.Stream")
          rep.add("error", "model", mln, `${where}: Edm.Stream cannot be used in collections`);
      }
    }
  }

  function checkKey(qn, def) {
    const ln = line(def);
    for (const ref of def.$Key) {
      const [alias, p] = typeof ref === "string" ? [null, ref] : Object.entries(ref)[0];
      const segs = p.split("/");
      if (segs.length > 1 && !alias)
        rep.add("error", "model", ln, `EntityType ${qn}: key property path '${p}' requires an Alias`);
      let owner = qn;
      let prop = null;
      for (let i = 0; i < segs.length; i++) {
        const f = findMember(owner, segs[i]);
        if (!f || f.member.$Kind === "NavigationProperty") {
          rep.add("error", "model", ln, `EntityType ${qn}: key PropertyRef '${p}' does not refer to a structural property`);
          prop = null;
          break;
        }
        prop = f.member;
        if (i < segs.length - 1) {
          const r = resolve(typeOf(prop));
          if (r.kind !== "model" || kindOf(r) !== "ComplexType") {
            rep.add("error", "model", ln, `EntityType ${qn}: key path '${p}' traverses non-complex '${segs[i]}'`);
            prop = null;
            break;
          }
          owner = r.qname;
        }
      }
      if (!prop) continue;
      const t = typeOf(prop);
      const r = resolve(t);
      const under =
        r.kind === "model" && kindOf(r) === "TypeDefinition" ? r.def.$UnderlyingType : t;
      const okType =
        KEY_TYPES.has(under) || (r.kind === "model" && kindOf(r) === "EnumType");
      if (!okType)
        rep.add("error", "model", ln, `EntityType ${qn}: key property '${p}' has type '${t}', not permitted for key properties`);
      if (prop.$Nullable)
        rep.add("error", "model", ln, `EntityType ${qn}: key property '${p}' MUST be non-nullable (add Nullable="false")`);
      if (prop.$Collection)
        rep.add("error", "model", ln, `EntityType ${qn}: key property '${p}' MUST NOT be a collection`);
    }
  }

  // ---------------------------------------------------------- actions/functions
  function checkOverloads(qn, overloads) {
    const seen = new Map();
    for (const op of overloads) {
      const kind = op.$Kind; // Action | Function
      const what = `${kind} ${qn}`;
      const ln = line(op);
      const params = op.$Parameter || [];
      const names = new Set();
      for (const p of params) {
        if (names.has(p.$Name))
          rep.add("error", "model", line(p) || ln, `${what}: duplicate parameter name '${p.$Name}'`);
        names.add(p.$Name);
      }
      if (op.$IsBound && params.length === 0)
        rep.add("error", "model", ln, `${what}: bound ${kind.toLowerCase()} MUST have at least one parameter (the binding parameter)`);
      params.forEach((p, i) => {
        const t = typeOf(p);
        const where = `${what}, parameter ${p.$Name}`;
        checkTypeRef(t, ["primitive", "abstract", "EntityType", "ComplexType", "EnumType", "TypeDefinition"], where, line(p) || ln);
        const isBinding = op.$IsBound && i === 0;
        if (t === "Edm.Stream" && (p.$Collection || (!isBinding && version < "4.02")))
          rep.add("error", "model", line(p) || ln, `${where}: Edm.Stream cannot be used in collections or for non-binding parameters`);
      });
      if (kind === "Function" && !op.$ReturnType)
        rep.add("error", "model", ln, `${what}: a function MUST specify a return type`);
      if (op.$ReturnType) {
        const t = typeOf(op.$ReturnType);
        checkTypeRef(t, ["primitive", "abstract", "EntityType", "ComplexType", "EnumType", "TypeDefinition"], `${what}: ReturnType`, line(op.$ReturnType) || ln);
        if (t === "Edm.Stream" && op.$ReturnType.$Collection)
          rep.add("error", "model", ln, `${what}: ReturnType Collection(Edm.Stream) is not allowed`);
      }
      if (op.$EntitySetPath) checkEntitySetPath(what, op, ln);
      // overload signatures
      const binding = op.$IsBound && params[0]
        ? (params[0].$Collection ? `Collection(${normalize(typeOf(params[0]))})` : normalize(typeOf(params[0])))
        : "";
      const nonBinding = (op.$IsBound ? params.slice(1) : params).map((p) => p.$Name).sort().join(",");
      const ret = op.$ReturnType
        ? (op.$ReturnType.$Collection ? `Collection(${normalize(typeOf(op.$ReturnType))})` : normalize(typeOf(op.$ReturnType)))
        : "";
      let sig;
      if (kind === "Action") sig = op.$IsBound ? `bound:${binding}` : "unbound";
      else sig = op.$IsBound ? `bound:${binding}|${nonBinding}` : `unbound|${nonBinding}`;
      if (seen.has(sig))
        rep.add("error", "model", ln, `${what}: overload not distinguishable from the one at line ${seen.get(sig)} (${kind === "Action" ? "binding parameter type" : "binding parameter type and set of parameter names"} must be unique)`);
      else seen.set(sig, ln);
      if (kind === "Function") {
        const group = op.$IsBound ? `bound:${binding}` : "unbound";
        const other = overloads.find(
          (o) => o !== op && o.$Kind === "Function" && !!o.$IsBound === !!op.$IsBound &&
            (group === "unbound" || (o.$Parameter && o.$Parameter[0] &&
              `bound:${o.$Parameter[0].$Collection ? `Collection(${normalize(typeOf(o.$Parameter[0]))})` : normalize(typeOf(o.$Parameter[0]))}` === group))
        );
        if (other && other.$ReturnType && op.$ReturnType) {
          const oret = other.$ReturnType.$Collection ? `Collection(${normalize(typeOf(other.$ReturnType))})` : normalize(typeOf(other.$ReturnType));
          if (oret !== ret)
            rep.add("error", "model", ln, `${what}: overloads with the same name and binding MUST have the same return type (${ret} vs ${oret})`);
        }
      }
    }
  }

  function checkEntitySetPath(what, op, ln) {
    const params = op.$Parameter || [];
    if (!op.$IsBound || !params.length) {
      rep.add("error", "model", ln, `${what}: EntitySetPath is only allowed for bound operations`);
      return;
    }
    const segs = op.$EntitySetPath.split("/");
    if (segs[0] !== params[0].$Name) {
      rep.add("error", "model", ln, `${what}: EntitySetPath '${op.$EntitySetPath}' must start with the binding parameter name '${params[0].$Name}'`);
      return;
    }
    let cur = resolve(typeOf(params[0]));
    for (const s of segs.slice(1)) {
      if (cur.kind !== "model") return;
      if (s.includes(".")) {
        cur = resolve(s);
        if (cur.kind === "unknown" || (cur.kind === "model" && kindOf(cur) !== "EntityType"))
          rep.add("error", "model", ln, `${what}: EntitySetPath type cast '${s}' is not an entity type`);
        continue;
      }
      const f = findMember(cur.qname, s);
      if (!f || f.member.$Kind !== "NavigationProperty") {
        rep.add("error", "model", ln, `${what}: EntitySetPath segment '${s}' is not a navigation property of ${cur.qname}`);
        return;
      }
      cur = resolve(f.member.$Type);
    }
    const rt = op.$ReturnType && resolve(typeOf(op.$ReturnType));
    if (!rt || (rt.kind === "model" && kindOf(rt) !== "EntityType") || rt.kind === "primitive")
      rep.add("error", "model", ln, `${what}: EntitySetPath requires an entity-typed return type`);
  }

  // Rule (CSDL XML 4.01 section 12.8, Attribute Nullable of edm:ReturnType):
  // "If the return type is a collection of entity types, the Nullable attribute
  //  has no meaning and MUST NOT be specified."
  function checkReturnTypeNullable() {
    for (const rt of facts.returnTypes) {
      const m = /^Collection\((.+)\)$/.exec(rt.type || "");
      if (!m || !rt.hasNullable) continue;
      const r = resolve(m[1]);
      if ((r.kind === "model" && kindOf(r) === "EntityType") || m[1] === "Edm.EntityType")
        rep.add(
          "error",
          "model",
          rt.line,
          `${rt.operation}: ReturnType Type="${rt.type}" is a collection of entity types; the Nullable attribute has no meaning and MUST NOT be specified (OASIS CSDL XML 4.01 sec. 12.8) - remove Nullable`
        );
    }
  }

  // Rule (CSDL XML 4.01 section 8.2, Attribute Nullable of edm:NavigationProperty):
  // "Nullable MUST NOT be specified for a collection-valued navigation property,
  //  a collection is allowed to have zero items."
  // (odata-csdl only reports Nullable="true" here; this also catches Nullable="false".)
  function checkCollectionNavNullable() {
    for (const np of facts.navigationProperties) {
      if (np.hasNullable && /^Collection\(/.test(np.type || ""))
        rep.add(
          "error",
          "model",
          np.line,
          `${np.owner}, navigation property ${np.name}: Nullable MUST NOT be specified for a collection-valued navigation property (OASIS CSDL XML 4.01 sec. 8.2) - remove Nullable`
        );
    }
  }

  // ---------------------------------------------------------- entity container
  function checkContainer(qn, container) {
    if (container.$Extends) {
      const r = resolve(container.$Extends);
      if (r.kind === "unknown" || (r.kind === "model" && kindOf(r) !== "EntityContainer"))
        rep.add("error", "model", line(container) || (facts.containers[0] || {}).line, `EntityContainer ${qn}: Extends '${container.$Extends}' is not an entity container in scope`);
    }
    const children = Object.entries(container).filter(([k]) => isMember(k));
    const byName = new Map(children);
    const navSourceType = (name) => {
      const c = byName.get(name);
      return c && c.$Type && (c.$Collection || c.$Kind === "Singleton" || !c.$Kind) ? c.$Type : null;
    };
    for (const [name, child] of children) {
      const ln = line(child) || facts.childLines[name];
      if (child.$Action !== undefined) {
        const r = resolve(child.$Action);
        if (r.kind === "unknown" || (r.kind === "model" && !(Array.isArray(r.def) && r.def.some((o) => o.$Kind === "Action" && !o.$IsBound))))
          rep.add("error", "model", ln, `ActionImport ${name}: '${child.$Action}' is not an unbound action in scope`);
        if (child.$EntitySet) checkImportEntitySet(`ActionImport ${name}`, child.$EntitySet, ln);
        continue;
      }
      if (child.$Function !== undefined) {
        const r = resolve(child.$Function);
        if (r.kind === "unknown" || (r.kind === "model" && !(Array.isArray(r.def) && r.def.some((o) => o.$Kind === "Function" && !o.$IsBound))))
          rep.add("error", "model", ln, `FunctionImport ${name}: '${child.$Function}' is not an unbound function in scope`);
        if (child.$EntitySet) checkImportEntitySet(`FunctionImport ${name}`, child.$EntitySet, ln);
        continue;
      }
      // EntitySet ($Collection: true) or Singleton
      const kind = child.$Collection ? "EntitySet" : "Singleton";
      const r = checkTypeRef(child.$Type, ["EntityType"], `${kind} ${name}`, ln);
      if (r.kind === "abstract")
        rep.add("error", "model", ln, `${kind} ${name}: type must be a model entity type, not ${child.$Type}`);
      if (r.kind !== "model") continue;
      if (kind === "EntitySet" && !effectiveKey(r.qname))
        rep.add("error", "model", ln, `EntitySet ${name}: entity type ${r.qname} has no key`);
      if (kind === "EntitySet" && containmentTargets.has(r.qname)) {
        const c = containmentTargets.get(r.qname);
        rep.add(
          "warning",
          "model",
          ln,
          `EntitySet ${name}: entity type ${r.qname} is also the target of containment navigation property ${c.via}; ` +
            `an entity cannot both belong to an entity set and be contained, so the service must keep these instances disjoint`
        );
      }
      for (const [p, target] of Object.entries(child.$NavigationPropertyBinding || {})) {
        if (!isMember(p)) continue;
        checkBinding(`${kind} ${name}`, r.qname, p, target, facts.bindingLines[`${name}|${p}`] || ln);
      }
    }

    function checkImportEntitySet(what, es, ln) {
      const simple = es.includes("/") ? es.split("/").pop() : es;
      if (!navSourceType(simple))
        rep.add("error", "model", ln, `${what}: EntitySet '${es}' is not an entity set of ${qn}`);
    }

    function checkBinding(what, typeQn, p, target, ln) {
      const where = `${what}: NavigationPropertyBinding Path="${p}"`;
      const segs = p.split("/");
      let cur = typeQn;
      let nav = null;
      for (let i = 0; i < segs.length; i++) {
        const s = segs[i];
        if (s.includes(".")) {
          const r = resolve(s);
          if (r.kind !== "model" || !["EntityType", "ComplexType"].includes(kindOf(r))) {
            rep.add("error", "model", ln, `${where}: type cast segment '${s}' does not resolve to a structured type`);
            return;
          }
          cur = r.qname;
          continue;
        }
        const f = findMember(cur, s);
        if (!f) {
          rep.add("error", "model", ln, `${where}: '${s}' is not a property of ${cur} (a type-cast segment is needed for members of derived types)`);
          return;
        }
        if (i === segs.length - 1) {
          if (f.member.$Kind !== "NavigationProperty") {
            rep.add("error", "model", ln, `${where}: last segment '${s}' is not a navigation property`);
            return;
          }
          if (f.member.$ContainsTarget) {
            rep.add("error", "model", ln, `${where}: containment navigation property '${s}' MUST NOT be the last path segment`);
            return;
          }
          nav = f.member;
        } else {
          const r = resolve(typeOf(f.member));
          if (r.kind !== "model") {
            rep.add("error", "model", ln, `${where}: segment '${s}' is not structured`);
            return;
          }
          cur = r.qname;
        }
      }
      // target
      let targetName = target;
      if (target.includes("/")) {
        const [cont, ...rest] = target.split("/");
        const r = resolve(cont);
        if (r.kind === "external") return;
        if (r.kind !== "model" || normalize(cont) !== qn) {
          rep.add("error", "model", ln, `${where}: Target '${target}' is not in entity container ${qn}`);
          return;
        }
        targetName = rest[0];
      }
      const tt = navSourceType(targetName);
      if (!tt) {
        rep.add("error", "model", ln, `${where}: Target '${target}' is not an entity set or singleton`);
        return;
      }
      if (nav && !related(resolve(tt).qname || tt, resolve(nav.$Type).qname || nav.$Type))
        rep.add("error", "model", ln, `${where}: Target '${target}' has type ${tt}, incompatible with navigation property type ${nav.$Type}`);
    }
  }

  // ---------------------------------------------------------- annotations
  function checkAnnotationTerms(obj, ln) {
    if (obj === null || typeof obj !== "object") return;
    if (Array.isArray(obj)) {
      obj.forEach((o) => checkAnnotationTerms(o, ln));
      return;
    }
    const here = obj["@parser.line"] || ln;
    for (const [k, v] of Object.entries(obj)) {
      if (k === "$Reference") continue;
      const at = k.indexOf("@");
      if (at >= 0 && !k.endsWith("@parser.line")) {
        const term = k.substring(at + 1).split("#")[0];
        if (!term.startsWith("odata.")) {
          const r = resolve(term);
          if (r.kind === "unknown")
            rep.add("error", "model", here, `annotation term '${term}' does not resolve (${r.reason})`);
          else if (r.kind === "model" && kindOf(r) !== "Term")
            rep.add("error", "model", here, `annotation '${term}' is not a term`);
        }
      }
      checkAnnotationTerms(v, here);
    }
  }
}

// ---------------------------------------------------------------- odata-openapi

function checkOpenApi(json, rep) {
  const messages = [];
  try {
    csdl2openapi(JSON.parse(JSON.stringify(json)), { messages, diagram: false });
  } catch (e) {
    rep.add("error", "odata-openapi", null, `converter failed on this model: ${e.message}`);
    return;
  }
  for (const m of messages) rep.add("warning", "odata-openapi", null, String(m));
}

// ---------------------------------------------------------------- main

async function checkFile(file, withXsd) {
  const rep = makeReporter(file);
  let xml;
  try {
    xml = fs.readFileSync(file);
  } catch (e) {
    rep.add("error", "io", null, e.message);
    return rep;
  }
  if (withXsd) await checkXsdWasm(file, xml, rep);

  // odata-csdl: structural checks while converting to CSDL JSON
  const messages = [];
  let json;
  try {
    json = xml2json(xml, { messages });
  } catch (e) {
    rep.add("error", "odata-csdl", e.parser && e.parser.line, e.message.split("\n")[0]);
    return rep;
  }
  for (const m of messages)
    rep.add("error", "odata-csdl", m.parser && m.parser.line, m.message);

  checkJsonSchema(json, rep);

  let facts;
  try {
    facts = collectXmlFacts(xml);
  } catch (e) {
    rep.add("error", "xml", null, e.message);
    return rep;
  }
  const jsonWithLines = xml2json(xml, { lineNumbers: true, messages: [] });
  try {
    checkModel(jsonWithLines, facts, rep);
  } catch (e) {
    rep.add("error", "model", null, `model check aborted: ${e.stack}`);
  }

  checkOpenApi(json, rep);
  return rep;
}

async function main() {
  const args = process.argv.slice(2);
  const withXsd = args.includes("--xsd");
  const files = args.filter((a) => a !== "--xsd");
  if (!files.length || args.includes("-h") || args.includes("--help")) {
    console.error("Usage: node csdl-check.js [--xsd] FILE...");
    process.exit(2);
  }
  let errors = 0;
  for (const file of files) {
    const rep = await checkFile(file, withXsd);
    rep.print();
    const e = rep.errors();
    const w = rep.warnings();
    console.log(
      `${file}: ${e ? "INVALID" : "valid"} (${e} error(s), ${w} warning(s)) [odata-csdl, csdl.schema.json, model rules, odata-openapi${withXsd ? ", xsd(wasm)" : ""}]`
    );
    errors += e;
  }
  process.exit(errors ? 1 : 0);
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(2);
});

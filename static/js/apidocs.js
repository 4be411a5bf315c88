// The API page: renders /api/openapi.json (paths, parameters, bodies, responses, schemas).

const METHODS = ["get", "post", "put", "patch", "delete"];
const root = document.getElementById("apidocs");
const toc = document.getElementById("toc");
const doc = document.getElementById("doc");

/** An element with `props` (className, id, href, textContent, ...) and children. */
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

const refName = (ref) => ref.split("/").pop();
const anchor = (...parts) => parts.join("-").replace(/[^\w-]+/g, "_");

/** A short, linked description of a schema's type: `Job`, `array of Segment`, `string | null`. */
function typeOf(schema = {}) {
  if (schema.$ref) {
    const name = refName(schema.$ref);
    return el("a", { href: `#schema-${name}`, className: "type-ref", textContent: name });
  }
  const span = el("span", { className: "type" });
  const alternatives = schema.anyOf || schema.oneOf;
  if (alternatives) {
    alternatives.forEach((item, i) => span.append(i ? " | " : "", typeOf(item)));
  } else if ("const" in schema) {
    span.append(JSON.stringify(schema.const));
  } else if (schema.type === "array") {
    span.append("array of ", typeOf(schema.items));
  } else if (schema.type === "object" && typeof schema.additionalProperties === "object") {
    span.append("map of ", typeOf(schema.additionalProperties));
  } else {
    const types = [].concat(schema.type || "any");
    span.append(types.map((type) => (type === "string" && schema.format ? `${type} (${schema.format})` : type)).join(" | "));
  }
  return span;
}

/** Enum, default, bounds and description of a field, as one line. */
function notes(schema = {}) {
  const parts = [];
  const choices = schema.enum || schema.items?.enum;
  if (choices) parts.push(`one of: ${choices.join(", ")}`);
  if (schema.examples) parts.push(`e.g. ${schema.examples.slice(0, 4).join(", ")}`);
  if ("default" in schema) parts.push(`default: ${JSON.stringify(schema.default)}`);
  if ("minimum" in schema || "maximum" in schema) parts.push(`range: ${schema.minimum ?? "…"}–${schema.maximum ?? "…"}`);
  if (schema.pattern) parts.push(`pattern: ${schema.pattern}`);
  return [schema.description, parts.join("; ")].filter(Boolean).join(" ");
}

/** A table of fields: name (required marked), type, notes. */
function fieldTable(rows) {
  const body = el("tbody");
  for (const { name, required, schema, where } of rows) {
    body.append(el("tr", {},
      el("td", { className: "field-name" }, el("code", { textContent: name }),
        required ? el("span", { className: "required", title: "required", textContent: " *" }) : null),
      el("td", {}, typeOf(schema), where ? el("span", { className: "where", textContent: ` in ${where}` }) : null),
      el("td", { className: "notes", textContent: notes(schema) })));
  }
  return el("table", { className: "fields-table" },
    el("thead", {}, el("tr", {}, el("th", { textContent: "Name" }), el("th", { textContent: "Type" }),
      el("th", { textContent: "Notes" }))), body);
}

/** An object schema's properties as table rows; any other schema as its type alone. */
function schemaView(schema) {
  if (schema.type === "object" && schema.properties) {
    const required = new Set(schema.required || []);
    return fieldTable(Object.entries(schema.properties).map(([name, property]) =>
      ({ name, required: required.has(name), schema: property })));
  }
  return el("p", {}, typeOf(schema));
}

function contentView(content = {}) {
  return Object.entries(content).map(([mimetype, media]) =>
    el("div", { className: "media" }, el("code", { className: "mimetype", textContent: mimetype }), " ",
      media.schema && media.schema.type === "object" ? schemaView(media.schema) : typeOf(media.schema)));
}

function operationView(path, method, op) {
  const id = anchor("op", method, path);
  const section = el("section", { className: "card operation", id });
  section.append(el("h3", { className: "op-head" },
    el("span", { className: `method method-${method}`, textContent: method.toUpperCase() }),
    el("code", { className: "path", textContent: path }),
    el("span", { className: "summary", textContent: op.summary || "" })));
  if (op.description) section.append(el("p", { className: "description", textContent: op.description }));
  if (op.parameters?.length) {
    section.append(el("h4", { textContent: "Parameters" }), fieldTable(op.parameters.map((p) =>
      ({ name: p.name, required: p.required, schema: { ...p.schema, description: p.description }, where: p.in }))));
  }
  if (op.requestBody) {
    section.append(el("h4", { textContent: "Request body" }), ...contentView(op.requestBody.content));
  }
  section.append(el("h4", { textContent: "Responses" }));
  const list = el("dl", { className: "responses" });
  for (const [status, response] of Object.entries(op.responses || {})) {
    const headers = Object.keys(response.headers || {});
    list.append(
      el("dt", { className: `status status-${status[0]}`, textContent: status }),
      el("dd", {}, el("span", { textContent: response.description || "" }),
        headers.length ? el("span", { className: "where", textContent: ` (headers: ${headers.join(", ")})` }) : null,
        ...contentView(response.content)));
  }
  section.append(list);
  return section;
}

function render(spec) {
  doc.replaceChildren(el("section", { className: "card intro" },
    el("h2", { textContent: `${spec.info.title} ${spec.info.version}` }),
    el("p", { textContent: spec.info.description || "" })));
  const byTag = new Map((spec.tags || []).map((tag) => [tag.name, []]));
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of METHODS.filter((m) => item[m])) {
      const tag = item[method].tags?.[0] || "Other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([path, method, item[method]]);
    }
  }
  toc.replaceChildren();
  for (const [tag, operations] of byTag) {
    const links = el("ul");
    const group = el("div", { className: "tag-group", id: anchor("tag", tag) }, el("h2", { textContent: tag }));
    for (const [path, method, op] of operations) {
      links.append(el("li", {}, el("a", { href: `#${anchor("op", method, path)}` },
        el("span", { className: `method method-${method}`, textContent: method.toUpperCase() }), " ", path)));
      group.append(operationView(path, method, op));
    }
    toc.append(el("h3", { textContent: tag }), links);
    doc.append(group);
  }
  const schemas = el("div", { className: "tag-group", id: "schemas" }, el("h2", { textContent: "Schemas" }));
  for (const [name, schema] of Object.entries(spec.components?.schemas || {})) {
    schemas.append(el("section", { className: "card schema", id: `schema-${name}` },
      el("h3", {}, el("code", { textContent: name })), schemaView(schema)));
  }
  toc.append(el("h3", {}, el("a", { href: "#schemas", textContent: "Schemas" })));
  doc.append(schemas);
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

fetch(root.dataset.spec)
  .then((response) => {
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  })
  .then(render)
  .catch((error) => {
    document.getElementById("loading").replaceWith(
      el("p", { className: "form-error", textContent: `The OpenAPI document could not be loaded: ${error.message}` }));
  });

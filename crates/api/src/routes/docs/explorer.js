// The API explorer: reads /api/openapi.json and renders every operation, grouped by tag,
// with its parameters, schemas and a "Try it" form. Served from this origin under a strict
// Content Security Policy; every text from the document or a response is inserted with
// textContent, never parsed as HTML.

const TOKEN_KEY = "sightline.explorer.token";
const METHODS = ["get", "post", "put", "patch", "delete"];
const MAX_DEPTH = 8;

/** Creates an element with a class and text (as text, never HTML). */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** The object a local `$ref` ("#/components/…") points to. */
function resolveRef(doc, ref) {
  if (typeof ref !== "string" || !ref.startsWith("#/")) return undefined;
  return ref
    .slice(2)
    .split("/")
    .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce((node, key) => (node === undefined ? undefined : node[key]), doc);
}

/** `schema` with its `$ref`s inlined (a reference seen on the way down stays a reference). */
function inline(doc, schema, seen = new Set(), depth = 0) {
  if (Array.isArray(schema)) return schema.map((s) => inline(doc, s, seen, depth + 1));
  if (schema === null || typeof schema !== "object") return schema;
  if (depth > MAX_DEPTH) return { "…": "nested deeper" };
  if (typeof schema.$ref === "string") {
    if (seen.has(schema.$ref)) return { $ref: schema.$ref };
    const target = resolveRef(doc, schema.$ref);
    if (target === undefined) return { $ref: schema.$ref, unresolved: true };
    const inner = new Set(seen).add(schema.$ref);
    return inline(doc, target, inner, depth + 1);
  }
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key] = inline(doc, value, seen, depth + 1);
  }
  return out;
}

/** A plausible example value of an inlined schema, to prefill a request body. */
function example(schema, depth = 0) {
  if (!schema || typeof schema !== "object" || depth > MAX_DEPTH) return null;
  if (schema.example !== undefined) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  for (const key of ["oneOf", "anyOf"]) {
    if (Array.isArray(schema[key]) && schema[key].length) {
      const choice = schema[key].find((s) => s && s.type !== "null") || schema[key][0];
      return example(choice, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf)) {
    return Object.assign({}, ...schema.allOf.map((s) => example(s, depth + 1) || {}));
  }
  const type = Array.isArray(schema.type)
    ? schema.type.find((t) => t !== "null")
    : schema.type;
  switch (type) {
    case "object": {
      const out = {};
      const required = new Set(schema.required || []);
      for (const [name, prop] of Object.entries(schema.properties || {})) {
        if (required.has(name) || !schema.required) out[name] = example(prop, depth + 1);
      }
      return out;
    }
    case "array":
      return [example(schema.items, depth + 1)].filter((v) => v !== null);
    case "integer":
    case "number":
      return 0;
    case "boolean":
      return false;
    case "string":
      return "";
    default:
      return schema.properties ? example({ ...schema, type: "object" }, depth) : {};
  }
}

function pre(value) {
  return el("pre", null, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

function renderParameters(parameters) {
  const table = el("table");
  const head = el("tr");
  for (const title of ["name", "in", "type", "required", "description"]) {
    head.append(el("th", null, title));
  }
  table.append(head);
  for (const p of parameters) {
    const row = el("tr");
    const schema = p.schema || {};
    const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "";
    row.append(
      el("td", "path", p.name),
      el("td", null, p.in),
      el("td", null, type),
      el("td", null, p.required ? "yes" : "no"),
      el("td", null, p.description || ""),
    );
    table.append(row);
  }
  return table;
}

function renderContent(doc, content) {
  const box = el("div");
  for (const [type, media] of Object.entries(content || {})) {
    box.append(el("div", "path", type));
    if (media.schema) box.append(pre(inline(doc, media.schema)));
  }
  return box;
}

function renderResponses(doc, responses) {
  const box = el("div");
  for (const [status, raw] of Object.entries(responses || {})) {
    const response = raw.$ref ? resolveRef(doc, raw.$ref) || {} : raw;
    const line = el("div");
    line.append(el("strong", null, status), document.createTextNode(" "));
    line.append(el("span", null, response.description || ""));
    box.append(line, renderContent(doc, response.content));
  }
  return box;
}

function security(op) {
  if (!op.security || op.security.length === 0) return "public";
  return op.security
    .map((req) =>
      Object.entries(req)
        .map(([scheme, scopes]) => (scopes.length ? `${scheme} (${scopes.join(", ")})` : scheme))
        .join(" + ") || "anonymous (signed)",
    )
    .join(" or ");
}

/** The "Try it" form of one operation. */
function tryForm(doc, method, path, op) {
  const form = el("form", "try");
  const inputs = [];
  for (const p of op.parameters || []) {
    if (p.in !== "path" && p.in !== "query") continue;
    const label = el("label");
    label.append(el("span", "path", `${p.name} (${p.in})${p.required ? " *" : ""}`));
    const input = el("input");
    input.name = p.name;
    input.required = Boolean(p.required);
    input.placeholder = p.description || "";
    label.append(input);
    form.append(label);
    inputs.push({ param: p, input });
  }
  let body = null;
  let bodyType = "application/json";
  const content = op.requestBody && op.requestBody.content;
  if (content) {
    bodyType = Object.keys(content)[0] || bodyType;
    const label = el("label");
    label.append(el("span", "path", `body (${bodyType})`));
    body = el("textarea");
    const media = content[bodyType] || {};
    if (bodyType.includes("json") && media.schema) {
      body.value = JSON.stringify(example(inline(doc, media.schema)), null, 2);
    }
    label.append(body);
    form.append(label);
  }
  const send = el("button", null, `Send ${method.toUpperCase()}`);
  send.type = "submit";
  form.append(send);
  const result = el("div");
  form.append(result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.replaceChildren(el("p", null, "Sending…"));
    let url = path;
    const query = new URLSearchParams();
    for (const { param, input } of inputs) {
      if (input.value === "") continue;
      if (param.in === "path") {
        url = url.replace(`{${param.name}}`, encodeURIComponent(input.value));
      } else {
        query.append(param.name, input.value);
      }
    }
    const qs = query.toString();
    if (qs) url += `?${qs}`;
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method: method.toUpperCase(), headers };
    if (body && body.value.trim() !== "") {
      headers["Content-Type"] = bodyType;
      init.body = body.value;
    }
    try {
      const started = performance.now();
      const response = await fetch(url, init);
      const text = await response.text();
      const ms = Math.round(performance.now() - started);
      const status = el(
        "p",
        response.ok ? "status-ok" : "status-err",
        `${response.status} ${response.statusText} · ${ms} ms · ${init.method} ${url}`,
      );
      const headerLines = [...response.headers.entries()].map(([k, v]) => `${k}: ${v}`);
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        // Not JSON (Prometheus text, HTML, an event stream): shown as it came.
      }
      result.replaceChildren(status, el("h3", null, "Headers"), pre(headerLines.join("\n")),
        el("h3", null, "Body"), pre(shown));
    } catch (error) {
      result.replaceChildren(el("p", "status-err", `Request failed: ${error}`));
    }
  });
  return form;
}

function renderOperation(doc, method, path, op) {
  const details = el("details", "op");
  details.dataset.search = [method, path, op.summary, ...(op.tags || [])].join(" ").toLowerCase();
  const summary = el("summary");
  summary.append(
    el("span", `method ${method}`, method),
    el("span", "path", path),
    el("span", "summary", op.summary || ""),
    el("span", "lock", security(op)),
  );
  details.append(summary);
  // Built on first open: a few hundred forms at once would slow the page down.
  details.addEventListener(
    "toggle",
    () => {
      if (!details.open || details.dataset.built) return;
      details.dataset.built = "yes";
      const body = el("div", "op-body");
      if (op.description) body.append(el("p", "description", op.description));
      body.append(el("p", null, `Security: ${security(op)}`));
      if (op.parameters && op.parameters.length) {
        body.append(el("h3", null, "Parameters"), renderParameters(op.parameters));
      }
      if (op.requestBody) {
        body.append(el("h3", null, "Request body"));
        if (op.requestBody.description) body.append(el("p", null, op.requestBody.description));
        body.append(renderContent(doc, op.requestBody.content));
      }
      body.append(el("h3", null, "Responses"), renderResponses(doc, op.responses));
      body.append(el("h3", null, "Try it"), tryForm(doc, method, path, op));
      details.append(body);
    },
  );
  return details;
}

function render(doc) {
  document.getElementById("title").textContent = doc.info?.title ? `${doc.info.title} API` : "API";
  document.getElementById("version").textContent =
    `Version ${doc.info?.version ?? "?"} · OpenAPI ${doc.openapi}`;
  const groups = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!groups.has(tag)) groups.set(tag, { tag: { name: tag }, ops: [] });
      groups.get(tag).ops.push(renderOperation(doc, method, path, op));
    }
  }
  const main = document.getElementById("operations");
  main.replaceChildren();
  for (const { tag, ops } of groups.values()) {
    if (ops.length === 0) continue;
    const section = el("section");
    section.append(el("h2", null, tag.name));
    if (tag.description) section.append(el("p", "tag-description", tag.description));
    section.append(...ops);
    main.append(section);
  }
}

function setupAuth() {
  const input = document.getElementById("token");
  const state = document.getElementById("auth-state");
  const show = () => {
    state.textContent = sessionStorage.getItem(TOKEN_KEY)
      ? "token set (this tab only)"
      : "no token: only public routes will answer";
  };
  document.getElementById("auth").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    input.value = "";
    show();
  });
  document.getElementById("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    show();
  });
  show();
}

function setupFilter() {
  document.getElementById("filter").addEventListener("input", (event) => {
    const needle = event.target.value.trim().toLowerCase();
    for (const op of document.querySelectorAll("details.op")) {
      op.classList.toggle("hidden", needle !== "" && !op.dataset.search.includes(needle));
    }
  });
}

async function main() {
  setupAuth();
  setupFilter();
  const main = document.getElementById("operations");
  try {
    const response = await fetch("/api/openapi.json");
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    render(await response.json());
  } catch (error) {
    main.replaceChildren(el("p", "status-err", `Could not load /api/openapi.json: ${error}`));
  }
}

main();

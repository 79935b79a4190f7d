// labelport's web UI. One script for every page: the server renders a shell whose
// <body data-page="..."> names the page, and this builds it. Every change goes through the same
// REST API as any other client (the browser's session cookie authenticates it); nothing here
// decides anything the server does not check again.
"use strict";

// ------------------------------------------------------------------ helpers

/** Builds an element: h("a", {href: "/"}, "text", child, ...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = true;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An error the API answered, with its readable message. */
class ApiError extends Error {
  constructor(status, body) {
    super(errorText(status, body));
    this.status = status;
    this.body = body;
  }
}

/** Label Studio's error body as one readable message: field errors first, else `detail`. */
function errorText(status, body) {
  if (body && typeof body === "object") {
    const fields = body.validation_errors;
    if (fields && typeof fields === "object" && Object.keys(fields).length) {
      return Object.entries(fields)
        .map(([name, messages]) => {
          const text = [].concat(messages).map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ");
          return name === "non_field_errors" ? text : `${name}: ${text}`;
        })
        .join("\n");
    }
    if (body.detail) return String(body.detail);
    if (body.error) return String(body.error);
  }
  return `The server answered ${status}.`;
}

/** Calls the API; resolves to the decoded JSON (or null), rejects with an ApiError. */
async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, { detail: `Cannot reach the server: ${error.message}` });
  }
  if (response.status === 401 && document.body.dataset.page !== "login") {
    location.href = `/user/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    throw new ApiError(401, { detail: "Signed out." });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 500) };
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function formatTime(value) {
  if (!value) return "never";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The project id in /projects/{id}/... */
function projectIdFromPath() {
  const match = location.pathname.match(/^\/projects\/(\d+)/);
  return match ? Number(match[1]) : null;
}

/** Opens the next task this user still has to label (after `afterTask`), or says there is none. */
async function openNextTask(projectId, afterTask) {
  try {
    const task = await api("GET", `/api/projects/${projectId}/next${afterTask ? `?after=${afterTask}` : ""}`);
    location.href = `/projects/${projectId}/label?task=${task.id}`;
    return true;
  } catch (error) {
    if (error.status !== 404) throw error;
    return false;
  }
}

/** A banner for a message; kind is "error", "ok" or "info". */
function notice(kind, text) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** A modal dialog; returns {close, body, footer}. */
function dialog(title, { id, wide } = {}) {
  const body = h("div", { class: "dialog-body" });
  const footer = h("div", { class: "dialog-footer" });
  const box = h(
    "div",
    { class: `dialog${wide ? " wide" : ""}`, id, role: "dialog", "aria-modal": "true", "aria-label": title },
    h("div", { class: "dialog-header" }, h("h2", {}, title), h("button", { class: "icon", "aria-label": "Close", onclick: () => close() }, "×")),
    body,
    footer,
  );
  const overlay = h("div", { class: "overlay" }, box);
  const onKey = (event) => {
    if (event.key === "Escape") close();
  };
  function close() {
    overlay.remove();
    document.removeEventListener("keydown", onKey);
  }
  document.addEventListener("keydown", onKey);
  document.body.append(overlay);
  return { close, body, footer, box };
}

let currentUser = null;

/** The top bar of every signed-in page. */
function topbar() {
  const signOut = async () => {
    try {
      await api("POST", "/user/logout");
      location.href = "/user/login";
    } catch (error) {
      alert(`Signing out failed: ${error.message}`);
    }
  };
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "/projects" }, "labelport"),
    h("nav", {}, h("a", { href: "/projects" }, "Projects"), h("a", { href: "/user/account" }, "Account")),
    h(
      "div",
      { class: "who" },
      currentUser ? h("span", { id: "current-user" }, currentUser.email) : null,
      h("button", { id: "sign-out", class: "link", onclick: signOut }, "Sign out"),
    ),
  );
}

/** Tabs of a project's pages. */
function projectNav(project, active) {
  const tab = (href, label, key) => h("a", { href, class: active === key ? "active" : null }, label);
  return h(
    "div",
    { class: "project-head" },
    h("div", { class: "crumbs" }, h("a", { href: "/projects" }, "Projects"), " / ", h("span", { id: "project-title" }, project.title || `Project ${project.id}`)),
    h(
      "nav",
      { class: "tabs" },
      tab(`/projects/${project.id}/data`, "Data Manager", "data"),
      tab(`/projects/${project.id}/settings/storage`, "Settings › Cloud Storage", "storage"),
    ),
  );
}

/** Mounts a signed-in page: top bar, then the content `build` makes. */
async function signedInPage(build) {
  const app = document.getElementById("app");
  try {
    currentUser = await api("GET", "/api/current-user/whoami");
  } catch (error) {
    if (error.status === 401) return;
    app.replaceChildren(notice("error", error.message));
    return;
  }
  const main = h("main", { class: "content" });
  app.replaceChildren(topbar(), main);
  try {
    await build(main);
  } catch (error) {
    main.append(notice("error", error.message));
  }
}

// ------------------------------------------------------------------ sign in, account

/** `next` as a path on this site, or null: a value naming another site is ignored. */
function sameSiteTarget(next) {
  if (!next) return null;
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
  } catch {
    return null;
  }
}

function loginPage() {
  const app = document.getElementById("app");
  const message = h("div", { class: "form-message" });
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary", id: "sign-in" }, "Sign in");
  const form = h(
    "form",
    { class: "card login", novalidate: true },
    h("h1", {}, "labelport"),
    h("p", { class: "muted" }, "Sign in to label your data."),
    h("label", { for: "email" }, "Email"),
    email,
    h("label", { for: "password" }, "Password"),
    password,
    message,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    message.replaceChildren();
    try {
      await api("POST", "/user/login", { email: email.value, password: password.value });
      location.href = sameSiteTarget(new URLSearchParams(location.search).get("next")) || "/projects";
    } catch (error) {
      message.replaceChildren(notice("error", error.message));
      submit.disabled = false;
    }
  });
  app.replaceChildren(h("main", { class: "center" }, form));
}

function accountPage() {
  return signedInPage(async (main) => {
    const tokenBox = h("div", { id: "token-box" });
    const reset = h("button", { id: "reset-token", class: "primary" }, "Create a new access token");
    reset.addEventListener("click", async () => {
      if (!confirm("A new token replaces every token this account has now: scripts using the old one stop working. Go on?")) return;
      reset.disabled = true;
      try {
        const { token } = await api("POST", "/api/current-user/reset-token");
        const field = h("input", { id: "access-token", readonly: true, value: token, class: "mono" });
        const copy = h("button", { onclick: () => navigator.clipboard && navigator.clipboard.writeText(token) }, "Copy");
        tokenBox.replaceChildren(
          h("div", { class: "row" }, field, copy),
          notice("ok", "This is your new token. labelport stores tokens hashed, so copy it now: it is not shown again."),
        );
      } catch (error) {
        tokenBox.replaceChildren(notice("error", error.message));
      } finally {
        reset.disabled = false;
      }
    });
    main.append(
      h("h1", {}, "Account"),
      h(
        "section",
        { class: "card" },
        h("dl", { class: "facts" }, h("dt", {}, "Email"), h("dd", { id: "account-email" }, currentUser.email), h("dt", {}, "User id"), h("dd", {}, currentUser.id)),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Access token"),
        h(
          "p",
          { class: "muted" },
          "API clients (the label-studio-sdk, curl) send it as ",
          h("code", {}, "Authorization: Token <token>"),
          ". Tokens are stored hashed, so the one you have cannot be shown again; create a new one here when you need it.",
        ),
        tokenBox,
        reset,
      ),
    );
  });
}

// ------------------------------------------------------------------ projects

const TEMPLATES = {
  "Image classification": `<View>
  <Image name="image" value="$image"/>
  <Choices name="choice" toName="image">
    <Choice value="Cat"/>
    <Choice value="Dog"/>
  </Choices>
</View>`,
  "Object detection with bounding boxes": `<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image">
    <Label value="Car" background="green"/>
    <Label value="Person" background="blue"/>
  </RectangleLabels>
</View>`,
  "Text classification": `<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/>
    <Choice value="Negative"/>
    <Choice value="Neutral"/>
  </Choices>
</View>`,
  "Named entity recognition": `<View>
  <Labels name="label" toName="text">
    <Label value="PER" background="red"/>
    <Label value="ORG" background="darkorange"/>
    <Label value="LOC" background="orange"/>
    <Label value="MISC" background="green"/>
  </Labels>
  <Text name="text" value="$text"/>
</View>`,
};

function projectsPage() {
  return signedInPage(async (main) => {
    const list = h("div", { id: "projects-list", class: "grid" });
    main.append(
      h("div", { class: "page-head" }, h("h1", {}, "Projects"), h("button", { id: "create-project", class: "primary", onclick: () => createProjectDialog() }, "Create project")),
      list,
    );
    const page = await api("GET", "/api/projects?page_size=1000&ordering=-created_at");
    const projects = page.results || [];
    if (!projects.length) {
      list.append(h("p", { class: "muted" }, "No projects yet. Create one to start."));
    }
    for (const project of projects) {
      list.append(
        h(
          "a",
          { class: "card project-card", href: `/projects/${project.id}/data`, dataset: { project: project.id } },
          h("h2", {}, project.title || `Project ${project.id}`),
          h("p", { class: "muted" }, project.description || ""),
          h(
            "div",
            { class: "counts" },
            h("span", { class: "task-count" }, plural(project.task_number || 0, "task")),
            h("span", { class: "annotation-count" }, plural(project.total_annotations_number || 0, "annotation")),
          ),
          h("div", { class: "muted small" }, `Created ${formatTime(project.created_at)}`),
        ),
      );
    }
  });
}

function createProjectDialog() {
  const d = dialog("Create project", { id: "create-project-dialog", wide: true });
  const title = h("input", { id: "project-title-input", name: "title", placeholder: "My project" });
  const description = h("input", { id: "project-description", name: "description", placeholder: "Optional" });
  const names = Object.keys(TEMPLATES);
  const template = h("select", { id: "project-template" }, names.map((n) => h("option", { value: n }, n)), h("option", { value: "" }, "Custom"));
  const config = h("textarea", { id: "project-config", class: "mono", rows: 14, spellcheck: "false" });
  config.value = TEMPLATES[names[0]];
  template.addEventListener("change", () => {
    if (template.value) config.value = TEMPLATES[template.value];
  });
  const message = h("div", { class: "form-message" });
  d.body.append(
    h("label", { for: "project-title-input" }, "Project name"),
    title,
    h("label", { for: "project-description" }, "Description"),
    description,
    h("label", { for: "project-template" }, "Labeling template"),
    template,
    h("label", { for: "project-config" }, "Labeling configuration (XML)"),
    config,
    message,
  );
  const save = h("button", { id: "project-save", class: "primary" }, "Save");
  save.addEventListener("click", async () => {
    save.disabled = true;
    message.replaceChildren();
    try {
      const project = await api("POST", "/api/projects", {
        title: title.value.trim() || "New project",
        description: description.value,
        label_config: config.value,
      });
      location.href = `/projects/${project.id}/data`;
    } catch (error) {
      message.replaceChildren(notice("error", error.message));
      save.disabled = false;
    }
  });
  d.footer.append(h("button", { onclick: d.close }, "Cancel"), save);
  title.focus();
}

// ------------------------------------------------------------------ data manager

/** The task data keys the labeling config reads ($image -> image), in config order. */
function dataColumns(project, tasks) {
  const keys = [];
  for (const control of Object.values(project.parsed_label_config || {})) {
    for (const input of control.inputs || []) {
      if (input.value && !keys.includes(input.value)) keys.push(input.value);
    }
  }
  if (!keys.length && tasks.length) keys.push(...Object.keys(tasks[0].data || {}).slice(0, 4));
  return keys;
}

function cellText(value) {
  if (value === undefined || value === null) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 140 ? `${text.slice(0, 140)}…` : text;
}

function dataPage() {
  return signedInPage(async (main) => {
    const id = projectIdFromPath();
    const project = await api("GET", `/api/projects/${id}`);
    const pageSize = 30;
    let page = Math.max(1, Math.floor(Number(new URLSearchParams(location.search).get("page")) || 1));
    let loads = 0;
    const table = h("div", { id: "tasks" });
    const pager = h("div", { class: "pager" });
    const summary = h("span", { id: "task-summary", class: "muted" });

    const format = h("select", { id: "export-format", "aria-label": "Export format" }, ["JSON", "JSON_MIN", "CSV"].map((f) => h("option", { value: f }, f)));
    const download = h("a", { id: "export-download", class: "button" }, "Export");
    const updateExportLink = () => {
      download.href = `/api/projects/${id}/export?exportType=${format.value}&download_all_tasks=true`;
      download.setAttribute("download", `project-${id}.${format.value === "CSV" ? "csv" : "json"}`);
    };
    format.addEventListener("change", updateExportLink);
    updateExportLink();

    const labelAll = h("button", { id: "label-all", class: "primary" }, "Label all tasks");
    labelAll.addEventListener("click", async () => {
      try {
        if (!(await openNextTask(id))) alert("Every task is labeled.");
      } catch (error) {
        alert(error.message);
      }
    });

    main.append(
      projectNav(project, "data"),
      h(
        "div",
        { class: "toolbar" },
        labelAll,
        h("button", { id: "import-button", onclick: () => importDialog(id, () => load()) }, "Import"),
        h("span", { class: "spacer" }),
        summary,
        format,
        download,
      ),
      table,
      pager,
    );

    async function load() {
      const mine = ++loads;
      // Storage links are shown as stored (s3://...), not as the resolver URLs the editor gets.
      const data = await api("GET", `/api/tasks?project=${id}&page=${page}&page_size=${pageSize}&resolve_uri=false`);
      if (mine !== loads) return; // a later load has started; its reply wins
      const tasks = data.tasks || [];
      const columns = dataColumns(project, tasks);
      summary.textContent = `${plural(data.total, "task")} · ${plural(data.total_annotations, "annotation")}`;
      if (!tasks.length && page > 1) {
        page = 1;
        history.replaceState(null, "", location.pathname);
        return load();
      }
      if (!tasks.length) {
        table.replaceChildren(h("p", { class: "empty muted" }, "No tasks yet: import files or add a source storage under Settings › Cloud Storage."));
        pager.replaceChildren();
        return;
      }
      const head = h("tr", {}, h("th", {}, "ID"), columns.map((c) => h("th", {}, c)), h("th", {}, "Annotations"), h("th", {}, "Predictions"), h("th", {}, "Updated"));
      const rows = tasks.map((task) =>
        h(
          "tr",
          {
            dataset: { task: task.id },
            tabindex: "0",
            onclick: () => (location.href = `/projects/${id}/label?task=${task.id}`),
            onkeydown: (event) => event.key === "Enter" && (location.href = `/projects/${id}/label?task=${task.id}`),
          },
          h("td", {}, task.id),
          columns.map((c) => h("td", { class: "data-cell", title: cellText(task.data[c]) }, cellText(task.data[c]))),
          h("td", { class: "annotations" }, task.total_annotations),
          h("td", {}, task.total_predictions),
          h("td", { class: "muted" }, formatTime(task.updated_at)),
        ),
      );
      table.replaceChildren(h("table", { id: "tasks-table", class: "table clickable" }, h("thead", {}, head), h("tbody", {}, rows)));
      const pages = Math.max(1, Math.ceil(data.total / pageSize));
      const go = (p) => {
        page = p;
        history.replaceState(null, "", `?page=${p}`);
        load().catch((error) => table.replaceChildren(notice("error", error.message)));
      };
      pager.replaceChildren(
        h("button", { id: "page-prev", disabled: page <= 1, onclick: () => go(page - 1) }, "‹ Previous"),
        h("span", { id: "page-info" }, `Page ${page} of ${pages}`),
        h("button", { id: "page-next", disabled: page >= pages, onclick: () => go(page + 1) }, "Next ›"),
      );
    }
    await load();
  });
}

/** Import: drop or pick JSON, JSONL, CSV, TSV or TXT files; each is uploaded with progress. */
function importDialog(projectId, onDone) {
  const d = dialog("Import data", { id: "import-dialog", wide: true });
  const input = h("input", { id: "file-input", type: "file", multiple: true, accept: ".json,.jsonl,.csv,.tsv,.txt", hidden: true });
  const zone = h(
    "div",
    { id: "drop-zone", class: "drop-zone", tabindex: "0" },
    h("strong", {}, "Drop files here"),
    h("span", { class: "muted" }, " or "),
    h("button", { class: "link", onclick: () => input.click() }, "choose files"),
    h("div", { class: "muted small" }, "JSON, JSONL, CSV, TSV and TXT. Each file becomes tasks of this project."),
  );
  const results = h("div", { id: "import-results" });
  d.body.append(zone, input, results);
  d.footer.append(h("button", { id: "import-close", onclick: d.close }, "Close"));

  const upload = (file) =>
    new Promise((resolve) => {
      const bar = h("progress", { max: 100, value: 0 });
      const status = h("span", { class: "muted" }, "uploading…");
      const row = h("div", { class: "upload-row" }, h("span", { class: "file-name" }, file.name), bar, status);
      results.append(row);
      const form = new FormData();
      form.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/api/projects/${projectId}/import`);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
      };
      xhr.onload = () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = { detail: xhr.responseText };
        }
        bar.value = 100;
        if (xhr.status >= 200 && xhr.status < 300) {
          row.classList.add("ok");
          status.textContent = `${plural(body.task_count || 0, "task")} imported`;
        } else {
          row.classList.add("failed");
          status.textContent = errorText(xhr.status, body);
        }
        resolve();
      };
      xhr.onerror = () => {
        row.classList.add("failed");
        status.textContent = "The upload failed: the server could not be reached.";
        resolve();
      };
      xhr.send(form);
    });

  const take = async (files) => {
    for (const file of files) await upload(file);
    try {
      await onDone();
    } catch (error) {
      results.append(notice("error", error.message));
    }
  };
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = ""; // so that choosing the same file again imports it again
    take(files);
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    take([...e.dataTransfer.files]);
  });
}

// ------------------------------------------------------------------ cloud storage

const REGEX_HELP = "A regular expression the object keys must match, e.g. .*\\.jpe?g for JPEG images. Use .* to collect every object. Leave empty to take every object.";
const BLOB_HELP =
  "On: every object becomes one task holding a link to it (images, audio, video, text files). Off: each object is a JSON or JSONL file whose contents are tasks.";
const PRESIGN_HELP =
  "On: the browser gets a short-lived pre-signed URL and loads the file straight from the storage. Off: the file is streamed through labelport, so the browser never needs access to the bucket.";
const TTL_HELP = "How long, in minutes, a pre-signed URL stays valid.";
const RECURSIVE_HELP = "Also scan the folders below the prefix.";
const PREFIX_HELP = "Only objects under this path (folder) are used; leave empty for the whole bucket.";

const text = (name, label, extra = {}) => ({ name, label, type: "text", ...extra });
const secret = (name, label, extra = {}) => ({ name, label, type: "password", secret: true, ...extra });
const bool = (name, label, extra = {}) => ({ name, label, type: "bool", ...extra });
const number = (name, label, extra = {}) => ({ name, label, type: "number", ...extra });
const importOnly = { only: "import" };

const CLOUD_IMPORT_OPTIONS = [
  text("regex_filter", "File Filter Regex", { help: REGEX_HELP, placeholder: ".*", ...importOnly }),
  bool("use_blob_urls", "Treat every bucket object as a source file", { help: BLOB_HELP, ...importOnly }),
  bool("recursive_scan", "Scan all sub-folders", { help: RECURSIVE_HELP, ...importOnly }),
  bool("presign", "Use pre-signed URLs", { help: PRESIGN_HELP, default: true, ...importOnly }),
  number("presign_ttl", "Expire pre-signed URLs (minutes)", { help: TTL_HELP, default: 15, ...importOnly }),
];
const CAN_DELETE = bool("can_delete_objects", "Can delete objects from storage", {
  help: "When an annotation is deleted in labelport, delete its object in the storage too.",
  only: "export",
});

/** Every field of the five kinds, by their API names. */
const STORAGE_KINDS = {
  s3: {
    title: "AWS S3",
    summary: (s) => `s3://${s.bucket || ""}/${s.prefix || ""}`,
    fields: [
      text("bucket", "Bucket Name", { required: true }),
      text("prefix", "Bucket Prefix", { help: PREFIX_HELP }),
      ...CLOUD_IMPORT_OPTIONS.slice(0, 1),
      text("region_name", "Region Name", { placeholder: "us-east-1", help: "The bucket's region, e.g. us-east-1." }),
      text("s3_endpoint", "S3 Endpoint", { placeholder: "https://s3.amazonaws.com", help: "For S3-compatible services (MinIO, Ceph, ...): their URL. Leave empty for Amazon S3." }),
      secret("aws_access_key_id", "Access Key ID", { help: "Leave empty to use the server's AWS credentials (environment, profile or instance role)." }),
      secret("aws_secret_access_key", "Secret Access Key"),
      secret("aws_session_token", "Session Token", { help: "Only for temporary credentials." }),
      text("aws_sse_kms_key_id", "SSE KMS Key ID", { help: "Optional server-side encryption key." }),
      ...CLOUD_IMPORT_OPTIONS.slice(1),
      CAN_DELETE,
    ],
  },
  gcs: {
    title: "Google Cloud Storage",
    summary: (s) => `gs://${s.bucket || ""}/${s.prefix || ""}`,
    fields: [
      text("bucket", "Bucket Name", { required: true }),
      text("prefix", "Bucket Prefix", { help: PREFIX_HELP }),
      ...CLOUD_IMPORT_OPTIONS.slice(0, 1),
      secret("google_application_credentials", "Google Application Credentials", {
        textarea: true,
        help: "Paste the contents of a service-account JSON key file. Leave empty to use the server's Application Default Credentials.",
      }),
      text("google_project_id", "Google Project ID"),
      ...CLOUD_IMPORT_OPTIONS.slice(1),
      CAN_DELETE,
    ],
  },
  azure: {
    title: "Microsoft Azure",
    summary: (s) => `azure-blob://${s.container || ""}/${s.prefix || ""}`,
    fields: [
      text("container", "Container Name", { required: true }),
      text("prefix", "Container Prefix", { help: PREFIX_HELP }),
      ...CLOUD_IMPORT_OPTIONS.slice(0, 1),
      secret("account_name", "Account Name", { help: "Leave empty to use AZURE_BLOB_ACCOUNT_NAME on the server." }),
      secret("account_key", "Account Key", { help: "Leave empty to use AZURE_BLOB_ACCOUNT_KEY on the server." }),
      text("azure_endpoint", "Blob Endpoint", { placeholder: "https://<account>.blob.core.windows.net", help: "Only for emulators and sovereign clouds." }),
      ...CLOUD_IMPORT_OPTIONS.slice(1),
      CAN_DELETE,
    ],
  },
  redis: {
    title: "Redis",
    summary: (s) => `redis://${s.host || ""}:${s.port || 6379}/${s.db ?? ""} ${s.path || ""}`,
    fields: [
      text("path", "Key Prefix", { help: "Only keys starting with this text are used (and exported keys get it)." }),
      text("host", "Host", { placeholder: "localhost", required: true }),
      text("port", "Port", { placeholder: "6379" }),
      number("db", "Database Number", { help: "Defaults: 1 for source storages, 2 for target storages." }),
      text("username", "Username", { help: "For Redis ACL users; leave empty for the default user." }),
      secret("password", "Password"),
      bool("use_tls", "Use TLS (rediss://)"),
      text("tls_ca_cert", "TLS CA Certificate", { textarea: true, help: "PEM of a CA to trust, when the server's certificate is not publicly trusted." }),
      text("regex_filter", "Key Filter Regex", { help: REGEX_HELP, placeholder: ".*", ...importOnly }),
      bool("use_blob_urls", "Treat every key as a source file", { help: BLOB_HELP, ...importOnly }),
      CAN_DELETE,
    ],
  },
  localfiles: {
    title: "Local files",
    summary: (s) => s.path || "",
    fields: [
      text("path", "Absolute Local Path", {
        required: true,
        placeholder: "/data/images",
        help: "A folder on the server, inside the document root (LOCAL_FILES_DOCUMENT_ROOT); serving local files must be enabled (LOCAL_FILES_SERVING_ENABLED=true).",
      }),
      text("regex_filter", "File Filter Regex", { help: REGEX_HELP, placeholder: ".*", ...importOnly }),
      bool("use_blob_urls", "Treat every file as a source file", { help: BLOB_HELP, ...importOnly }),
      bool("recursive_scan", "Scan all sub-folders", { help: RECURSIVE_HELP, ...importOnly }),
      CAN_DELETE,
    ],
  },
};

const RUNNING = new Set(["queued", "in_progress"]);

function storagePath(direction, kind, id) {
  const base = direction === "export" ? `/api/storages/export/${kind}` : `/api/storages/${kind}`;
  return id ? `${base}/${id}` : base;
}

function storagePage() {
  return signedInPage(async (main) => {
    const projectId = projectIdFromPath();
    const project = await api("GET", `/api/projects/${projectId}`);
    const lists = { import: h("div", { id: "source-storages", class: "storage-list" }), export: h("div", { id: "target-storages", class: "storage-list" }) };
    let timer = null;

    const column = (direction, heading, explanation, buttonId, buttonText) =>
      h(
        "section",
        { class: "storage-column" },
        h("h2", {}, heading),
        h("p", { class: "muted" }, explanation),
        lists[direction],
        h("button", { id: buttonId, class: "primary", onclick: () => storageDialog(projectId, direction, null, refresh) }, buttonText),
      );

    main.append(
      projectNav(project, "storage"),
      h("h1", {}, "Cloud Storage"),
      h(
        "div",
        { class: "storage-columns" },
        column("import", "Source Cloud Storage", "Where tasks come from: a sync collects them from the bucket, without duplicates.", "add-source", "Add Source Storage"),
        column("export", "Target Cloud Storage", "Where annotations go: each one is written as a JSON object, as annotators save.", "add-target", "Add Target Storage"),
      ),
    );

    // One refresh at a time; while a sync runs, the lists are read again every second, and a
    // failed read is shown and retried rather than ending the updates.
    let refreshing = null;
    const problem = h("div", { id: "storage-problem" });
    main.append(problem);
    function refresh() {
      if (!refreshing) refreshing = readLists().finally(() => (refreshing = null));
      return refreshing;
    }
    async function readLists() {
      clearTimeout(timer);
      let running = true;
      try {
        const [sources, targets] = await Promise.all([api("GET", `/api/storages?project=${projectId}`), api("GET", `/api/storages/export?project=${projectId}`)]);
        renderList("import", sources, lists.import);
        renderList("export", targets, lists.export);
        problem.replaceChildren();
        running = [...sources, ...targets].some((s) => RUNNING.has(s.status));
      } catch (error) {
        problem.replaceChildren(notice("error", `Could not read the storages: ${error.message}`));
      }
      if (running) timer = setTimeout(refresh, 1000);
    }

    function renderList(direction, storages, container) {
      if (!storages.length) {
        container.replaceChildren(h("p", { class: "muted empty" }, direction === "import" ? "No source storages yet." : "No target storages yet."));
        return;
      }
      container.replaceChildren(...storages.map((s) => storageCard(direction, s)));
    }

    function storageCard(direction, storage) {
      const kind = STORAGE_KINDS[storage.type] || { title: storage.type, summary: () => "" };
      const meta = storage.meta || {};
      const unit = direction === "import" ? "task" : "annotation";
      const syncButton = h("button", { class: "sync", disabled: RUNNING.has(storage.status) }, RUNNING.has(storage.status) ? "Syncing…" : "Sync Storage");
      syncButton.addEventListener("click", async () => {
        syncButton.disabled = true;
        try {
          await api("POST", `${storagePath(direction, storage.type, storage.id)}/sync`);
        } catch (error) {
          alert(error.message);
        }
        await refresh();
      });
      const remove = async () => {
        if (!confirm(`Delete the storage "${storage.title || kind.title}"? Tasks and annotations already in labelport stay.`)) return;
        try {
          await api("DELETE", storagePath(direction, storage.type, storage.id));
        } catch (error) {
          alert(error.message);
        }
        await refresh();
      };
      return h(
        "div",
        { class: `card storage-card status-${storage.status}`, dataset: { id: storage.id, direction, type: storage.type } },
        h("div", { class: "storage-title" }, h("strong", {}, storage.title || "Untitled"), h("span", { class: "kind" }, kind.title)),
        h("div", { class: "muted mono small" }, kind.summary(storage)),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Status"),
          h("dd", {}, h("span", { class: `status badge ${storage.status}` }, storage.status)),
          h("dt", {}, "Last sync"),
          h("dd", { class: "last-sync" }, formatTime(storage.last_sync)),
          h("dt", {}, "Count"),
          h("dd", { class: "last-sync-count" }, plural(storage.last_sync_count || 0, unit)),
        ),
        progressLine(direction, storage, meta),
        errorPanel(storage, meta),
        h(
          "div",
          { class: "actions" },
          syncButton,
          h("button", { class: "edit", onclick: () => storageDialog(projectId, direction, storage, refresh) }, "Edit"),
          h("button", { class: "delete danger", onclick: remove }, "Delete"),
        ),
      );
    }

    await refresh();
  });
}

/** What a running (or finished) sync did, from the job's `meta`. */
function progressLine(direction, storage, meta) {
  if (storage.status === "initialized") return null;
  const parts =
    direction === "import"
      ? [
          ["objects listed", meta.objects_listed],
          ["tasks created", meta.tasks_created ?? storage.last_sync_count],
          ["skipped", meta.objects_skipped],
          ["failed", meta.objects_failed],
          ["objects/s", meta.objects_per_second],
        ]
      : [
          ["annotations written", meta.annotations_written],
          ["of", meta.total_annotations],
          ["failed", meta.objects_failed],
        ];
  const shown = parts.filter(([, v]) => v !== undefined && v !== null);
  if (!shown.length) return null;
  return h(
    "div",
    { class: "progress-line" },
    RUNNING.has(storage.status) ? h("span", { class: "spinner", "aria-hidden": "true" }) : null,
    shown.map(([label, value]) => h("span", { class: "metric", dataset: { metric: label.replace(/[^a-z]+/g, "_") } }, h("b", {}, value), ` ${label}`)),
  );
}

/** Per-object failures (`meta.failures`) as a table, or the traceback as text. */
function errorPanel(storage, meta) {
  if (!["failed", "completed_with_errors"].includes(storage.status) && !meta.last_save_error) return null;
  const failures = Array.isArray(meta.failures) ? meta.failures : [];
  const panel = h("div", { class: "sync-errors", role: "alert" });
  if (storage.status === "failed") panel.append(h("strong", {}, "The sync failed."));
  else if (storage.status === "completed_with_errors") panel.append(h("strong", {}, `The sync finished, but ${plural(meta.objects_failed || failures.length, "object")} could not be used:`));
  if (failures.length) {
    panel.append(
      h(
        "table",
        { class: "table failures" },
        h("thead", {}, h("tr", {}, h("th", {}, "Object"), h("th", {}, "Reason"))),
        h("tbody", {}, failures.map((f) => h("tr", {}, h("td", { class: "mono" }, f.key), h("td", {}, f.reason)))),
      ),
    );
  } else if (storage.traceback) {
    panel.append(h("pre", { class: "traceback" }, storage.traceback));
  }
  if (meta.last_save_error) panel.append(h("div", {}, `Last save error: ${meta.last_save_error}`));
  return panel;
}

/** Add or edit a storage: every field of the chosen kind, Check Connection, and Save. */
function storageDialog(projectId, direction, storage, onSaved) {
  const editing = Boolean(storage);
  const title = `${editing ? "Edit" : "Add"} ${direction === "import" ? "Source" : "Target"} Storage`;
  const d = dialog(title, { id: "storage-dialog", wide: true });
  const kindSelect = h(
    "select",
    { id: "storage-type", name: "storage_type", disabled: editing },
    Object.entries(STORAGE_KINDS).map(([name, kind]) => h("option", { value: name }, kind.title)),
  );
  kindSelect.value = editing ? storage.type : "s3";
  const form = h("form", { id: "storage-form", class: "storage-form", novalidate: true });
  const message = h("div", { id: "storage-message", class: "form-message" });
  let inputs = {};

  const build = () => {
    const kind = STORAGE_KINDS[kindSelect.value];
    inputs = {};
    const rows = [];
    const common = [
      text("title", "Storage Title", { placeholder: `My ${kind.title} storage` }),
      text("description", "Description"),
    ];
    for (const field of [...common, ...kind.fields]) {
      if (field.only && field.only !== direction) continue;
      const id = `storage-${field.name}`;
      const current = editing ? storage[field.name] : undefined;
      let input;
      if (field.type === "bool") {
        const on = current !== undefined && current !== null ? Boolean(current) : Boolean(field.default);
        input = h("input", { id, name: field.name, type: "checkbox", checked: on });
        rows.push(h("div", { class: "field checkbox" }, h("label", { for: id }, input, " ", field.label), field.help ? h("div", { class: "help" }, field.help) : null));
      } else {
        const attributes = {
          id,
          name: field.name,
          placeholder: field.secret && editing ? "unchanged (write-only: leave empty to keep)" : field.placeholder,
          autocomplete: field.secret ? "new-password" : "off",
        };
        if (field.textarea) input = h("textarea", { ...attributes, rows: 4, class: "mono", spellcheck: "false" });
        else input = h("input", { ...attributes, type: field.secret && !field.textarea ? "password" : field.type === "number" ? "number" : "text" });
        const value = current !== undefined && current !== null ? current : editing ? "" : field.default ?? "";
        input.value = field.secret ? "" : String(value);
        rows.push(
          h("div", { class: "field" }, h("label", { for: id }, field.label, field.required ? h("span", { class: "required" }, " *") : null), input, field.help ? h("div", { class: "help" }, field.help) : null),
        );
      }
      inputs[field.name] = { field, input };
    }
    form.replaceChildren(...rows);
    message.replaceChildren();
  };

  /** The request body: empty fields left out when adding; cleared fields sent as null when editing. */
  const body = () => {
    const result = { project: projectId };
    for (const [name, { field, input }] of Object.entries(inputs)) {
      if (field.type === "bool") {
        result[name] = input.checked;
        continue;
      }
      const value = input.value.trim() === "" ? "" : field.textarea ? input.value : input.value.trim();
      if (value === "") {
        if (editing && !field.secret) result[name] = null;
        continue;
      }
      result[name] = field.type === "number" ? Number(value) : value;
    }
    if (editing) result.id = storage.id;
    return result;
  };

  const check = h("button", { id: "check-connection", type: "button" }, "Check Connection");
  const save = h("button", { id: "save-storage", class: "primary", type: "button" }, editing ? "Save" : "Add Storage");
  const busy = (flag) => {
    check.disabled = flag;
    save.disabled = flag;
  };
  check.addEventListener("click", async () => {
    busy(true);
    message.replaceChildren(notice("info", "Checking the connection…"));
    try {
      await api("POST", `${storagePath(direction, kindSelect.value)}/validate`, body());
      message.replaceChildren(notice("ok", "Connection works."));
    } catch (error) {
      message.replaceChildren(notice("error", error.message));
    } finally {
      busy(false);
    }
  });
  save.addEventListener("click", async () => {
    busy(true);
    message.replaceChildren(notice("info", "Checking the connection and saving…"));
    try {
      const payload = body();
      if (editing) {
        delete payload.id;
        await api("PATCH", storagePath(direction, storage.type, storage.id), payload);
      } else {
        await api("POST", storagePath(direction, kindSelect.value), payload);
      }
      d.close();
      await onSaved();
    } catch (error) {
      message.replaceChildren(notice("error", error.message));
      busy(false);
    }
  });
  kindSelect.addEventListener("change", build);
  d.body.append(h("div", { class: "field" }, h("label", { for: "storage-type" }, "Storage Type"), kindSelect), form, message);
  d.footer.append(h("button", { type: "button", onclick: d.close }, "Cancel"), check, save);
  build();
}

// ------------------------------------------------------------------ labeling

function labelPage() {
  return signedInPage(async (main) => {
    main.classList.add("labeling");
    const projectId = projectIdFromPath();
    const taskId = Number(new URLSearchParams(location.search).get("task"));
    const project = await api("GET", `/api/projects/${projectId}`);
    const status = h("span", { id: "label-status", class: "muted", role: "status" });
    const prev = h("button", { id: "prev-task", disabled: true }, "‹ Previous");
    const next = h("button", { id: "next-task", disabled: true }, "Next ›");
    const editor = h("div", { id: "label-studio" });
    main.append(
      projectNav(project, "label"),
      h("div", { class: "toolbar" }, prev, h("span", { id: "task-id" }, taskId ? `Task ${taskId}` : ""), next, h("span", { class: "spacer" }), status),
      editor,
    );
    if (!taskId) {
      if (!(await openNextTask(projectId))) editor.replaceChildren(notice("info", "Every task is labeled."));
      return;
    }
    // The editor's script is deferred: it may still be loading; it has run by the window's load event.
    if (typeof window.LabelStudio !== "function" && document.readyState !== "complete") {
      await new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
    }
    if (typeof window.LabelStudio !== "function") {
      editor.replaceChildren(
        notice("error", "The labeling front end is not installed on this server. Run scripts/run.sh (or scripts/frontend.sh) so that labelport finds it, or set LABELPORT_FRONTEND_DIR."),
      );
      return;
    }
    const [task, neighbors] = await Promise.all([api("GET", `/api/tasks/${taskId}`), api("GET", `/api/tasks/${taskId}/neighbors`)]);
    if (task.project !== projectId) {
      // A task of another project is labeled with that project's configuration.
      location.replace(`/projects/${task.project}/label?task=${task.id}`);
      return;
    }
    const goTo = (id) => (location.href = `/projects/${projectId}/label?task=${id}`);
    if (neighbors.previous) {
      prev.disabled = false;
      prev.onclick = () => goTo(neighbors.previous);
    }
    if (neighbors.next) {
      next.disabled = false;
      next.onclick = () => goTo(neighbors.next);
    }
    // After a submit: the next task this user still has to label, else back to the data manager.
    const afterSubmit = async () => {
      try {
        if (!(await openNextTask(projectId, taskId))) location.href = `/projects/${projectId}/data`;
      } catch (error) {
        status.textContent = error.message;
      }
    };
    let saving = false; // one save at a time: a second click or Ctrl+Enter while saving does nothing
    const leadTime = (annotation) => (annotation.leadTime ? annotation.leadTime : (Date.now() - started) / 1000);
    const started = Date.now();
    const user = { id: currentUser.id, pk: currentUser.id, firstName: currentUser.first_name || currentUser.email, lastName: currentUser.last_name || "" };
    // Kept on window so tests and the browser console can reach the editor.
    window.labelportEditor = new window.LabelStudio("label-studio", {
      config: project.label_config,
      interfaces: ["panel", "update", "submit", "controls", "infobar", "topbar", "instruction", "side-column", "annotations:history", "annotations:tabs", "annotations:menu", "annotations:current", "annotations:add-new", "annotations:delete", "annotations:view-all", "predictions:tabs", "predictions:menu", "edit-history"],
      user,
      users: [user],
      task: { id: task.id, data: task.data, annotations: task.annotations || [], predictions: task.predictions || [] },
      onLabelStudioLoad(ls) {
        if (!ls.annotationStore.annotations.length) {
          const annotation = ls.annotationStore.addAnnotation({ userGenerate: true });
          ls.annotationStore.selectAnnotation(annotation.id);
        }
        status.textContent = "Ready";
      },
      async onSubmitAnnotation(ls, annotation) {
        if (saving) return;
        saving = true;
        status.textContent = "Saving…";
        try {
          const created = await api("POST", `/api/tasks/${taskId}/annotations`, { result: annotation.serializeAnnotation(), lead_time: leadTime(annotation), project: projectId });
          // The editor now knows the saved annotation, so staying here and pressing Update works.
          annotation.updatePersonalKey(String(created.id));
          annotation.sendUserGenerate();
          status.textContent = "Submitted";
          await afterSubmit();
        } catch (error) {
          status.textContent = `Not saved: ${error.message}`;
        } finally {
          saving = false;
        }
      },
      async onUpdateAnnotation(ls, annotation) {
        if (saving || !annotation.pk) return;
        saving = true;
        status.textContent = "Saving…";
        try {
          await api("PATCH", `/api/annotations/${annotation.pk}`, { result: annotation.serializeAnnotation(), lead_time: leadTime(annotation) });
          status.textContent = "Updated";
        } catch (error) {
          status.textContent = `Not saved: ${error.message}`;
        } finally {
          saving = false;
        }
      },
      async onDeleteAnnotation(ls, annotation) {
        if (!annotation.pk) return;
        try {
          await api("DELETE", `/api/annotations/${annotation.pk}`);
          status.textContent = "Annotation deleted";
        } catch (error) {
          status.textContent = `Not deleted: ${error.message}`;
        }
      },
    });
  });
}

// ------------------------------------------------------------------ start

const PAGES = { login: loginPage, account: accountPage, projects: projectsPage, data: dataPage, storage: storagePage, label: labelPage };
const start = PAGES[document.body.dataset.page];
if (start) {
  Promise.resolve(start()).catch((error) => document.getElementById("app").append(notice("error", error.message)));
}

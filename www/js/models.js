// Which model the generate page runs: the model menu (Settings), opening your own model (a folder `unclip
// convert` wrote, picked on this device, or a folder on this site by URL), the choice kept in the page's URL, and
// the Storage panel (every stored model with its size and a delete button). DOM only: weights.js loads, verifies
// and stores (the sources are described there).

const $ = (id) => document.getElementById(id);
/// The URL parameters that name the model; the rest of the URL is the generation's settings.
export const MODEL_PARAMS = ["model", "local", "model_url"];

/// The source the page's URL asks for: ?local=NAME (a folder picked before), ?model_url=URL (a folder on this
/// site), or ?model=NAME (a folder under models/: default = the bundled unclip-emoji, tiny = the random test model).
function sourceFromUrl(modelsUrl) {
  const q = new URLSearchParams(location.search);
  if (q.get("local")) return { kind: "local", name: q.get("local") };
  if (q.get("model_url")) return { kind: "url", base: new URL(q.get("model_url"), location.href).href, param: q.get("model_url") };
  const name = /^[a-z0-9-]+$/.test(q.get("model") ?? "") ? q.get("model") : "default";
  return { kind: "url", base: new URL(`${name}/`, modelsUrl).href, served: name };
}

/// The model parameter of a source, for the URL (none for the bundled default).
function paramOf(source) {
  if (source.kind === "local") return ["local", source.name];
  if (source.served) return source.served === "default" ? null : ["model", source.served];
  return ["model_url", source.param ?? source.base];
}

/// `load(source)` starts a load in the page (state, progress); returns {source(), storage(m), ready(m)}.
export function initModels(modelsUrl, load) {
  let source = sourceFromUrl(modelsUrl);
  let stored = []; // the storage report's models
  const menu = $("model-menu");

  /// Sets ?local / ?model / ?model_url to the current source, keeping the other parameters.
  function rememberInUrl() {
    const q = new URLSearchParams(location.search);
    for (const k of MODEL_PARAMS) q.delete(k);
    const p = paramOf(source);
    if (p) q.set(...p);
    history.replaceState(null, "", `?${q}`);
  }

  function renderMenu(loadedName) {
    const options = [["model:default", "unclip-emoji (bundled)"]];
    if (source.served && source.served !== "default") options.push([`model:${source.served}`, `${source.served} (served)`]);
    if (source.kind === "url" && !source.served) options.push([`url:${source.base}`, `${source.param ?? source.base} (this site)`]);
    for (const m of stored.filter((m) => m.local)) options.push([`local:${m.name}`, `${m.name}${m.version ? ` ${m.version}` : ""} (your folder, stored here)`]);
    if (source.kind === "local" && !options.some(([v]) => v === `local:${source.name}`)) options.push([`local:${source.name}`, `${loadedName ?? source.name} (your folder)`]);
    menu.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
    if (source.kind === "folder") return; // its name is known once the worker has read its model.json (`ready`)
    menu.value = source.kind === "local" ? `local:${source.name}` : source.served ? `model:${source.served}` : `url:${source.base}`;
  }

  function use(next) {
    source = next;
    rememberInUrl();
    renderMenu();
    load(source);
  }

  menu.addEventListener("change", () => {
    const [kind, ...rest] = menu.value.split(":");
    const value = rest.join(":");
    if (kind === "local") use({ kind: "local", name: value });
    else if (kind === "model") use({ kind: "url", base: new URL(`${value}/`, modelsUrl).href, served: value });
    else use({ kind: "url", base: value });
  });

  // your own model: a folder (the File System Access picker where there is one, else <input webkitdirectory>)
  function useFolder(files) {
    if (!files.size) return;
    // the name is model.json's: known once the worker has read it (`ready`)
    source = { kind: "folder", files };
    load(source);
  }
  $("model-folder").addEventListener("click", async () => {
    if (!window.showDirectoryPicker) return $("model-folder-input").click();
    let dir;
    try {
      dir = await window.showDirectoryPicker({ id: "unclip-model" });
    } catch {
      return; // the person closed the picker
    }
    const files = new Map();
    for await (const [name, handle] of dir.entries()) if (handle.kind === "file") files.set(name, await handle.getFile());
    useFolder(files);
  });
  $("model-folder-input").addEventListener("change", (e) => {
    // only the folder's own files (webkitRelativePath = "folder/name"), not those of subfolders
    const files = new Map([...e.target.files].filter((f) => f.webkitRelativePath.split("/").length === 2).map((f) => [f.name, f]));
    e.target.value = "";
    useFolder(files);
  });
  $("model-url-load").addEventListener("click", () => {
    const text = $("model-url").value.trim();
    if (text) use({ kind: "url", base: new URL(text.endsWith("/") ? text : `${text}/`, location.href).href, param: text });
  });

  renderMenu();
  return {
    source: () => source,
    /// A load finished: a picked folder is now stored under its model's name, and the URL says so.
    ready(model) {
      if (source.kind === "folder") {
        source = { kind: "local", name: model.name };
        rememberInUrl();
      }
      renderMenu(model.name);
    },
    /// The worker's storage report: the menu's stored models, and the Storage panel's list with delete buttons.
    storage(m, onDelete) {
      stored = m.models;
      renderMenu();
      const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
      $("storage-models").replaceChildren(...m.models.map((model) => {
        const li = document.createElement("li");
        li.dataset.name = model.name;
        const what = model.local ? "your folder" : "from this site";
        li.textContent = `${model.name}${model.version ? ` ${model.version}` : ""} — ${mb(model.bytes)} in ${model.files} files (${what}${model.license ? `, licence: ${model.license}` : ""})`;
        const del = document.createElement("button");
        del.type = "button";
        del.textContent = "Delete";
        del.setAttribute("aria-label", `Delete ${model.name}`);
        del.onclick = () => onDelete(model.base);
        li.append(del);
        return li;
      }));
      return m.models.length;
    },
  };
}

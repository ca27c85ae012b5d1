// History: the results of this page (generations, edits, remix frames), each with the settings it ran with, kept
// in IndexedDB (the newest MAX_ENTRIES survive a reload), restored on click, deleted one by one. Where IndexedDB
// is unavailable (some private windows) the list lives in memory only, and says so.

const $ = (id) => document.getElementById(id);
const DB = "unclip";
const STORE = "history";
export const MAX_ENTRIES = 60;

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/// One request in its own transaction; resolves to the request's result once the transaction has committed.
function request(db, mode, make) {
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const req = make(t.objectStore(STORE));
    t.oncomplete = () => resolve(req.result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
}

/// `onRestore(entry)` shows an entry and puts its settings back; `decorate(li, entry)` adds to its row (the remix
/// tick box). An entry: {png (data: URL), title, settings (the form's, or null for a remix frame), embedding}.
export function initHistory({ onRestore, decorate }) {
  const list = $("history");
  const db = openDb().catch(() => null);
  const count = () => { list.dataset.count = String(list.children.length); };

  function render(entry) {
    const li = document.createElement("li");
    li.dataset.id = String(entry.id ?? "");
    const show = document.createElement("button");
    show.type = "button";
    show.title = entry.title;
    const img = document.createElement("img");
    img.src = entry.png;
    img.alt = entry.title;
    show.append(img);
    show.onclick = () => onRestore(entry);
    const del = document.createElement("button");
    del.type = "button";
    del.className = "history-delete";
    del.textContent = "×";
    del.title = del.ariaLabel = `Delete from History: ${entry.title}`;
    del.onclick = async () => {
      const d = await db;
      if (d && entry.id !== undefined) await request(d, "readwrite", (s) => s.delete(entry.id)).catch(() => {});
      li.remove();
      count();
    };
    li.append(show, del);
    decorate(li, entry);
    list.prepend(li);
    count();
  }

  /// Keeps the newest MAX_ENTRIES, in the database and on the page.
  async function prune(d) {
    const keys = await request(d, "readonly", (s) => s.getAllKeys());
    for (const id of keys.slice(0, Math.max(0, keys.length - MAX_ENTRIES))) {
      await request(d, "readwrite", (s) => s.delete(id));
      list.querySelector(`li[data-id="${id}"]`)?.remove();
    }
    count();
  }

  const loaded = (async () => {
    const d = await db;
    if (!d) {
      list.dataset.storage = "memory";
      list.title = "this browser keeps no IndexedDB here (a private window?): History lasts until the page closes";
      return;
    }
    list.dataset.storage = "indexeddb";
    for (const entry of await request(d, "readonly", (s) => s.getAll())) render(entry);
  })();

  return {
    loaded,
    async add(entry) {
      await loaded;
      const d = await db;
      const stored = { ...entry, embedding: entry.embedding ? new Float32Array(entry.embedding) : null, time: Date.now() };
      if (d) {
        try {
          stored.id = await request(d, "readwrite", (s) => s.add(stored));
        } catch { /* storage full: kept on the page only */ }
      }
      render(stored);
      if (d) await prune(d);
    },
  };
}

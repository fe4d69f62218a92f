// The AnyVar page: plain fetch() calls to the REST API, no external code.
"use strict";

const $ = (id) => document.getElementById(id);
let pollTimer = null;
let nextRunsToken = null;

function headers() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

// API errors are JSON: our `error` text, or AnyVar's `detail` (a text, or FastAPI's list of
// invalid parameters, told in words in the X-AnyVar-Error-Detail header).
async function errorText(response) {
  try {
    const body = await response.json();
    if (body.error) return body.error;
    if (typeof body.detail === "string") return body.detail;
    return response.headers.get("X-AnyVar-Error-Detail") || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status} ${response.statusText}`;
  }
}

async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  return fetch(path, init);
}

function offerDownload(blob, name) {
  const link = $("download-link");
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(blob);
  link.download = name;
  $("download").hidden = false;
}

function filename(response, fallback) {
  const found = /filename="?([^";]+)"?/.exec(response.headers.get("content-disposition") || "");
  return found ? found[1] : fallback;
}

$("vcf-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  $("download").hidden = true;
  const form = event.target;
  const params = new URLSearchParams();
  for (const box of form.querySelectorAll("input[type=checkbox]")) {
    params.set(box.name, box.checked ? "true" : "false");
  }
  params.set("assembly", form.assembly.value);
  params.set("output_compression", form.output_compression.value);
  if (form.run_id.value.trim()) params.set("run_id", form.run_id.value.trim());
  const data = new FormData();
  data.append("vcf", $("vcf-file").files[0]);
  $("submit-vcf").disabled = true;
  try {
    const r = await api("PUT", `/vcf?${params}`, data);
    if (r.status === 202) {
      const body = await r.json();
      watchRun(body.run_id);
    } else if (r.ok) {
      offerDownload(await r.blob(), filename(r, "annotated.vcf"));
    } else {
      showError(await errorText(r));
    }
  } catch (e) {
    showError(`Request failed: ${e}`);
  } finally {
    $("submit-vcf").disabled = false;
  }
});

function showProgress(run) {
  $("run-state").textContent = run.state || "";
  $("run-phase").textContent = run.phase ? `(${run.phase})` : "";
  const total = run.records_total == null ? "?" : run.records_total;
  $("run-records").textContent = `${run.records_done || 0} / ${total} records`;
  $("run-progress").value = run.percent || 0;
}

function watchRun(runId) {
  clearTimeout(pollTimer);
  $("run").hidden = false;
  $("run").dataset.runId = runId;
  $("run-run-id").textContent = runId;
  let last = { state: "queued", phase: "queued" };
  showProgress(last);
  const poll = async () => {
    if ($("run").dataset.runId !== runId) return; // another run is watched now
    let r;
    try {
      r = await api("GET", `/vcf/${encodeURIComponent(runId)}`);
    } catch (e) {
      showError(`Polling failed: ${e}`);
      pollTimer = setTimeout(poll, 2000);
      return;
    }
    if (r.status === 202) {
      last = await r.json();
      showProgress(last);
      pollTimer = setTimeout(poll, 500);
    } else if (r.ok) {
      // The file itself carries no progress: a finished run annotated all its records.
      const records = last.records_total ?? last.records_done;
      showProgress({ ...last, state: "succeeded", phase: "done", percent: 100,
                     records_done: records });
      offerDownload(await r.blob(), filename(r, `${runId}.vcf`));
      refreshRuns();
    } else {
      const text = await errorText(r);
      $("run-state").textContent = r.status === 410 ? "cancelled" : "failed";
      $("run-phase").textContent = "";
      showError(text);
      refreshRuns();
    }
  };
  poll();
}

$("cancel-run").addEventListener("click", async () => {
  const runId = $("run").dataset.runId;
  if (!runId) return;
  const r = await api("DELETE", `/vcf/${encodeURIComponent(runId)}`);
  if (!r.ok) showError(await errorText(r));
  else $("run-state").textContent = (await r.json()).status_message;
});

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  row.appendChild(td);
  return td;
}

async function refreshRuns(more = false) {
  const params = new URLSearchParams({ limit: "20" });
  if ($("runs-state").value) params.set("state", $("runs-state").value);
  if (more && nextRunsToken) params.set("page_token", nextRunsToken);
  const r = await api("GET", `/runs?${params}`);
  if (!r.ok) {
    showError(await errorText(r));
    return;
  }
  const body = await r.json();
  const tbody = $("runs").querySelector("tbody");
  if (!more) tbody.replaceChildren();
  for (const run of body.runs) {
    const row = document.createElement("tr");
    row.dataset.runId = run.run_id;
    cell(row, run.run_id);
    cell(row, run.kind);
    cell(row, run.state);
    cell(row, run.phase);
    cell(row, run.percent);
    cell(row, `${run.records_done}/${run.records_total == null ? "?" : run.records_total}`);
    cell(row, run.submitted_at);
    cell(row, run.error);
    const watch = document.createElement("button");
    watch.type = "button";
    watch.textContent = "Watch";
    watch.addEventListener("click", () => watchRun(run.run_id));
    cell(row, "").appendChild(watch);
    tbody.appendChild(row);
  }
  nextRunsToken = body.next_page_token;
  $("more-runs").hidden = !nextRunsToken;
}

$("refresh-runs").addEventListener("click", () => refreshRuns());
$("runs-state").addEventListener("change", () => refreshRuns());
$("more-runs").addEventListener("click", () => refreshRuns(true));

async function showLookup(r) {
  if (r.ok) {
    const body = await r.json();
    $("lookup-result").textContent = JSON.stringify(body, null, 2);
    // PUT /variation answers 200 with messages, and no object, when a definition cannot be
    // translated (a registered one may carry a liftover message beside its object).
    if (!body.object && body.messages && body.messages.length) {
      showError(body.messages.join("; "));
    }
  } else {
    $("lookup-result").textContent = "";
    showError(await errorText(r));
  }
}

$("variation-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const body = { definition: $("definition").value.trim() };
  if ($("input-type").value) body.input_type = $("input-type").value;
  await showLookup(await api("PUT", "/variation", body));
});

$("object-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const id = $("object-id").value.trim();
  await showLookup(await api("GET", `/object/${encodeURIComponent(id)}`));
});

// The page: rendered here, on the laptop, from the state model (model.ts), so the first paint needs
// no script and no second request; a few lines of script then swap in each update the server
// pushes (server-sent events) and drive the clean action. Everything is inline (no CDN, works
// offline) under a Content-Security-Policy that allows only this page's own nonce.
import type { Dashboard, Holder, NamespaceView, ServiceView } from './model.ts';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (s: string | number): string => String(s).replace(/[&<>"']/g, (c) => ESC[c]!);

function age(sec: number | undefined): string {
  if (sec === undefined) return '-';
  if (sec < 120) return `${sec}s`;
  if (sec < 7200) return `${Math.round(sec / 60)}m`;
  return `${Math.round(sec / 3600)}h`;
}

function badge(state: string): string {
  return `<span class="badge b-${esc(state)}">${esc(state)}</span>`;
}

function holderText(h: Holder): string {
  const beat = h.heartbeatAgeSeconds === undefined ? '' : `, heartbeat ${age(h.heartbeatAgeSeconds)} ago`;
  return `<b>${esc(h.user)}</b> (session <code>${esc(h.session)}</code>${h.since ? `, since <time datetime="${esc(h.since)}">${esc(h.since.replace('T', ' ').replace('Z', ' UTC'))}</time>` : ''}${beat}) ${badge(h.state)}`;
}

/** Boxes in a row, joined by arrows; the last column may hold several (a mesh's marks). */
function picture(id: string, label: string, columns: string[][]): string {
  const w = 150;
  const gap = 40;
  const rowH = 30;
  const rows = Math.max(...columns.map((c) => c.length));
  const height = rows * rowH + 10;
  const width = columns.length * w + (columns.length - 1) * gap + 10;
  const parts: string[] = [];
  columns.forEach((col, ci) => {
    const x = 5 + ci * (w + gap);
    col.forEach((text, ri) => {
      const y = 5 + ri * rowH + (rows - col.length) * rowH / 2;
      parts.push(`<rect x="${x}" y="${y}" width="${w}" height="${rowH - 8}" rx="5"/><text x="${x + w / 2}" y="${y + (rowH - 8) / 2 + 4}">${esc(text.length > 22 ? `${text.slice(0, 21)}…` : text)}</text>`);
      if (ci > 0) {
        const prev = columns[ci - 1]!;
        const py = 5 + (prev.length === col.length ? ri : 0) * rowH + (rows - prev.length) * rowH / 2 + (rowH - 8) / 2;
        parts.push(`<line x1="${x - gap}" y1="${py}" x2="${x - 4}" y2="${y + (rowH - 8) / 2}" marker-end="url(#${esc(id)})"/>`);
      }
    });
  });
  return `<svg class="route" role="img" aria-label="${esc(label)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"><title>${esc(label)}</title>` +
    `<defs><marker id="${esc(id)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z"/></marker></defs>` +
    `${parts.join('')}</svg>`;
}

function routing(s: ServiceView): string {
  if (s.exchange) {
    const shadow = s.serving.find((p) => p.role === 'shadow')?.name ?? `kt-exchange-${s.exchange.session}`;
    return picture(`arrow-${s.name}`, `service ${s.name} goes to shadow pod ${shadow}, then to the laptop of ${s.exchange.user}`, [[`service/${s.name}`], [shadow], [s.exchange.user]]);
  }
  if (s.mesh) {
    const marks = s.mesh.routes.map((r) => `${r.mark} → ${r.user}`);
    return picture(`arrow-${s.name}`, `service ${s.name} goes to router ${s.mesh.router}, which sends ${s.mesh.routes.map((r) => `${s.mesh!.header}: ${r.mark} to ${r.user}`).join(', ')} and everything else to ${s.mesh.stuntman}`,
      [[`service/${s.name}`], [s.mesh.router], [...marks, `else → ${s.mesh.stuntman}`]]);
  }
  if (s.preview) return picture(`arrow-${s.name}`, `preview service ${s.name} goes to the laptop of ${s.preview.user}`, [[`service/${s.name}`], [`kt-preview-${s.preview.session}`], [s.preview.user]]);
  return '';
}

function details(s: ServiceView): string {
  if (s.exchange) {
    return `<div>exchanged to ${holderText(s.exchange)}, mode <b>${esc(s.exchange.mode)}</b>${s.exchange.deployment ? ` (deployment/${esc(s.exchange.deployment)} scaled to 0)` : ''}</div>`;
  }
  if (s.mesh) {
    const routes = s.mesh.routes.map((r) => `<li>mark <code>${esc(s.mesh!.header)}: ${esc(r.mark)}</code> → <code>${esc(r.target)}</code>: ${holderText(r)}</li>`).join('');
    return `<div>meshed: router <code>${esc(s.mesh.router)}</code>, real pods behind <code>${esc(s.mesh.stuntman)}</code>${s.mesh.problem ? ` <span class="warn">${esc(s.mesh.problem)}</span>` : ''}</div>` +
      `<ul class="routes" aria-label="routes of ${esc(s.name)}">${routes || '<li>no route</li>'}</ul>`;
  }
  if (s.preview) return `<div>preview of ${holderText(s.preview)}</div>`;
  return '<div class="muted">natural: its own pods</div>';
}

function serviceRow(s: ServiceView): string {
  const pods = s.serving.length === 0
    ? '<span class="muted">none</span>'
    : `<ul class="pods">${s.serving.map((p) => `<li class="pod r-${p.role}"><span class="dot ${p.ready ? 'ok' : 'no'}" aria-hidden="true"></span>${esc(p.name)} <span class="muted">${p.role}${p.ready ? '' : ', not ready'}</span></li>`).join('')}</ul>`;
  const pic = routing(s);
  return `<tr class="svc${s.attention ? ' attention' : ''}" data-service="${esc(s.name)}" data-state="${s.state}">` +
    `<th scope="row"><span class="name">${esc(s.name)}</span><div class="muted">${esc(s.type)} ${esc(s.clusterIP)} · ${esc(s.ports.join(', '))}</div></th>` +
    `<td>${badge(s.state)}</td>` +
    `<td>${details(s)}${s.attention ? `<div class="alert" role="note">⚠ ${esc(s.attention)}</div>` : ''}${pic ? `<div class="pic">${pic}</div>` : ''}</td>` +
    `<td>${pods}</td></tr>`;
}

function sessionRows(ns: NamespaceView): string {
  if (ns.sessions.length === 0) return '<p class="muted">No kt sessions.</p>';
  const rows = ns.sessions.map((s) => `<tr class="${s.cleanable ? 'attention' : ''}" data-session="${esc(s.metadata.name)}">` +
    `<th scope="row"><code>${esc(s.metadata.name)}</code></th><td>${esc(s.spec.type)}${s.spec.mode ? ` <span class="muted">(${esc(s.spec.mode)})</span>` : ''}</td><td>${esc(s.spec.target)}</td><td>${esc(s.spec.user)}</td>` +
    `<td>${age(s.status.ageSeconds)}</td><td>${s.status.heartbeatAgeSeconds === undefined ? '-' : `${age(s.status.heartbeatAgeSeconds)} ago`}</td><td>${badge(s.status.state)}</td>` +
    `<td>${s.cleanable ? `<button type="button" class="clean" data-clean="${esc(s.metadata.name)}" data-namespace="${esc(ns.name)}" aria-label="Clean ${esc(s.status.state)} session ${esc(s.metadata.name)} of ${esc(s.spec.user)}">Clean…</button>` : ''}</td></tr>`).join('');
  return `<table class="sessions"><caption>Sessions in ${esc(ns.name)}</caption><thead><tr><th scope="col">Session</th><th scope="col">Kind</th><th scope="col">Target</th><th scope="col">User</th><th scope="col">Age</th><th scope="col">Heartbeat</th><th scope="col">State</th><th scope="col"><span class="sr">Action</span></th></tr></thead><tbody>${rows}</tbody></table>`;
}

function namespaceSection(ns: NamespaceView): string {
  const hidden = ns.hidden.length > 0 ? `<div class="hidden" role="note"><b>Not shown</b> (your rights): <ul>${ns.hidden.map((h) => `<li>${esc(h)}</li>`).join('')}</ul></div>` : '';
  const table = ns.services.length === 0 ? '<p class="muted">No Services.</p>'
    : `<table class="services"><caption>Services in ${esc(ns.name)}</caption><thead><tr><th scope="col">Service</th><th scope="col">State</th><th scope="col">Who and how</th><th scope="col">Serving now</th></tr></thead><tbody>${ns.services.map(serviceRow).join('')}</tbody></table>`;
  const count = (state: ServiceView['state']): number => ns.services.filter((x) => x.state === state).length;
  const cleanable = ns.sessions.filter((x) => x.cleanable).length;
  const summary = `<p class="summary">${ns.services.length} Services: ${count('exchanged')} exchanged, ${count('meshed')} meshed, ${count('previewed')} previewed; ` +
    `${ns.sessions.length} session${ns.sessions.length === 1 ? '' : 's'}${cleanable ? `, <b class="warn">${cleanable} to clean</b>` : ''}</p>`;
  // Sessions first: the short list, and the one that may need action.
  return `<section class="ns" aria-labelledby="ns-${esc(ns.name)}" data-namespace="${esc(ns.name)}"><h2 id="ns-${esc(ns.name)}">namespace ${esc(ns.name)}</h2>${summary}${hidden}${sessionRows(ns)}${table}</section>`;
}

/** What the server swaps in on each update. */
export function renderMain(d: Dashboard): string {
  return d.namespaces.length === 0 ? '<p class="muted">No namespace to show.</p>' : d.namespaces.map(namespaceSection).join('');
}

const CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#59636e;--line:#d0d7de;--card:#f6f8fa;--accent:#0969da;--warn-bg:#fff8c5;--warn:#7d4e00;--bad:#cf222e;--ok:#1a7f37;--box:#ddf4ff}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--card:#151b23;--accent:#4493f8;--warn-bg:#3b2e00;--warn:#e3b341;--bad:#f85149;--ok:#3fb950;--box:#0c2d6b}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;gap:1rem;align-items:baseline;flex-wrap:wrap;padding:.8rem 1.2rem;border-bottom:1px solid var(--line);background:var(--card);position:sticky;top:0}
h1{font-size:1.1rem;margin:0}h2{font-size:1rem;margin:1.2rem 0 .4rem}main{padding:0 1.2rem 2rem}
.muted{color:var(--muted)}code{font:12px ui-monospace,monospace}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}caption{text-align:left;font-weight:600;padding:.3rem 0;color:var(--muted)}
th,td{text-align:left;vertical-align:top;padding:.45rem .6rem;border-bottom:1px solid var(--line)}thead th{font-size:12px;color:var(--muted);font-weight:600}
tr.attention{background:var(--warn-bg)}tr.attention>th{box-shadow:inset 4px 0 var(--warn)}
.name{font-weight:600}th .muted{font-weight:400;font-size:12px}.summary{margin:.2rem 0 .6rem}dialog h2{margin-top:0}.badge{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:12px;border:1px solid currentColor}
.b-natural{color:var(--muted)}.b-exchanged,.b-meshed,.b-previewed{color:var(--accent)}.b-healthy{color:var(--ok)}.b-stale,.b-orphaned,.b-gone{color:var(--bad);font-weight:700}.b-starting,.b-reconnecting{color:var(--warn)}
.alert{color:var(--warn);font-weight:600;margin-top:.3rem}.warn{color:var(--warn)}
ul.pods,ul.routes{margin:0;padding:0;list-style:none}ul.routes{margin-top:.2rem}
.dot{display:inline-block;width:.6rem;height:.6rem;border-radius:50%;margin-right:.35rem}.dot.ok{background:var(--ok)}.dot.no{background:var(--bad)}
.pic{margin-top:.4rem;overflow-x:auto}svg.route rect{fill:var(--box);stroke:var(--accent)}svg.route text{fill:var(--fg);font-size:11px;text-anchor:middle}svg.route line{stroke:var(--muted);stroke-width:1.5}svg.route marker path{fill:var(--muted)}
.hidden{border:1px dashed var(--line);padding:.4rem .8rem;border-radius:6px;color:var(--muted)}.hidden ul{margin:.2rem 0}
button{font:inherit;padding:.25rem .7rem;border-radius:6px;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}button:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
button.danger{background:var(--bad);color:#fff;border-color:var(--bad)}
dialog{border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--fg);max-width:44rem}dialog::backdrop{background:rgb(0 0 0/.4)}dialog pre{white-space:pre-wrap;background:var(--card);padding:.6rem;border-radius:6px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
`;

/** The client: swaps in pushed updates, and runs the clean action (dry run first, then confirmed). */
const SCRIPT = `
(() => {
  const token = new URLSearchParams(location.search).get('token') || '';
  const main = document.getElementById('main');
  const live = document.getElementById('live');
  const dialog = document.getElementById('clean-dialog');
  const out = document.getElementById('clean-output');
  const title = document.getElementById('clean-title');
  const confirm = document.getElementById('clean-confirm');
  let pending = null;
  const es = new EventSource('/events?token=' + encodeURIComponent(token));
  es.addEventListener('update', (e) => {
    const m = JSON.parse(e.data);
    main.innerHTML = m.html;
    document.body.dataset.generation = String(m.generation);
    live.textContent = 'Live, cluster time ' + m.clusterTime;
  });
  es.onerror = () => { live.textContent = 'Disconnected; retrying...'; };
  async function clean(p, dryRun) {
    const r = await fetch('/api/clean', { method: 'POST', headers: { 'content-type': 'application/json', 'x-kt-token': token }, body: JSON.stringify({ namespace: p.namespace, session: p.session, dryRun }) });
    const body = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }
  const show = (b) => [...b.done, ...b.warnings.map((w) => 'warning: ' + w)].join('\\n') || 'nothing to do';
  document.addEventListener('click', async (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest('button[data-clean]') : null;
    if (!b) return;
    pending = { namespace: b.dataset.namespace, session: b.dataset.clean };
    title.textContent = 'Clean session ' + pending.session + ' (dry run)';
    out.textContent = 'Asking for a dry run...';
    confirm.hidden = true;
    dialog.showModal();
    try { out.textContent = show(await clean(pending, true)); confirm.hidden = false; confirm.focus(); } catch (e) { out.textContent = 'error: ' + e.message; }
  });
  document.getElementById('clean-close').addEventListener('click', () => dialog.close());
  confirm.addEventListener('click', async () => {
    if (!pending) return;
    confirm.hidden = true;
    title.textContent = 'Cleaning session ' + pending.session;
    out.textContent = 'Cleaning...';
    try { out.textContent = show(await clean(pending, false)); title.textContent = 'Cleaned session ' + pending.session; } catch (e) { out.textContent = 'error: ' + e.message; }
    pending = null;
  });
})();
`;

export function renderPage(d: Dashboard, o: { nonce: string; scope: string; generation: number }): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>kt dashboard: ${esc(o.scope)}</title><link rel="icon" href="data:,"><style nonce="${o.nonce}">${CSS}</style></head>` +
    `<body data-generation="${o.generation}"><header><h1>kt dashboard</h1><span class="muted">${esc(o.scope)}</span>` +
    `<span id="live" class="muted" role="status" aria-live="polite">cluster time ${esc(d.metadata.clusterTime)}</span></header>` +
    `<main id="main">${renderMain(d)}</main>` +
    '<dialog id="clean-dialog" aria-labelledby="clean-title"><h2 id="clean-title">Clean</h2><pre id="clean-output" aria-live="polite"></pre>' +
    '<p><button type="button" id="clean-confirm" class="danger" hidden>Clean it</button> <button type="button" id="clean-close">Close</button></p></dialog>' +
    `<script nonce="${o.nonce}">${SCRIPT}</script></body></html>`;
}

/** The page's policy: nothing but its own inline style and script, and requests to itself. */
export function contentSecurityPolicy(nonce: string): string {
  return `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'`;
}

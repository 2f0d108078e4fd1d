// The debug page: one card per actor, its chart with the current state highlighted, its counters and
// last transitions, and for the selected consumer its batch in flight. Fed by /debug/events (SSE): a
// `snapshot` with every actor on connect, then `actors` with the ones that changed. Plain DOM, no
// framework, nothing loaded from elsewhere; text from the daemon (payload previews, errors) is only
// ever set as textContent.

const cards = new Map() // actor id → { el, parts, chart: { nodes, clusters, edges } | null, view }
const charts = new Map() // chart URL → Promise<SVGSVGElement source text>
let selected = decodeURIComponent(location.hash.slice(1)) || null

/** A tiny element builder: strings become text, never markup. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v)
  }
  el.append(...children.filter((c) => c !== null && c !== undefined))
  return el
}

const time = (at) => {
  const d = new Date(at)
  return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`
}

function chartSource(url) {
  if (!charts.has(url)) {
    charts.set(
      url,
      fetch(url).then((res) => {
        if (!res.ok) throw new Error(`${url}: ${res.status}`)
        return res.text()
      }),
    )
  }
  return charts.get(url)
}

/** Parses the Graphviz SVG and indexes its nodes, clusters and edges by their <title>. */
function mountChart(card, source) {
  const doc = new DOMParser().parseFromString(source, 'image/svg+xml')
  const svg = document.importNode(doc.documentElement, true)
  // Several cards show the same chart: Graphviz's element ids would collide.
  for (const el of svg.querySelectorAll('[id]')) el.removeAttribute('id')
  svg.removeAttribute('width')
  svg.removeAttribute('height')
  const index = { nodes: new Map(), clusters: new Map(), edges: new Map() }
  for (const g of svg.querySelectorAll('g.node, g.cluster, g.edge')) {
    const title = g.querySelector(':scope > title')?.textContent ?? ''
    if (g.classList.contains('cluster')) index.clusters.set(title.replace(/^cluster_/, ''), g)
    else if (g.classList.contains('edge')) index.edges.set(title, [...(index.edges.get(title) ?? []), g])
    else index.nodes.set(title, g)
  }
  card.parts.chart.replaceChildren(svg)
  card.chart = index
  highlight(card)
}

/** `consumer.reading.fetching` → itself, `consumer.reading`, `consumer`. */
function selfAndAncestors(id) {
  const parts = id.split('.')
  return parts.map((_, i) => parts.slice(0, parts.length - i).join('.'))
}

/** Marks the active states (a compound state is a cluster) and the arrow of the last transition. */
function highlight(card) {
  const { chart, view } = card
  if (!chart || !view) return
  for (const el of card.parts.chart.querySelectorAll('.active, .last')) el.classList.remove('active', 'last')
  for (const id of view.active) {
    // The root is always active; its frame stays plain so the current state stands out.
    if (id !== view.machine) (chart.clusters.get(id) ?? chart.nodes.get(id))?.classList.add('active')
  }
  const last = view.transitions.at(-1)
  if (!last || last.from === null || last.from.includes(',')) return
  // The arrow may start at an ancestor of the old state (a parent's `on`) and end at an ancestor of
  // the new one (a compound target): try the most specific pair first.
  const from = selfAndAncestors(`${view.machine}.${last.from}`)
  const to = selfAndAncestors(`${view.machine}.${last.to}`)
  for (const a of from) {
    for (const b of to) {
      const edges = chart.edges.get(`${a}->${b}`)
      if (!edges) continue
      // Two arrows may join the same states (`done reclaimOrphans`, `error reclaimOrphans`): the one
      // whose label starts with the trigger is the one taken.
      const label = (e) => [...e.querySelectorAll('text')].map((t) => t.textContent).join(' ')
      const taken = edges.filter((e) => label(e).split(/ \[|\n/)[0] === last.trigger)
      return (taken.length > 0 ? taken : edges).forEach((e) => e.classList.add('last'))
    }
  }
}

function createCard(view) {
  const parts = {
    state: h('code', { class: 'state' }),
    status: h('span', { class: 'status' }),
    sessions: h('span', { class: 'sessions' }),
    chart: h('div', { class: 'chart' }, view.chart ? 'loading chart…' : 'no chart for this machine'),
    counters: h('dl', { class: 'counters' }),
    error: h('p', { class: 'error' }),
    transitions: h('tbody'),
    batch: h('section', { class: 'batch' }),
  }
  const isConsumer = view.batch !== null
  const select = isConsumer
    ? h(
        'button',
        { type: 'button', onclick: () => choose(selected === view.id ? null : view.id) },
        'in-flight batch',
      )
    : null
  const el = h(
    'article',
    { class: 'actor', 'data-actor': view.id, id: `actor-${view.id}` },
    h(
      'header',
      {},
      h('h2', {}, view.id),
      h('span', { class: 'machine' }, view.machine),
      parts.state,
      parts.status,
      parts.sessions,
      select,
    ),
    h(
      'div',
      { class: 'body' },
      parts.chart,
      h(
        'aside',
        {},
        h('h3', {}, 'Counters'),
        parts.counters,
        parts.error,
        h('h3', {}, 'Last transitions'),
        h(
          'div',
          { class: 'scroll' },
          h(
            'table',
            { class: 'transitions' },
            h('thead', {}, h('tr', {}, ...['time', 'event', 'from', 'to'].map((c) => h('th', {}, c)))),
            parts.transitions,
          ),
        ),
      ),
    ),
    parts.batch,
  )
  const card = { el, parts, chart: null, view: null }
  cards.set(view.id, card)
  document.querySelector('.empty')?.remove()
  document.getElementById('cards').append(el)
  document.getElementById('actors').append(
    h(
      'a',
      {
        href: `#${encodeURIComponent(view.id)}`,
        'data-actor': view.id,
        onclick: (e) => (e.preventDefault(), el.scrollIntoView({ behavior: 'smooth' })),
      },
      view.id,
      ' ',
      h('code', {}),
    ),
  )
  if (view.chart) {
    chartSource(view.chart)
      .then((source) => mountChart(card, source))
      .catch((err) => card.parts.chart.replaceChildren(`chart unavailable: ${err.message}`))
  }
  return card
}

function renderBatch(card) {
  const { view, parts } = card
  const open = view.batch !== null && selected === view.id
  card.el.classList.toggle('selected', open)
  if (!open) return parts.batch.replaceChildren()
  const rows = view.batch.entries.map((e) =>
    h(
      'tr',
      { 'data-entry-id': e.entryId },
      h('td', {}, e.entryId),
      h('td', {}, e.id),
      h('td', {}, String(e.attempt)),
      h('td', { class: `outcome ${e.status.replace(' ', '-')}` }, e.status),
      h('td', { class: 'preview' }, e.preview ?? ''),
    ),
  )
  const more = view.batch.size - view.batch.entries.length
  parts.batch.replaceChildren(
    h(
      'h3',
      {},
      `In-flight batch of ${view.id}: ${view.batch.size} ${view.batch.size === 1 ? 'entry' : 'entries'}`,
    ),
    view.batch.size === 0
      ? h('p', { class: 'none' }, 'Nothing in flight: the consumer is between batches.')
      : h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['entry id', 'message id', 'attempt', 'status', 'payload (start)'].map((c) =>
                h('th', {}, c),
              ),
            ),
          ),
          h('tbody', {}, ...rows),
        ),
    ...(more > 0 ? [h('p', { class: 'none' }, `…and ${more} more`)] : []),
  )
}

function render(view) {
  const card = cards.get(view.id) ?? createCard(view)
  card.view = view
  const { el, parts } = card
  el.dataset.state = view.state
  el.dataset.status = view.status
  parts.state.textContent = view.state
  parts.status.textContent = view.status
  parts.status.dataset.status = view.status
  parts.sessions.textContent = view.sessions > 1 ? `restarted ${view.sessions - 1}×` : ''
  parts.counters.replaceChildren(
    ...Object.entries(view.counters).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]),
  )
  parts.error.textContent = view.lastError ? `last error: ${view.lastError}` : ''
  parts.transitions.replaceChildren(
    ...view.transitions
      .slice()
      .reverse()
      .map((t) =>
        h(
          'tr',
          {},
          h('td', {}, time(t.at)),
          h('td', { title: t.event }, t.trigger),
          h('td', {}, t.from ?? '—'),
          h('td', {}, t.to),
        ),
      ),
  )
  document.querySelector(`#actors a[data-actor="${CSS.escape(view.id)}"] code`).textContent = view.state
  renderBatch(card)
  highlight(card)
}

function choose(id) {
  selected = id
  history.replaceState(null, '', id ? `#${encodeURIComponent(id)}` : location.pathname)
  for (const card of cards.values()) if (card.view) renderBatch(card)
}

function connect() {
  const status = document.getElementById('connection')
  const set = (s, text) => ((status.dataset.status = s), (status.textContent = text))
  const source = new EventSource('/debug/events')
  source.addEventListener('open', () => set('live', 'live'))
  source.addEventListener('error', () => set('down', 'reconnecting…'))
  source.addEventListener('snapshot', (e) => JSON.parse(e.data).actors.forEach(render))
  source.addEventListener('actors', (e) => JSON.parse(e.data).forEach(render))
}

connect()

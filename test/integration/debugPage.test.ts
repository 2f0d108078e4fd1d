import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { testRedis } from '../support/redis.js'

/**
 * End to end: the daemon with PORT and ACKSTATE_DEBUG, /debug in Debian's headless Chromium (driven by
 * playwright-core, which brings no browser of its own), messages published, and the consumer's
 * highlighted state seen to change on the page. The screenshot goes to test-results/debug.png;
 * `npm run screenshot` also copies it to docs/debug.png, the picture the README shows (a plain test
 * run must not rewrite a committed file).
 */

const CHROMIUM = '/usr/bin/chromium'
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SHOT = path.join(ROOT, 'test-results/debug.png')

/** The title of the consumer chart's highlighted leaf state, e.g. `consumer.reading.fetching`. */
const ACTIVE_STATE = 'article[data-actor="consumer-orders"] .chart g.node.active > title'

/** Waits until the highlighted state's title matches (an SVG <title> is never "visible": attached). */
const highlighted = (page: Page, title: RegExp) =>
  page.locator(ACTIVE_STATE).filter({ hasText: title }).waitFor({ state: 'attached' })

test(
  'the debug page highlights the state a consumer is in, live, and shows its batch in flight',
  { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: run bash scripts/chromium.sh (apt-get)` },
  async (t) => {
    const { chromium } = await import('playwright-core')
    const { redis, key } = testRedis(t)
    const stream = key('orders')
    const file = writeConfig(t, {
      consumers: [{ name: 'orders', stream, handler: path.join(FIXTURES, 'slow.mjs'), blockMs: 100 }],
    })
    const daemon = runCli(t, ['start', '--config', file], { PORT: '0', ACKSTATE_DEBUG: 'true' })
    const { port } = await daemon.waitForLog((l) => l.msg === 'http server listening')
    const base = `http://127.0.0.1:${String(port)}`

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    })
    t.after(() => browser.close())
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
    const requests: string[] = []
    const problems: string[] = []
    page.on('request', (r) => requests.push(r.url()))
    page.on('pageerror', (err) => problems.push(err.message))
    page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())))

    await page.goto(`${base}/debug`)
    await highlighted(page, /^consumer\.reading\./)
    const consumer = page.locator('article[data-actor="consumer-orders"]')
    await consumer.getByRole('button', { name: 'in-flight batch' }).click()

    // One transaction, so the blocked read takes all three as one batch; each takes 1.5 s to handle.
    const tx = redis.multi()
    for (const n of [1, 2, 3])
      tx.xadd(stream, '*', 'id', `order-${n}`, 'payload', `{"total":${n * 10}}`, 'ms', '1500')
    await tx.exec()

    await highlighted(page, /^consumer\.processing$/)
    await consumer.locator('.batch tr[data-entry-id]').nth(2).waitFor()
    assert.deepEqual(
      {
        state: await consumer.getAttribute('data-state'),
        badge: await consumer.locator('header .state').textContent(),
        batch: await consumer.locator('.batch td:nth-child(2)').allTextContents(),
      },
      { state: 'processing', badge: 'processing', batch: ['order-1', 'order-2', 'order-3'] },
    )
    mkdirSync(path.dirname(SHOT), { recursive: true })
    await page.screenshot({ path: SHOT, fullPage: true })
    if (process.env.UPDATE_SCREENSHOTS) copyFileSync(SHOT, path.join(ROOT, 'docs/debug.png'))

    // Handled and acked: the highlight moves back to reading and the counters say so.
    await highlighted(page, /^consumer\.reading\./)
    const names = await consumer.locator('.counters dt').allTextContents()
    const values = await consumer.locator('.counters dd').allTextContents()
    const counters = Object.fromEntries(names.map((name, i) => [name, values[i]]))
    assert.deepEqual({ handled: counters.handled, acked: counters.acked }, { handled: '3', acked: '3' })

    assert.deepEqual(
      requests.filter((url) => !url.startsWith(`${base}/`)),
      [],
      'everything the page loads comes from the daemon',
    )
    assert.deepEqual(problems, [])

    daemon.child.kill('SIGTERM')
    assert.equal((await daemon.exited).code, 0, daemon.stderr())
  },
)

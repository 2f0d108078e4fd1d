import { readFileSync } from 'node:fs'

/**
 * The page's static files, from src/debug/assets/ (copied next to the compiled code by `npm run
 * build`). Plain HTML, CSS and JS with no framework and nothing from a CDN: the debug page must work
 * on a dyno or laptop without internet access and must not leak what it shows to third parties.
 */

export interface Asset {
  type: string
  body: string
}

const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
}

let loaded: Map<string, Asset> | undefined

/** Read once, on the first request, so a daemon without the debug page never touches the files. */
export function asset(name: string): Asset {
  loaded ??= new Map(
    Object.entries(FILES).map(([file, type]) => [
      file,
      { type, body: readFileSync(new URL(`./assets/${file}`, import.meta.url), 'utf8') },
    ]),
  )
  const found = loaded.get(name)
  if (!found) throw new Error(`debug asset ${name} is not one of ${Object.keys(FILES).join(', ')}`)
  return found
}

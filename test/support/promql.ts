/**
 * Just enough PromQL reading for the alert and dashboard tests: which metric names an expression
 * selects. Strings, label matchers, ranges and label lists (`by (…)`, `on (…)`) are removed first;
 * what is left that looks like an identifier and is neither a function call nor a keyword is a metric.
 */
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
])

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/(?<![\w:])\d+(\.\d+)?(e[+-]?\d+)?(?![\w:])/gi, ' ')
  const names = new Set<string>()
  for (const [, name, call] of stripped.matchAll(/([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    if (call || KEYWORDS.has(name!.toLowerCase())) continue
    names.add(name!)
  }
  return [...names].sort()
}

/** True when every bracket opened in `expr` is closed in order (outside strings). */
export function balanced(expr: string): boolean {
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' }
  const stack: string[] = []
  for (const ch of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('([{'.includes(ch)) stack.push(ch)
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false
  }
  return stack.length === 0
}

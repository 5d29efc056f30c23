import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The client must run wherever `fetch` does (browsers included): the modules it loads at run time — following
 * every import that is not `import type` — may import no package and no node: module, and may not use Node's
 * globals. Type-only imports (zod, the server's schemas) are erased and cost nothing at run time.
 */

const root = path.resolve(import.meta.dirname, '../../..');
const IMPORT_RE = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;

function runtimeGraph(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const text = fs.readFileSync(file, 'utf8');
    const specs: string[] = [];
    seen.set(file, specs);
    for (const m of text.matchAll(IMPORT_RE)) {
      if (m[2] !== undefined) continue; // import type / export type
      const spec = m[3]!;
      specs.push(spec);
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
    }
  };
  visit(entry);
  return seen;
}

describe('the client at run time', () => {
  const graph = runtimeGraph(path.join(root, 'src/client/index.ts'));

  it('loads only its own modules (and the shared error class), no package, no node: module', () => {
    const bare = [...graph.values()].flat().filter((s) => !s.startsWith('.'));
    expect(bare).toEqual([]);
    const files = [...graph.keys()].map((f) => path.relative(root, f)).sort();
    expect(files.filter((f) => !f.startsWith('src/client/'))).toEqual(['src/errors.ts']);
  });

  it('uses no Node-only global', () => {
    for (const file of graph.keys()) {
      const code = fs
        .readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      expect(code, path.relative(root, file)).not.toMatch(/\b(Buffer|process|require|__dirname)\b/);
    }
  });

  it('resolves as lagoon/client through package.json exports', async () => {
    const mod = await import('lagoon/client');
    expect(typeof mod.LagoonClient).toBe('function');
    expect(typeof mod.LagoonError).toBe('function');
  });
});

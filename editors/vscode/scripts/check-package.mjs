// Packages the extension with vsce (which validates the manifest) and checks the packaged files:
// the bundle, the manifest and the docs, and nothing else (no sources, no node_modules, no tests).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
const run = (...args) => execFileSync(process.execPath, [vsce, ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

const expected = ['CHANGELOG.md', 'LICENSE', 'README.md', 'dist/extension.js', 'package.json'];
const listed = run('ls', '--no-dependencies')
  .split('\n')
  .map((line) => line.trim())
  .filter(Boolean)
  .sort();
if (JSON.stringify(listed) !== JSON.stringify(expected)) {
  console.error(`vsce ls: expected exactly ${JSON.stringify(expected)}\ngot ${JSON.stringify(listed)}`);
  process.exit(1);
}
const out = path.join(root, 'gantry.vsix');
fs.rmSync(out, { force: true });
process.stdout.write(run('package', '--no-dependencies', '--allow-missing-repository', '--out', out));
const size = fs.statSync(out).size;
if (size < 10_000 || size > 2_000_000) {
  console.error(`gantry.vsix is ${size} bytes: expected a bundled extension (10 kB - 2 MB)`);
  process.exit(1);
}
console.log(`package ok: ${path.relative(root, out)} (${Math.round(size / 1024)} KiB), files: ${listed.join(', ')}`);

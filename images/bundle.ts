// Bundles one entry point and everything it imports into a single CommonJS file, the form both
// the container images and the standalone plugin binaries run.
//   node images/bundle.ts ENTRY.ts OUTFILE.cjs
import { build } from 'esbuild';

const [entry, outfile] = process.argv.slice(2);
if (!entry || !outfile) {
  console.error('usage: node images/bundle.ts ENTRY.ts OUTFILE.cjs');
  process.exit(2);
}

await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  // ESM packages read import.meta.url; in the CJS bundle it is this file's URL.
  define: { 'import.meta.url': '__kt_import_meta_url' },
  banner: { js: "const __kt_import_meta_url = require('url').pathToFileURL(__filename).href;" },
  // Optional native add-ons: each is loaded in a try/catch and has a pure-JS fallback.
  external: ['cpu-features', '*.node', 'bufferutil', 'utf-8-validate'],
  logLevel: 'warning',
});

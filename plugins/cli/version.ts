// The single source of the version: package.json, read at build time by the bundler or at run
// time from the source tree.
import pkg from '../../package.json' with { type: 'json' };

export const VERSION: string = pkg.version;

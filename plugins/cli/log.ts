// Human-readable output on stderr: progress while something slow runs, notices, warnings, and
// debug lines under --debug. Data (-o json) goes to stdout and never through here.
export interface Logger {
  progress(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

export function createLogger(opts: { debug?: boolean; quiet?: boolean } = {}): Logger {
  const t0 = Date.now();
  const stamp = (): string => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
  const out = (line: string): void => { process.stderr.write(`${line}\n`); };
  return {
    progress: (m) => { if (!opts.quiet) out(`[${stamp()}] ${m}`); },
    info: (m) => { if (!opts.quiet) out(m); },
    warn: (m) => out(`warning: ${m}`),
    debug: (m) => { if (opts.debug) out(`[${stamp()}] debug: ${m}`); },
  };
}

export const silentLogger: Logger = { progress: () => {}, info: () => {}, warn: () => {}, debug: () => {} };

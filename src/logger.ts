// A small leveled logger writing to stderr (vLLM's "INFO 11-24 03:12:38 [file] msg" style).
// VLLM_TS_LOGGING_LEVEL = DEBUG | INFO | WARNING | ERROR | OFF (default INFO).

const LEVELS = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, OFF: 100 } as const;
type Level = Exclude<keyof typeof LEVELS, 'OFF'>;

function threshold(): number {
  const env = (process.env.VLLM_TS_LOGGING_LEVEL ?? 'INFO').toUpperCase() as keyof typeof LEVELS;
  return LEVELS[env] ?? LEVELS.INFO;
}

function stamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function initLogger(name: string): Logger {
  const log = (level: Level) => (msg: string) => {
    if (LEVELS[level] >= threshold()) process.stderr.write(`${level} ${stamp()} [${name}] ${msg}\n`);
  };
  return { debug: log('DEBUG'), info: log('INFO'), warn: log('WARNING'), error: log('ERROR') };
}

import type { Readable } from 'node:stream';
import type { HostProcess, ProcessExit } from './host.js';

/** Keeps the last 64 KiB a stream printed. */
export function keepTail(stream: Readable): () => string {
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-65_536);
  });
  stream.on('error', () => {});
  return () => text;
}

/**
 * Resolves with the first line `stream` prints, 'exit' when the process ends
 * first, 'timeout' after `timeoutMs`. The stream keeps flowing afterwards.
 */
export function firstLine(
  stream: Readable,
  exit: Promise<ProcessExit>,
  timeoutMs: number,
): Promise<string | 'exit' | 'timeout'> {
  return new Promise((resolve) => {
    let text = '';
    let settled = false;
    const settle = (value: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.off('data', onData);
      // Nothing more is read from it; keep it flowing so the channel can close.
      stream.resume();
      resolve(value);
    };
    const timer = setTimeout(() => settle('timeout'), timeoutMs);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const end = text.indexOf('\n');
      if (end >= 0) settle(text.slice(0, end).trim());
    };
    stream.on('data', onData);
    void exit.then(() => settle('exit'));
  });
}

/** Whether a spawned process has ended, and its end when it comes within a time. */
export function ending(process: HostProcess): {
  ended(): boolean;
  within(ms: number): Promise<ProcessExit | undefined>;
} {
  let end: ProcessExit | undefined;
  void process.exit.then((exit) => {
    end = exit;
  });
  return {
    ended: () => end !== undefined,
    within: (ms) =>
      end
        ? Promise.resolve(end)
        : Promise.race([
            process.exit,
            new Promise<undefined>((resolve) => {
              setTimeout(() => resolve(undefined), ms).unref();
            }),
          ]),
  };
}

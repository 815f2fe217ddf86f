import type { Readable } from 'node:stream';
import type { ProcessExit } from './host.js';

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

import type { CriuStats } from '../report/metadata.js';

// CRIU's stats-dump image: magic numbers, then one length-prefixed protobuf
// StatsEntry { dump = 1: DumpStatsEntry { freezing_time = 1, frozen_time = 2,
// memdump_time = 3, memwrite_time = 4, pages_scanned = 5, pages_skipped_parent = 6,
// pages_written = 7, ... } }. Times are microseconds.
export const IMG_COMMON_MAGIC = 0x54564319;
export const IMG_SERVICE_MAGIC = 0x55105940;

export type Fields = Map<number, bigint | Buffer>;

function readVarint(buf: Buffer, offset: number): [bigint, number] {
  let value = 0n;
  let shift = 0n;
  let pos = offset;
  for (;;) {
    if (pos >= buf.length) throw new RangeError('truncated varint');
    const byte = buf[pos++]!;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value, pos];
    shift += 7n;
  }
}

/** The fields of one protobuf message that CRIU's stats use: varints and nested messages. */
export function decodeMessage(buf: Buffer): Fields {
  const fields: Fields = new Map();
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, next] = readVarint(buf, afterKey);
      fields.set(field, value);
      pos = next;
    } else if (wire === 2) {
      const [length, start] = readVarint(buf, afterKey);
      const end = start + Number(length);
      fields.set(field, buf.subarray(start, end));
      pos = end;
    } else if (wire === 5) {
      pos = afterKey + 4;
    } else if (wire === 1) {
      pos = afterKey + 8;
    } else {
      throw new RangeError(`unsupported protobuf wire type ${wire}`);
    }
  }
  return fields;
}

/** Decodes a stats-dump image; undefined when it is not one. */
export function parseDumpStats(image: Buffer): CriuStats | undefined {
  try {
    let pos = 0;
    const first = image.readUInt32LE(pos);
    if (first === IMG_COMMON_MAGIC || first === IMG_SERVICE_MAGIC) pos += 8;
    else pos += 4;
    const length = image.readUInt32LE(pos);
    const entry = decodeMessage(image.subarray(pos + 4, pos + 4 + length));
    const dump = entry.get(1);
    if (!(dump instanceof Buffer)) return undefined;
    const fields = decodeMessage(dump);
    const number = (field: number): number | undefined => {
      const value = fields.get(field);
      return typeof value === 'bigint' ? Number(value) : undefined;
    };
    return {
      freezingTimeUs: number(1),
      frozenTimeUs: number(2),
      memdumpTimeUs: number(3),
      memwriteTimeUs: number(4),
      pagesScanned: number(5),
      pagesWritten: number(7),
    };
  } catch {
    return undefined;
  }
}
